"""The paired bootstrap of the promotion guard: its metrics recomputed on weighted cases agree
with scikit-learn on the unweighted set, and a gain is called beyond noise only when the
paired interval excludes zero."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve, roc_auc_score

from active_learning.ml import paired_bootstrap as pb
from active_learning.ml.interface import Box, CasePrediction, LabelledCase, PredictedBox

CLASSES = ["nodule", "effusion"]


def _prediction(case_id: str, boxes: list[PredictedBox], findings: dict[str, float]):
    return CasePrediction(
        case_id=case_id,
        boxes=boxes,
        findings=findings,
        finding_uncertainty={},
        report={"impression": ""},
        report_sentences=[],
        report_uncertainty={},
        case_score=0.0,
    )


def _case(case_id: str, boxes: list[Box], findings: dict[str, bool | None]) -> LabelledCase:
    return LabelledCase(
        case_id=case_id, image=np.zeros((1, 1)), boxes=boxes, findings=findings, report={}
    )


def test_box_ap_from_every_candidate_matches_a_ranking_of_true_and_false_positives():
    # One truth nodule per case; each case has a hit (IoU 1) and a miss, at made-up scores.
    rng = np.random.default_rng(3)
    predictions, cases, scores, hits = [], [], [], []
    for i in range(12):
        truth = Box("nodule", 10, 10, 20, 20)
        hit_score, miss_score = rng.uniform(0.05, 0.9, size=2)
        predictions.append(
            _prediction(
                str(i),
                [
                    PredictedBox("nodule", 10, 10, 20, 20, float(hit_score)),
                    PredictedBox("nodule", 80, 80, 20, 20, float(miss_score)),
                ],
                {},
            )
        )
        cases.append(_case(str(i), [truth], {}))
        scores += [hit_score, miss_score]
        hits += [1, 0]
    outcomes = pb.case_outcomes(predictions, cases, CLASSES)
    ap = pb.box_map50(outcomes, np.ones(12))
    # Every truth box is found by some candidate, so recall reaches 1 and sklearn's curve holds
    # every point; the VOC rule takes, at each recall, the best precision at that recall or more.
    precision, recall, _ = precision_recall_curve(hits, scores)  # recall decreasing
    envelope = np.maximum.accumulate(precision)
    assert ap == pytest.approx(float(np.sum(-np.diff(recall) * envelope[:-1])))
    # Only nodules have truth: effusion does not count in the mean.
    assert outcomes.truth_counts.sum(axis=0).tolist() == [12, 0]


def test_weighted_auroc_equals_sklearn_with_the_same_weights():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=40).astype(float)
    scores = np.round(rng.uniform(size=40), 1)  # ties on purpose
    weights = rng.integers(0, 4, size=40).astype(float)
    ours = pb._weighted_auroc(scores, labels, weights)
    assert ours == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights))


def test_a_small_average_gain_within_noise_is_not_beyond_noise():
    serving = np.linspace(0.3, 0.6, 25)
    # Better on average (by 0.032), but case by case the difference swings by about 0.3:
    # 13 cases gain 0.32, 12 lose 0.28.
    candidate = serving + np.where(np.arange(25) % 2 == 0, 0.32, -0.28)
    result = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate),
        pb.outcomes_from_values(serving),
        metric_name="mean",
        resamples=2000,
        seed=1,
    )
    assert result.difference == pytest.approx(0.032)
    assert result.low < 0 < result.high and not result.beyond_noise
    assert result.resamples_used == 2000 and 0.05 < result.p_not_better < 0.95


def test_a_clear_gain_is_beyond_noise_and_the_result_is_reproducible():
    rng = np.random.default_rng(0)
    serving = rng.uniform(0.2, 0.8, size=25)
    candidate = serving + 0.1 + rng.normal(0, 0.05, size=25)
    kwargs = {"metric_name": "mean", "resamples": 1000, "seed": 7}
    first = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate), pb.outcomes_from_values(serving), **kwargs
    )
    again = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate), pb.outcomes_from_values(serving), **kwargs
    )
    assert first.beyond_noise and first.low > 0.05 and first.p_not_better == 0.0
    assert first == again


def test_pairing_removes_case_difficulty():
    # Case difficulty varies a lot, the candidate is better by exactly 0.01 on every case:
    # unpaired, that gain would drown; paired, it is certain.
    difficulty = np.linspace(0.0, 0.9, 30)
    result = pb.paired_bootstrap(
        pb.outcomes_from_values(difficulty + 0.01),
        pb.outcomes_from_values(difficulty),
        metric_name="mean",
        resamples=1000,
    )
    assert result.low == pytest.approx(0.01) and result.beyond_noise


def test_an_unknown_metric_and_unpaired_outcomes_are_refused():
    values = pb.outcomes_from_values([0.1, 0.2])
    with pytest.raises(pb.UnsupportedMetric, match="bleu"):
        pb.paired_bootstrap(values, values, metric_name="reports.bleu_4")
    with pytest.raises(ValueError, match="same cases"):
        pb.paired_bootstrap(values, pb.outcomes_from_values([0.1]), metric_name="mean")
