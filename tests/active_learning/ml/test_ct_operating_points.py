"""The CT detector's operating points are fitted in 3D (issue 21): a candidate takes its nodule
at 3D IoU ``froc_iou`` (0.1, as LUNA16's evaluation), not at 2D IoU 0.5, and the AP floor
reads AP at that IoU; a candidate with the nodule's outline on other slices is false."""

from __future__ import annotations

import pytest

from active_learning.ml.ct_detector.config import CTDetectorConfig
from active_learning.ml.ct_detector.model import average_precision_3d
from active_learning.ml.ct_detector.operating_points import fit_box_operating_points_3d
from medloop.metrics.boxes import iou_matrix_xyzwhd

FROC_IOU = CTDetectorConfig().froc_iou
SCANS = ["A", "B", "C", "D", "E"]


def _box(scan: str, z: float, score: float | None = None) -> dict[str, object]:
    row: dict[str, object] = {"image_id": scan, "finding": "nodule", "x": 10.0, "y": 10.0,
                              "z": z, "width": 6.0, "height": 6.0, "depth": 4.0}  # fmt: skip
    return row if score is None else {**row, "score": score}


def _xyzwhd(row: dict[str, object]) -> list[float]:
    return [float(row[k]) for k in ("x", "y", "z", "width", "height", "depth")]  # type: ignore[arg-type]


# One nodule per scan over slices 5-9. On each scan a candidate over slices 7.67-11.67: the
# nodule's outline, a third of its slices (3D IoU 0.2). On scan A, above them all, one with the
# outline on slices 20-24 (2D IoU 1, 3D IoU 0).
TRUTH = [_box(scan, 5.0) for scan in SCANS]
SHIFTED = [_box(scan, 5.0 + 4.0 - 4.0 / 3.0, 0.9 - 0.05 * k) for k, scan in enumerate(SCANS)]
ELSEWHERE = _box("A", 20.0, 0.95)
CANDIDATES = [ELSEWHERE, *SHIFTED]


def _fit(**overrides: object) -> dict[str, object]:
    ap = average_precision_3d(
        TRUTH, CANDIDATES, ["nodule"], images=SCANS, iou_thresholds=[FROC_IOU, 0.5]
    )
    settings: dict[str, object] = {
        "ap_per_class": ap["ap_10_per_class"],
        "ap50_per_class": ap["ap_50_per_class"],
        "iou_threshold": FROC_IOU,
        "target": 0.7,
        "min_positives": 5,
        "min_ap": 0.1,
        **overrides,
    }
    return fit_box_operating_points_3d(TRUTH, CANDIDATES, ["nodule"], **settings)["nodule"]  # type: ignore[arg-type]


def test_the_boxes_are_what_the_test_says():
    assert pytest.approx(0.1) == FROC_IOU
    iou = iou_matrix_xyzwhd([_xyzwhd(SHIFTED[0])], [_xyzwhd(TRUTH[0])])[0, 0]
    assert 0.1 < iou < 0.5 and iou == pytest.approx(0.2)
    assert iou_matrix_xyzwhd([_xyzwhd(ELSEWHERE)], [_xyzwhd(TRUTH[0])])[0, 0] == 0.0


def test_a_candidate_at_3d_iou_0_2_is_true_and_one_on_other_slices_false():
    point = _fit()
    # By score: .95 false (other slices), then five true ones at .9 ... .7; the lowest
    # threshold whose precision reaches .7 is .7, with 5 of 6 true above it.
    assert point["threshold"] == pytest.approx(0.7)
    assert point["precision"] == pytest.approx(5 / 6)
    assert point["recall"] == pytest.approx(1.0)
    assert point["reliable"] is True, point["reason"]
    assert point["match_iou"] == pytest.approx(FROC_IOU)
    # The floor reads AP at 3D IoU 0.1; at 0.5 no candidate matches, AP 0 there.
    assert isinstance(point["ap"], float) and point["ap"] > 0.5
    assert point["ap50"] == pytest.approx(0.0)


def test_the_ap_floor_is_at_the_matching_iou():
    # With a floor above the AP at 3D IoU 0.1 the class is hidden, and the reason names it.
    ap = _fit()["ap"]
    assert isinstance(ap, float)
    hidden = _fit(min_ap=min(1.0, ap + 0.05))
    assert hidden["reliable"] is False
    assert "average precision at 3D IoU 0.1" in str(hidden["reason"])


def test_matching_at_iou_0_5_counts_the_shifted_candidates_false():
    # The same boxes at IoU 0.5: nothing is true, no threshold reaches the target.
    point = _fit(iou_threshold=0.5)
    assert point["threshold"] is None and point["reliable"] is False


def test_a_box_without_a_slice_range_is_refused():
    flat = {k: v for k, v in SHIFTED[0].items() if k not in ("z", "depth")}
    with pytest.raises(ValueError, match="no slice range"):
        fit_box_operating_points_3d(
            TRUTH,
            [flat],
            ["nodule"],
            ap_per_class={},
            ap50_per_class={},
            iou_threshold=FROC_IOU,
            target=0.7,
            min_positives=5,
            min_ap=0.1,
        )
