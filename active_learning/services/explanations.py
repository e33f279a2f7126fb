"""Grad-CAM explanations as viewer overlays: a PNG the size of the case's first image, a
colour map (blue -> red) whose alpha follows the heat, so the image stays readable under it.
Rendered once per (model version, case, finding) and kept beside the version's suggestions."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image

from active_learning.models import ModelVersion
from active_learning.services.case_inputs import case_input, first_instance
from active_learning.services.versions import load_version
from annotations.atomic_files import write_atomically
from annotations.models import Case

MAX_ALPHA = 0.6


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


def delete_overlays(case_ids: list[int]) -> int:
    """Delete the overlays every version drew for ``case_ids`` (a purged patient's cases);
    returns how many files went."""
    root = Path(settings.MODELS_DIR) / "explanations"
    deleted = 0
    for case_id in case_ids:
        for path in root.glob(f"version-*/case-{int(case_id)}-*.png"):
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


@dataclass(frozen=True)
class Explanation:
    """An overlay PNG, the instance it lies over (the image the model read), and whether it is
    empty (no region raises the finding's score: Grad-CAM is zero everywhere)."""

    png: bytes
    instance_id: int
    empty: bool


def _is_transparent(png: bytes) -> bool:
    alpha = Image.open(io.BytesIO(png)).getchannel("A")
    return alpha.getextrema()[1] == 0


def explanation_overlay(*, version: ModelVersion, case: Case, finding: str) -> Explanation:
    """The overlay of ``finding`` for ``case`` by ``version`` (computed on first use)."""
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
