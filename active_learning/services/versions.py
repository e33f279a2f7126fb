"""Model versions: register one (a retraining cycle trains it: ``cycles.run_training``), load
it (checked), promote it or roll back. A version's directory is written once and never
changed; the database row records its checksum, so a file altered on disk is refused when
loaded."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from active_learning.ml.checkpoints import load_model, read_manifest
from active_learning.ml.interface import CheckpointError, SuggestionModel
from active_learning.models import ModelVersion
from active_learning.services import model_cards
from annotations.models import Project
from annotations.services import audit
from annotations.services.errors import Conflict, InvalidInput

_CACHE_SIZE = 2
_cache: OrderedDict[tuple[str, str], SuggestionModel] = OrderedDict()
_cache_lock = threading.Lock()


def version_directory(project: Project, number: int) -> Path:
    return Path(settings.MODELS_DIR) / f"project-{project.pk}" / f"v{number:04d}"


def next_number(project: Project) -> int:
    return (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1


def register_version(
    *,
    project: Project,
    number: int,
    directory: Path,
    metrics: dict[str, Any] | None = None,
    label_snapshot: list[list[int]] | None = None,
    parent: ModelVersion | None = None,
    parent_reason: str = "",
    strategy: str = "",
) -> ModelVersion:
    """A candidate :class:`ModelVersion` for the saved version in ``directory``; ``parent`` is
    the version training started from (None: from scratch), ``parent_reason`` why that one."""
    manifest = read_manifest(directory)
    version = ModelVersion.objects.create(
        project=project,
        number=number,
        model_kind=manifest["kind"],
        metrics=metrics or {},
        label_snapshot=label_snapshot or [],
        label_count=len(label_snapshot or []),
        strategy=strategy,
        code_version=code_version(manifest),
        weights_path=str(directory),
        weights_sha256=manifest["checksum"],
        parent=parent,
        parent_reason=parent_reason[:300],
    )
    # The model card travels with the weights from the start (issue 16).
    model_cards.write_card(version)
    return version


@functools.cache
def _source_revision() -> str:
    """The git commit of the running code, when it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_version(manifest: dict[str, Any]) -> str:
    """MedLoop's version and commit, and the model file format, that made a version."""
    try:
        release = importlib.metadata.version("medloop")
    except importlib.metadata.PackageNotFoundError:
        release = "dev"
    return f"medloop {release} {_source_revision()} format {manifest['format_version']}"[:64]


def load_version(version: ModelVersion) -> SuggestionModel:
    """The model of ``version``, verified against the checksum in the database; the two most
    recently used versions stay in memory per process."""
    key = (version.weights_path, version.weights_sha256)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    manifest = read_manifest(version.weights_path)
    if manifest["checksum"] != version.weights_sha256:
        raise CheckpointError(
            f"model version {version.number} of project {version.project_id}: the files at "
            f"{version.weights_path} are not the ones registered"
        )
    model = load_model(version.weights_path)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


@transaction.atomic
def promote(version: ModelVersion) -> ModelVersion:
    """Make ``version`` the one that serves suggestions; the one before it is retired."""
    list(ModelVersion.objects.select_for_update().filter(project=version.project_id))
    ModelVersion.objects.filter(
        project=version.project_id, status=ModelVersion.Status.PROMOTED
    ).exclude(pk=version.pk).update(status=ModelVersion.Status.RETIRED)
    version.status = ModelVersion.Status.PROMOTED
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])
    return version


@transaction.atomic
def rollback(
    *, project: Project, to: ModelVersion | None = None, actor: User | None = None
) -> ModelVersion:
    """Serve ``to`` again, or by default the version that served before the current one."""
    current = promoted_version(project)
    if to is None:
        earlier = ModelVersion.objects.filter(project=project, promoted_at__isnull=False)
        if current is not None:
            earlier = earlier.exclude(pk=current.pk)
        previous = (
            earlier.exclude(status=ModelVersion.Status.FAILED).order_by("-promoted_at").first()
        )
        if previous is None:
            raise Conflict("There is no earlier promoted version to roll back to.")
        to = previous
    if to.project_id != project.pk:
        raise InvalidInput(f"Version {to.number} belongs to another project.")
    return promote_verified(to, actor=actor, action="model.rollback")


