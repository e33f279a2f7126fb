"""Repeat-factor sampling of the training cases: the first pass streams uniformly and counts, the
later passes repeat a case by sqrt(t / f) of its rarest finding (LVIS), and training records the
factors it used."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
from active_learning.ml.builtin.sampling import RepeatFactorSampler, case_findings, repeat_factors
from active_learning.ml.calibration import is_calibration_case
from active_learning.ml.datasets import synthetic_source
from active_learning.ml.interface import Box, LabelledCase


def case(case_id: int, *findings: str, present: tuple[str, ...] = ()) -> LabelledCase:
    return LabelledCase(
        case_id=str(case_id),
        image=np.zeros((8, 8), dtype=np.float32),
        boxes=[Box(name, 1, 1, 2, 2) for name in findings],
        findings={name: True for name in present} | {"nodule": False},
    )


def training_set() -> list[LabelledCase]:
    """100 cases: 70 normal, 20 with cardiomegaly, 9 with effusion (one of them also marked
    present for cardiomegaly without a box) and 1 with a pneumothorax."""
    cases = [case(i) for i in range(70)]
    cases += [case(100 + i, "cardiomegaly") for i in range(20)]
    cases += [case(200 + i, "effusion") for i in range(8)]
    cases.append(case(300, "effusion", present=("cardiomegaly",)))
    cases.append(case(400, "pneumothorax"))
    return cases


def test_a_case_holds_its_boxes_findings_and_those_marked_present():
    assert case_findings(case(1, "effusion", present=("cardiomegaly",))) == {
        "effusion",
        "cardiomegaly",
    }
    assert case_findings(case(2)) == set()  # "nodule": False is not a finding held


def test_repeat_factors_follow_the_square_root_rule_and_never_drop_below_one():
    factors = repeat_factors({"pneumothorax": 1, "effusion": 9, "cardiomegaly": 21}, 100, 0.3)
    assert factors["pneumothorax"] == pytest.approx(math.sqrt(0.3 / 0.01))  # 5.48
    assert factors["effusion"] == pytest.approx(math.sqrt(0.3 / 0.09))  # 1.83
    assert factors["cardiomegaly"] == pytest.approx(math.sqrt(0.3 / 0.21))  # 1.20
    assert repeat_factors({"cardiomegaly": 50}, 100, 0.3) == {"cardiomegaly": 1.0}
    assert repeat_factors({}, 0, 0.3) == {}


def test_the_first_pass_is_uniform_and_later_passes_repeat_rare_cases():
    cases = training_set()
    sampler = RepeatFactorSampler(0.3, np.random.default_rng(0))
    first = [c.case_id for c in sampler.one_pass(iter(cases))]
    assert first == [c.case_id for c in cases]  # counted, not repeated
    assert sampler.factors is not None
    assert sampler.factors["pneumothorax"] == pytest.approx(math.sqrt(30))
    # A case takes the factor of its rarest finding: 300 holds effusion and cardiomegaly.
    assert sampler.case_factor(cases[-2]) == pytest.approx(sampler.factors["effusion"])

    seen: Counter[str] = Counter()
    passes = 400
    for _ in range(passes):
        seen.update(c.case_id for c in sampler.one_pass(iter(cases)))
    assert seen["0"] == passes  # a normal case exactly once per pass
    # Fractional factors are rounded stochastically: right on average.
    assert seen["400"] / passes == pytest.approx(math.sqrt(30), abs=0.15)
    assert seen["200"] / passes == pytest.approx(math.sqrt(0.3 / 0.09), abs=0.1)
    assert seen["100"] / passes == pytest.approx(math.sqrt(0.3 / 0.21), abs=0.1)
    # So the rare finding's share of what training sees grows: 1 % of the cases, about 4 %
    # of the passes' cases.
    share = seen["400"] / sum(seen.values())
    assert 0.035 < share < 0.05


def test_a_pass_stopped_early_counts_nothing_and_zero_keeps_passes_uniform():
    cases = training_set()
    sampler = RepeatFactorSampler(0.3, np.random.default_rng(0))
    stream = sampler.one_pass(iter(cases))
    for _ in range(10):
        next(stream)
    stream.close()
    assert sampler.factors is None  # the frequencies of a partial pass would be wrong
    off = RepeatFactorSampler(0.0, np.random.default_rng(0))
    for _ in range(3):
        assert [c.case_id for c in off.one_pass(iter(cases))] == [c.case_id for c in cases]
    assert off.factors == {}


def test_training_repeats_rare_findings_and_records_the_factors():
    """The built-in model's training loop uses the sampler: the factors it used are saved with
    the version's settings, and with the threshold 0 nothing is recorded."""
    labelled = list(synthetic_source(seed=3, start=0, count=24, size=64)())
    config = dict(input_size=64, vocab_size=120, report_max_tokens=12, batch_size=4, seed=0)
    model = BuiltinModel(BuiltinConfig(repeat_factor_threshold=0.5, **config))
    model.train(lambda: iter(labelled), max_steps=14)  # 24 cases: 6 steps a pass
    # Counted over the cases training sees (a few are held out to calibrate the findings).
    trained = [c for c in labelled if not is_calibration_case(c.case_id)]
    held = Counter(name for c in trained for name in case_findings(c))
    factors = model.config.extra["repeat_factors"]
    assert set(factors) == set(held)
    rarest = min(held, key=lambda name: held[name])
    expected = max(1.0, math.sqrt(0.5 / (held[rarest] / len(trained))))
    assert factors[rarest] == pytest.approx(expected, abs=0.01)

    plain = BuiltinModel(BuiltinConfig(repeat_factor_threshold=0.0, **config))
    plain.train(lambda: iter(labelled), max_steps=14)
    assert "repeat_factors" not in plain.config.extra


def test_a_negative_threshold_is_refused():
    with pytest.raises(ValueError, match="repeat_factor_threshold"):
        BuiltinConfig.from_dict({"repeat_factor_threshold": -0.1})
