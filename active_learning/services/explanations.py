"""Grad-CAM explanations as viewer overlays: a PNG the size of the case's first image, a
colour map (blue -> red) whose alpha follows the heat, so the image stays readable under it.
Rendered once per (model version, case, finding) and kept beside the version's suggestions.

A model that reads volumes (the 3D CT detector) explains the case's volume (its first regular
series, ``case_inputs.volume_input``): its heat volume is rendered once as one overlay per
slice, in the stack's order (the viewer's), kept in a folder with a ``volume.json`` naming the
series, its slices' instances and the hottest slice; each request serves one slice. That takes
tens of seconds and gigabytes for a real series, so a request never computes it: the task
``active_learning.explain_case`` (:mod:`active_learning.services.explanation_jobs`) does,
queued once per (version, case, finding) by the first request that finds it missing (which is
told to ask again: :class:`ExplanationPending`) or by the scoring of the case (its top
suggested findings). A ``.pending`` file beside the folder marks it queued (and, when the task
failed, holds why).
Everything of a case lies under ``explanations/version-*/case-{case}-*``, which a patient's
purge deletes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from active_learning.ml.kinds import registered
from active_learning.models import ModelVersion
from active_learning.services.case_inputs import (
    case_input,
    case_volume,
    first_instance,
    reads_volumes,
)
from active_learning.services.versions import load_version
from annotations.atomic_files import write_atomically
from annotations.models import Case
from annotations.services.errors import InvalidInput
from medloop.celery import send_after_commit

MAX_ALPHA = 0.6
#: Seconds a request told that a volume's overlays are being computed waits before asking again.
RETRY_AFTER_SECONDS = 5


def overlay_png(heatmap: np.ndarray) -> bytes:
    """RGBA PNG of a ``(rows, columns)`` heatmap in [0, 1]: hue from blue (0) through green to
    red (1), alpha ``MAX_ALPHA * heat`` (zero heat is fully transparent)."""
    h = np.clip(np.nan_to_num(heatmap.astype(np.float32)), 0.0, 1.0)
    red = np.clip(1.5 - np.abs(4 * h - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * h - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * h - 1), 0, 1)
    alpha = MAX_ALPHA * h
    rgba = (np.stack([red, green, blue, alpha], axis=-1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _cache_path(version: ModelVersion, case: Case, finding: str) -> Path:
    return (
        Path(settings.MODELS_DIR)
        / "explanations"
        / f"version-{version.pk}"
        / f"case-{case.pk}-{finding}.png"
    )


def volume_folder(version: ModelVersion, case: Case, finding: str) -> Path:
    return _cache_path(version, case, finding).with_suffix("")


def pending_path(version: ModelVersion, case: Case, finding: str) -> Path:
    return _cache_path(version, case, finding).with_suffix(".pending")


def delete_overlays(case_ids: list[int]) -> int:
    """Delete the overlays every version drew for ``case_ids`` (a purged patient's cases): a
    2D overlay, a volume's folder of slice overlays (and one still being written), the marks
    of those queued; returns how many files went."""
    root = Path(settings.MODELS_DIR) / "explanations"
    deleted = 0
    for case_id in case_ids:
        for path in root.glob(f"version-*/case-{int(case_id)}-*"):
            if path.is_dir():
                deleted += sum(1 for p in path.rglob("*") if p.is_file())
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
                deleted += 1
    return deleted


@dataclass(frozen=True)
class Explanation:
    """An overlay PNG, the instance it lies over (the image the model read, or the slice), and
    whether it is empty (no region raises the finding's score: Grad-CAM is zero everywhere).
    For a volume: its series, the slice shown (0-based, the stack's order), the number of
    slices and the hottest slice."""

    png: bytes
    instance_id: int
    empty: bool
    series_id: int | None = None
    slice_index: int | None = None
    slices: int | None = None
    hottest_slice: int | None = None


class ExplanationPending(Exception):
    """A volume's overlays are not computed yet: a task computes them (queued once); ask again
    after ``retry_after`` seconds."""

    def __init__(self, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"The explanation is being computed; ask again in {retry_after} seconds.")
        self.retry_after = retry_after


class ExplanationFailed(Exception):
    """The task that computes a volume's overlays failed; the message says why. Asked again
    after ``MEDLOOP_EXPLANATION_PENDING_SECONDS``, it is queued again."""


def _is_transparent(png: bytes) -> bool:
    alpha = Image.open(io.BytesIO(png)).getchannel("A")
    return alpha.getextrema()[1] == 0


def _reads_volumes(version: ModelVersion) -> bool:
    return reads_volumes(registered().get(version.model_kind))


def explanation_overlay(
    *, version: ModelVersion, case: Case, finding: str, slice_index: int | None = None
) -> Explanation:
    """The overlay of ``finding`` for ``case`` by ``version`` (computed on first use). For a
    model that reads volumes, that of slice ``slice_index`` (0-based, the stack's order; the
    hottest slice when None), never computed here: :class:`ExplanationPending` when its task
    has not drawn it yet (queued by this call if it was not), :class:`ExplanationFailed` when
    that task failed. InvalidInput names a slice outside the series, or a slice asked of a
    version that explains one image."""
    if _reads_volumes(version):
        return _volume_overlay(version=version, case=case, finding=finding, slice_index=slice_index)
    if slice_index is not None:
        raise InvalidInput(
            f"slice applies to a model that reads volumes; model version {version.number} "
            f"({version.model_kind}) explains the case's first image"
        )
    path = _cache_path(version, case, finding)
    instance_id = first_instance(case).pk
    if path.is_file():
        png = path.read_bytes()
        return Explanation(png, instance_id, _is_transparent(png))
    model = load_version(version)
    heatmap = model.explain(case_input(case), finding)
    png = overlay_png(heatmap)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, png)
    return Explanation(png, instance_id, not bool(np.nan_to_num(heatmap).max() > 0))


def write_volume(folder: Path, heat: np.ndarray, series_id: int, instance_ids: list[int]) -> None:
    """The slice overlays of ``heat`` ``(slices, rows, columns)`` and ``volume.json``, written
    in a folder beside ``folder`` and renamed into place (a reader never sees half of it)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{folder.name}.partial-"))
    try:
        for k, plane in enumerate(heat):
            (partial / f"slice-{k:04d}.png").write_bytes(overlay_png(plane))
        peaks = np.nan_to_num(heat).reshape(len(heat), -1).max(axis=1)
        meta = {
            "series_id": series_id,
            "instance_ids": instance_ids,
            "hottest_slice": int(np.argmax(peaks)),
            "empty": not bool(peaks.max() > 0),
        }
        (partial / "volume.json").write_text(json.dumps(meta))
        stale = None
        if folder.exists():  # the series changed since (a slice quarantined): replace it
            stale = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{folder.name}.stale-"))
            os.replace(folder, stale / "old")
        os.replace(partial, folder)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    except OSError:
        # Another task put the same overlays in place first: keep theirs.
        if not (folder / "volume.json").is_file():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _volume_overlay(
    *, version: ModelVersion, case: Case, finding: str, slice_index: int | None
) -> Explanation:
    series, volume = case_volume(case)
    instance_ids = list(volume.stack.instance_ids)
    count = len(instance_ids)
    if slice_index is not None and not 0 <= slice_index < count:  # refused before queueing
        raise InvalidInput(
            f"slice {slice_index} is outside series {series.pk}'s slices 0..{count - 1} "
            "(0-based, in the viewer's order)"
        )
    folder = volume_folder(version, case, finding)
    meta = current_meta(folder, series.pk, instance_ids)
    if meta is None:
        failure = pending_state(pending_path(version, case, finding)).get("error")
        if failure:
            raise ExplanationFailed(failure)
        queue_volume_explanation(version=version, case=case, finding=finding)
        raise ExplanationPending()
    chosen = int(meta["hottest_slice"]) if slice_index is None else slice_index
    return Explanation(
        png=(folder / f"slice-{chosen:04d}.png").read_bytes(),
        instance_id=instance_ids[chosen],
        empty=bool(meta["empty"]),
        series_id=series.pk,
        slice_index=chosen,
        slices=count,
        hottest_slice=int(meta["hottest_slice"]),
    )


def current_meta(folder: Path, series_id: int, instance_ids: list[int]) -> dict[str, Any] | None:
    """The ``volume.json`` of overlays drawn on the series as it is now, else None (none
    drawn, or the series changed since: a slice quarantined)."""
    meta_path = folder / "volume.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is None or meta["series_id"] != series_id or meta["instance_ids"] != instance_ids:
        return None
    return meta


# --- queued once, computed by the task (explanation_jobs) ------------------------------------


def pending_state(path: Path) -> dict[str, Any]:
    """What the ``.pending`` file at ``path`` says (``{"error": ...}`` once the task failed),
    or ``{}`` when there is none or it is stale (older than
    ``MEDLOOP_EXPLANATION_PENDING_SECONDS``: its task was lost, or its failure is old enough
    to try again)."""
    try:
        age = time.time() - path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return {}
    if age > settings.MEDLOOP_EXPLANATION_PENDING_SECONDS:
        return {}
    try:
        found = json.loads(text) if text else {"queued": True}  # being written: queued
    except ValueError:
        found = {"queued": True}
    return found if isinstance(found, dict) else {"queued": True}


def queue_volume_explanation(*, version: ModelVersion, case: Case, finding: str) -> bool:
    """Queue the task that computes ``finding``'s overlays of ``case`` by ``version``, unless
    it is queued already (a fresh ``.pending`` file: several requests, or a request while the
    scoring's task waits, queue it once). Returns whether this call queued it."""
    marker = pending_path(version, case, finding)
    if pending_state(marker):
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # a stale one
    try:
        # O_EXCL: of two requests that found none, one creates it and queues the task.
        handle = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w") as out:
        json.dump({"queued": True}, out)
    send_after_commit("active_learning.explain_case", version.pk, case.pk, finding)
    return True
