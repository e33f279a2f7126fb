"""The CT detector's per-class operating points, matched in 3D.

The built-in model's rule (:func:`active_learning.ml.builtin.operating_points.box_operating_point`:
the lowest score whose precision reaches the target, a class shown only with enough validation
boxes and an AP over the floor) with the CT detector's matching: candidates take truth boxes by
**3D IoU** (same volume, same class, each truth box once, in score order:
:func:`active_learning.ml.metrics.boxes.match_candidates`) at the configuration's ``froc_iou``
(0.1, as MONAI's LUNA16 detection evaluation), and the AP floor is checked against AP at that
same IoU. Matching at 2D IoU 0.5 would count a candidate on the nodule's slices with a 3D IoU of
0.2 as false, and one with the nodule's outline on other slices as true.

Pure numpy; no Django."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from active_learning.ml.builtin.operating_points import box_operating_point
from active_learning.ml.metrics.boxes import match_candidates

_VOLUME_KEYS = ("z", "depth")


def _require_3d(rows: Sequence[Mapping[str, Any]], what: str) -> None:
    for row in rows:
        if any(row.get(key) is None for key in _VOLUME_KEYS):
            raise ValueError(f"{what} box {dict(row)!r} has no slice range (z, depth)")


def fit_box_operating_points_3d(
    truth: Sequence[Mapping[str, Any]],
    candidates: Sequence[Mapping[str, Any]],
    classes: Sequence[str],
    *,
    ap_per_class: Mapping[str, float | None],
    ap50_per_class: Mapping[str, float | None],
    iou_threshold: float,
    target: float,
    min_positives: int,
    min_ap: float,
) -> dict[str, dict[str, Any]]:
    """Per class, the contract's box operating point from 3D truth and candidate boxes (rows
    with ``image_id`` (the volume), ``finding``, ``x, y, z, width, height, depth`` in voxels
    and slices, and ``score`` for candidates).

    A candidate is true when it takes a truth box at 3D IoU >= ``iou_threshold``;
    ``ap_per_class`` is AP at that IoU (the floor ``min_ap`` applies to it),
    ``ap50_per_class`` AP at 3D IoU 0.5 (kept under the contract's ``ap50``). Each point adds
    ``ap`` and ``match_iou``. ValueError when a box has no slice range."""
    _require_3d(truth, "truth")
    _require_3d(candidates, "candidate")
    matched = match_candidates(truth, candidates, iou_threshold=iou_threshold)
    points = {}
    for name in classes:
        rows = [(score, hit) for finding, score, hit in matched.candidates if finding == name]
        ap = ap_per_class.get(name)
        point = box_operating_point(
            scores=[score for score, _ in rows],
            is_true=[hit for _, hit in rows],
            positives=matched.positives.get(name, 0),
            ap50=ap,  # the floor's AP: at the matching IoU
            target=target,
            min_positives=min_positives,
            min_ap=min_ap,
        )
        point["ap"] = ap
        point["match_iou"] = iou_threshold
        point["ap50"] = ap50_per_class.get(name)
        if not point["reliable"] and point["reason"].startswith("average precision"):
            point["reason"] = point["reason"].replace(
                "average precision", f"average precision at 3D IoU {iou_threshold:g}", 1
            )
        points[name] = point
    return points
