"""The acquisition score sees every candidate and likely misses: a case whose lesion the
detector leaves below its operating threshold ranks above a clean normal case, whatever the
text and labs terms say."""

from __future__ import annotations

import math

import pytest

from active_learning.ml.builtin import uncertainty as u
from active_learning.ml.interface import CasePrediction, PredictedBox

CLASSES = ("nodule", "effusion", "cardiomegaly")
VOCAB = 500
LN2 = math.log(2.0)
OPERATING = {
    "boxes": {
        "nodule": {"threshold": 0.5, "reliable": True},
        "effusion": {"threshold": 0.4, "reliable": True},
        "cardiomegaly": {"threshold": None, "reliable": False},
    }
}


def _box(finding: str, score: float, instability: float = 0.1) -> PredictedBox:
    return PredictedBox(
        finding, 40, 40, 12, 12, score, localization_instability=instability, class_entropy=0.0
    )


def _prediction(
    candidates: list[PredictedBox],
    probabilities: dict[str, float],
    report_entropy: float,
    shown_at: dict[str, float],
) -> CasePrediction:
    shown = [b for b in candidates if b.score >= shown_at.get(b.finding, 1.1)]
    return CasePrediction(
        case_id="c",
        boxes=shown,
        findings=probabilities,
        finding_uncertainty={k: float(u.binary_entropy(p)) for k, p in probabilities.items()},
        report={},
        report_sentences=[],
        report_uncertainty={"mean_token_entropy": report_entropy},
        case_score=0.0,
        candidates=candidates,
    )


def _score(prediction: CasePrediction) -> float:
    return u.prediction_score(prediction, thresholds=u.box_thresholds(OPERATING), vocab_size=VOCAB)


SHOWN_AT = {"nodule": 0.5, "effusion": 0.4}


def test_a_missed_lesion_ranks_above_a_clean_normal_case_and_a_found_one():
    # The nodule is seen (probability 0.7) but its best candidate (0.3) stays under the 0.5
    # threshold: nothing is shown. Its report is the model's most fluent (low entropy).
    missed = _prediction(
        [_box("nodule", 0.30, 0.4), _box("effusion", 0.02, 1.0)],
        {"nodule": 0.70, "effusion": 0.03, "cardiomegaly": 0.05},
        report_entropy=0.1 * math.log(VOCAB),
        shown_at=SHOWN_AT,
    )
    # A clean normal case with a few faint background candidates (unstable, as faint ones are)
    # and an unsure-sounding report: text terms higher than the missed case's.
    normal = _prediction(
        [_box("nodule", 0.03, 1.0), _box("effusion", 0.02, 1.0), _box("nodule", 0.01, 1.0)],
        {"nodule": 0.05, "effusion": 0.04, "cardiomegaly": 0.06},
        report_entropy=0.6 * math.log(VOCAB),
        shown_at=SHOWN_AT,
    )
    # The lesion found confidently and shown, stable across views.
    found = _prediction(
        [_box("nodule", 0.97, 0.02)],
        {"nodule": 0.96, "effusion": 0.02, "cardiomegaly": 0.03},
        report_entropy=0.1 * math.log(VOCAB),
        shown_at=SHOWN_AT,
    )
    assert missed.boxes == [] and normal.boxes == [] and found.boxes != []
    scores = {name: _score(p) for name, p in [("missed", missed), ("normal", normal),
                                               ("found", found)]}  # fmt: skip
    assert scores["missed"] > scores["found"] > 0
    assert scores["missed"] > scores["normal"] + 0.3
    parts = u.prediction_parts(missed, thresholds=u.box_thresholds(OPERATING), vocab_size=VOCAB)
    assert parts.miss == pytest.approx(0.70) and parts.ambiguity > 0.8
    normal_parts = u.prediction_parts(
        normal, thresholds=u.box_thresholds(OPERATING), vocab_size=VOCAB
    )
    # The normal case's faint candidates barely count although they vanish in other views.
    assert normal_parts.instability < 0.1 and normal_parts.report > parts.report


def test_a_candidate_at_its_threshold_is_the_most_ambiguous_and_far_ones_are_not():
    def ambiguity(score: float) -> float:
        return u.acquisition_parts(
            candidate_findings=["nodule"],
            candidate_scores=[score],
            candidate_instability=[0.0],
            shown_findings=[],
            thresholds={"nodule": 0.5},
            finding_probabilities={},
            finding_uncertainty=[],
            report_token_entropy=None,
            vocab_size=VOCAB,
        ).ambiguity

    assert ambiguity(0.5) == pytest.approx(1.0)
    assert ambiguity(0.01) < 0.1 and ambiguity(0.995) < 0.1
    assert ambiguity(0.4) > ambiguity(0.2) > ambiguity(0.05)


def test_an_unreliable_class_with_a_high_probability_counts_as_a_likely_miss():
    # Cardiomegaly has no reliable operating point: no box can be shown for it, so a case the
    # findings head calls cardiomegaly is one the loop still needs labels for.
    cardiomegaly = _prediction(
        [_box("cardiomegaly", 0.6, 0.1)],
        {"nodule": 0.02, "effusion": 0.02, "cardiomegaly": 0.9},
        report_entropy=0.2 * math.log(VOCAB),
        shown_at=SHOWN_AT,
    )
    parts = u.prediction_parts(
        cardiomegaly, thresholds=u.box_thresholds(OPERATING), vocab_size=VOCAB
    )
    assert parts.miss == pytest.approx(0.9) and parts.image > 0.9


def test_without_candidates_the_shown_boxes_stand_in():
    prediction = _prediction(
        [_box("nodule", 0.55, 0.3)], {"nodule": 0.6}, report_entropy=0.0, shown_at=SHOWN_AT
    )
    prediction.candidates = []
    parts = u.prediction_parts(prediction, thresholds={"nodule": 0.5}, vocab_size=VOCAB)
    assert parts.ambiguity > 0.9 and parts.miss == 0.0


def test_the_older_entry_point_stays_in_range():
    assert u.case_score([], [], [], None, VOCAB) == 0.0
    value = u.case_score([LN2], [1.0], [LN2], math.log(VOCAB), VOCAB)
    assert value == pytest.approx(1.0)