def promote_verified(
    version: ModelVersion, *, actor: User | None = None, action: str = "model.promote"
) -> ModelVersion:
    """Promote ``version`` after checking that its files are still the ones registered; the
    model owner's decision is audited as ``action``."""
    if version.status == ModelVersion.Status.FAILED:
        raise Conflict(f"Version {version.number} failed; it cannot serve.")
    try:
        checksum = read_manifest(version.weights_path)["checksum"]
    except CheckpointError as exc:
        raise Conflict(f"Version {version.number} cannot be loaded: {exc}") from exc
    if checksum != version.weights_sha256:
        raise Conflict(f"Version {version.number}'s files do not match their checksum.")
    promote(version)
    audit.record(
        action=action,
        actor=actor,
        target=version,
        project_id=version.project_id,
        detail={"number": version.number},
    )
    return version


def promoted_version(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.PROMOTED).first()


# --- lineage: where a cycle's training starts -------------------------------------------------


@dataclass(frozen=True)
class WarmStart:
    """The version a cycle's training starts from (None: from scratch) and why."""

    version: ModelVersion | None
    reason: str


def _label_ids(version: ModelVersion) -> set[int]:
    return {int(pair[0]) for pair in version.label_snapshot}


def _significantly_worse(version: ModelVersion) -> bool:
    """The promotion guard found ``version`` worse than the version then serving, beyond noise
    (the whole bootstrap interval of its gain below zero)."""
    bootstrap = (version.promotion_check or {}).get("bootstrap") or {}
    high = bootstrap.get("high")
    return isinstance(high, int | float) and high < 0


def choose_warm_start(*, project: Project, serving: ModelVersion | None, mode: str) -> WarmStart:
    """Where the next cycle starts (``LoopSettings.warm_start``).

    ``"latest"`` (the default) builds on the newest version that did not fail, promoted or not,
    when it was trained on every label the serving version saw (its label snapshot's annotation
    ids include the serving one's), the promotion guard did not find it worse than the serving
    version beyond noise and no model owner rolled back from it. Why: each cycle then adds its
    steps and labels to the most trained weights, so training stays cumulative while the guard
    holds promotion back (with few validation labels it often does); a candidate that saw fewer
    labels, that the guard found worse or that an owner rolled back from would carry less, not
    more. Otherwise, and
    with ``"serving"``, the serving version; without one, from scratch."""
    latest = (
        ModelVersion.objects.filter(project=project)
        .exclude(status=ModelVersion.Status.FAILED)
        .order_by("-number")
        .first()
    )
    passed_over = ""
    if mode == "latest" and latest is not None and latest != serving:
        if serving is None:
            return WarmStart(latest, f"latest version {latest.number} (none serving)")
        if latest.status == ModelVersion.Status.RETIRED:
            # Newer than the serving version yet retired: a model owner rolled back from it.
            passed_over = f"latest version {latest.number} was rolled back; "
        elif _significantly_worse(latest):
            passed_over = (
                f"latest version {latest.number} was worse than the serving version beyond noise; "
            )
        elif _label_ids(serving) <= _label_ids(latest):
            return WarmStart(
                latest,
                f"latest version {latest.number}: trained on {latest.label_count} labels, "
                f"every label of serving version {serving.number}",
            )
        else:
            passed_over = (
                f"latest version {latest.number} did not see every label of serving "
                f"version {serving.number}; "
            )
    if serving is not None:
        return WarmStart(serving, f"{passed_over}serving version {serving.number}")
    return WarmStart(None, "no earlier version: from scratch")
