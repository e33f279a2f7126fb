"""Box priors from the VinDr-CXR and NIH box lists: plausible values, reproducible JSON."""

from __future__ import annotations

import json

from active_learning.ml import box_priors
from active_learning.ml.synthetic import FINDING_CLASSES
from tests.support.json_close import assert_json_close
from tests.support.tools import require


def test_committed_priors_cover_every_finding_class_with_plausible_boxes() -> None:
    priors = box_priors.load_priors()
    assert set(priors["classes"]) == set(FINDING_CLASSES)
    for name, stats in priors["classes"].items():
        assert stats["count"] >= 100, name
        assert sum(stats["sources"].values()) == stats["count"]
        assert 50 <= len(stats["samples"]) <= 200
        for cx, cy, w, h in stats["samples"]:
            assert 0 < w <= 1 and 0 < h <= 1
            assert cx - w / 2 >= -1e-3 and cx + w / 2 <= 1 + 1e-3  # values rounded to 4 places
            assert cy - h / 2 >= -1e-3 and cy + h / 2 <= 1 + 1e-3
        for values in stats["quantiles"].values():
            assert values == sorted(values)
            assert values[0] >= 0 and values[-1] <= 1.5


def test_priors_reflect_known_anatomy_of_the_findings() -> None:
    classes = box_priors.load_priors()["classes"]

    def median(name: str, dim: str) -> float:
        return classes[name]["quantiles"][dim][10]

    assert median("nodule", "w") < median("mass", "w")  # the 3 cm nodule/mass split
    assert median("cardiomegaly", "w") > 0.3  # the heart box spans a third of the chest
    assert 0.5 < median("cardiomegaly", "cx") < 0.65  # heart lies to the patient's left
    assert median("effusion", "cy") > median("pneumothorax", "cy")  # fluid low, air high


def test_priors_json_stays_small() -> None:
    assert box_priors.PRIORS_PATH.stat().st_size < 100_000


def test_rebuilding_priors_from_the_csv_files_reproduces_the_committed_json() -> None:
    data_dir = box_priors.default_data_dir()
    if data_dir is None:
        require(["torchxrayvision 1.5.7 (requirements-extra.txt)"], "rebuilding the box priors")
    rebuilt = json.loads(box_priors.dumps(box_priors.build_priors(data_dir)))
    committed = json.loads(box_priors.PRIORS_PATH.read_text(encoding="utf-8"))
    assert_json_close(rebuilt, committed)
