"""Model versions on disk: written atomically, verified by checksum, loaded by kind.

A version is a directory written by :meth:`SuggestionModel.save
<active_learning.ml.interface.SuggestionModel.save>` through :func:`write_version`:
``manifest.json`` (format version, model kind, finding classes, the sha256 of every file) beside
the weights, config and tokenizer files. :func:`read_manifest` checks every checksum before any
weight is read and :func:`load_model` picks the kind's class from the registry; both refuse a
directory that does not match (:class:`~active_learning.ml.interface.CheckpointError`). A
version is never overwritten. Pure Python, never Django.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from active_learning.ml.interface import CheckpointError, SuggestionModel

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "json_lists",
    "json_tuples",
    "load_model",
    "read_manifest",
    "version_checksum",
    "write_version",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def json_lists(value: Any) -> Any:
    """A config value as JSON writes it: tuples (nested too) as lists."""
    return [json_lists(v) for v in value] if isinstance(value, tuple | list) else value


def json_tuples(value: Any) -> Any:
    """A config value read back from JSON: lists (nested too) as the tuples the config holds."""
    return tuple(json_tuples(v) for v in value) if isinstance(value, list) else value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_version(
    directory: Path | str,
    *,
    kind: str,
    finding_classes: Sequence[str],
    write_files: Callable[[Path], None],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a version atomically: ``write_files`` fills a temporary sibling directory, the
    manifest records every file's sha256, then the directory is renamed into place, so a crash
    never leaves a half-written version under ``directory``."""
    target = Path(directory)
    if target.exists():
        raise CheckpointError(f"{target} already exists; versions are never overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write_files(staging)
        files = {
            str(path.relative_to(staging)): _sha256(path)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "finding_classes": list(finding_classes),
            "files": files,
            **(extra or {}),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        for path in staging.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["checksum"] = version_checksum(manifest)
    return manifest


def version_checksum(manifest: dict[str, Any]) -> str:
    """One sha256 over the sorted (file, sha256) pairs: the version's identity."""
    lines = "".join(f"{name}\t{digest}\n" for name, digest in sorted(manifest["files"].items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def read_manifest(directory: Path | str) -> dict[str, Any]:
    """The verified manifest of a saved version (every file present with its recorded sha256)."""
    root = Path(directory)
    path = root / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{root} is not a saved model version: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{root} has format version {manifest.get('format_version')!r}; "
            f"this MedLoop reads version {FORMAT_VERSION}"
        )
    for name, digest in manifest.get("files", {}).items():
        file = root / name
        if not file.is_file():
            raise CheckpointError(f"{root}: {name} is missing")
        if _sha256(file) != digest:
            raise CheckpointError(f"{root}: {name} does not match its checksum")
    manifest["checksum"] = version_checksum(manifest)
    return manifest


def load_model(directory: Path | str) -> SuggestionModel:
    """Load any registered model kind from a saved version, after verifying its checksums."""
    from active_learning.ml.kinds import registered  # the kinds import this module

    kinds = registered()
    manifest = read_manifest(directory)
    kind = manifest.get("kind")
    if kind not in kinds:
        raise CheckpointError(f"{directory}: unknown model kind {kind!r}")
    return kinds[kind]._load(Path(directory), manifest)
