"""The simulated annotator: its boxes differ from the truth as VinDr-CXR readers differ.

Tolerance, per class: the simulated IoU between true and annotated boxes has its median within
0.05 of VinDr's median best IoU between two readers, and its CDF stays within 0.06 of VinDr's
(Kolmogorov-Smirnov distance at VinDr's 5 %-step quantiles). True boxes are the committed box
priors' samples on a 512 px image, so clipping at the image edge counts as it would in a run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from active_learning.ml import simulated_annotator as sa
from active_learning.ml.box_priors import default_data_dir, load_priors
from active_learning.ml.box_priors import dumps as box_priors_dumps
from active_learning.ml.interface import Box
from active_learning.ml.synthetic import FINDING_CLASSES
from tests.support.json_close import assert_json_close
from tests.support.tools import require

MEDIAN_TOLERANCE = 0.05
KS_TOLERANCE = 0.06
SIZE = 512


def _simulated_ious(finding: str, seed: int, count: int = 3000) -> np.ndarray:
    annotator = sa.SimulatedAnnotator(seed=seed)
    samples = load_priors()["classes"][finding]["samples"]
    ious = []
    for k in range(count):
        cx, cy, w, h = samples[k % len(samples)]
        truth = Box(finding, (cx - w / 2) * SIZE, (cy - h / 2) * SIZE, w * SIZE, h * SIZE)
        drawn = annotator.redraw(truth, rows=SIZE, columns=SIZE)
        a = np.array([[truth.x, truth.y, truth.x + truth.width, truth.y + truth.height]])
        b = np.array([[drawn.x, drawn.y, drawn.x + drawn.width, drawn.y + drawn.height]])
        ious.append(sa.box_iou(a, b)[0, 0])
    return np.array(ious)


@pytest.mark.parametrize("finding", FINDING_CLASSES)
def test_annotator_iou_matches_vindr_readers_within_tolerance(finding: str) -> None:
    reference = sa.load_reader_variation()["classes"][finding]
    ious = _simulated_ious(finding, seed=3)
    vindr_median = reference["iou_quantiles"][reference["iou_levels"].index(0.5)]
    assert abs(float(np.median(ious)) - vindr_median) <= MEDIAN_TOLERANCE
    distance = sa.iou_ks_distance(ious, reference["iou_levels"], reference["iou_quantiles"])
    assert distance <= KS_TOLERANCE


def test_readers_disagree_most_on_nodules_as_vindr_reports() -> None:
    classes = sa.load_reader_variation()["classes"]
    medians = {name: stats["iou_quantiles"][10] for name, stats in classes.items()}
    # VinDr's readers: nodules' median best IoU about 0.47, cardiomegaly about 0.75.
    assert 0.4 < medians["nodule"] < 0.55
    assert medians["nodule"] == min(medians.values())
    assert medians["cardiomegaly"] > 0.7
    assert all(stats["pairs"] >= 300 for stats in classes.values())


def test_annotator_is_deterministic_keeps_boxes_inside_the_image_and_scale_zero_is_truth() -> None:
    truth = [Box("nodule", 500.0, 10.0, 12.0, 12.0), Box("effusion", 0.0, 300.0, 120.0, 90.0)]
    first = sa.SimulatedAnnotator(seed=7).annotate(truth, rows=SIZE, columns=SIZE)
    again = sa.SimulatedAnnotator(seed=7).annotate(truth, rows=SIZE, columns=SIZE)
    assert first == again
    for _ in range(200):
        for box in sa.SimulatedAnnotator(seed=_).annotate(truth, rows=SIZE, columns=SIZE):
            assert box.x >= 0 and box.y >= 0 and box.width >= 1 and box.height >= 1
            assert box.x + box.width <= SIZE + 1e-6 and box.y + box.height <= SIZE + 1e-6
    exact = sa.SimulatedAnnotator(seed=7, scale=0.0).annotate(truth, rows=SIZE, columns=SIZE)
    assert exact == truth


def test_iou_ks_distance_sees_a_shifted_distribution() -> None:
    levels = [i / 20 for i in range(21)]
    uniform = np.linspace(0, 1, 21).tolist()
    assert sa.iou_ks_distance(np.linspace(0, 1, 2001), levels, uniform) < 0.01
    assert sa.iou_ks_distance(np.linspace(0, 0.5, 2001), levels, uniform) > 0.4


def test_committed_reader_variation_is_rebuilt_from_the_vindr_csv() -> None:
    data_dir = default_data_dir()
    require([] if data_dir else ["torchxrayvision 1.5.7 data"], "rebuilding the reader variation")
    assert data_dir is not None
    # Written by the shared rebuild (bench/box_priors.rebuild) with box_priors.dumps.
    rebuilt = json.loads(box_priors_dumps(sa.build_reader_variation(data_dir)))
    committed = json.loads(sa.VARIATION_PATH.read_text(encoding="utf-8"))
    assert_json_close(rebuilt, committed)


def test_simulated_annotator_never_imports_django_or_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import active_learning.ml.simulated_annotator; "
        "print(any(m.split('.')[0] in ('django', 'torch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
