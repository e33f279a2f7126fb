"""The verification statistics: figures by hand on small fixtures, against scikit-learn and the
existing box metrics, bootstrap intervals against scipy.stats.bootstrap, DeLong against the
O(m n) Mann-Whitney-kernel form written out here."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score

from active_learning.ml.calibration import expected_calibration_error
from active_learning.ml.metrics.boxes import froc as box_froc
from active_learning.ml.paired_bootstrap import CaseOutcomes, box_map50
from active_learning.ml.verification import weighted
from active_learning.ml.verification.delong import delong_test
from active_learning.ml.verification.figures import (
    VersionOutcomes,
    bootstrap_figures,
    delong_per_finding,
    figure_rows,
    paired_differences,
    subset,
)
from active_learning.ml.verification.resampling import percentile_interval, resample_counts

ONE = np.ones((1, 8))


def test_operating_point_matches_hand_counts() -> None:
    # threshold 0.5: TP cases 0, 1; FN case 2; FP case 4; TN cases 5, 6, 7; case 3 unread.
    labels = np.array([1, 1, 1, np.nan, 0, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.2, 0.99, 0.7, 0.4, 0.1, 0.3])
    point = weighted.operating_point(labels, scores, 0.5, ONE)
    assert point["sensitivity"][0] == pytest.approx(2 / 3)
    assert point["specificity"][0] == pytest.approx(3 / 4)
    assert point["ppv"][0] == pytest.approx(2 / 3)
    assert point["npv"][0] == pytest.approx(3 / 4)
    # Case 0 drawn twice and case 4 not at all: TP 3, FP 0.
    weights = np.array([[2, 1, 1, 1, 0, 1, 1, 1.0]])
    point = weighted.operating_point(labels, scores, 0.5, weights)
    assert point["sensitivity"][0] == pytest.approx(3 / 4)
    assert point["ppv"][0] == 1.0
    assert point["specificity"][0] == 1.0


def test_figures_are_undefined_not_zero_without_positives() -> None:
    labels = np.zeros(8)
    point = weighted.operating_point(labels, np.linspace(0, 1, 8), 0.5, ONE)
    assert np.isnan(point["sensitivity"][0])
    assert point["specificity"][0] == pytest.approx(4 / 8)
    assert np.isnan(weighted.auroc(labels, np.linspace(0, 1, 8), ONE)[0])


def test_auroc_and_ap_match_scikit_learn_with_case_weights() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300).astype(float)
    # Rounded scores make many ties, the case the midrank / grouping must get right.
    scores = np.round(expit(labels + rng.normal(size=300)), 1)
    weights = resample_counts(300, 5, seed=1)
    auc = weighted.auroc(labels, scores, weights)
    ap = weighted.average_precision(labels, scores, weights)
    for r in range(5):
        assert auc[r] == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights[r]))
        assert ap[r] == pytest.approx(
            average_precision_score(labels, scores, sample_weight=weights[r])
        )


def test_ece_matches_the_calibration_module() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p**2).astype(float)
    ece = weighted.expected_calibration_error(y, p, np.ones((1, 200)), 10)[0]
    assert ece == pytest.approx(expected_calibration_error(p, y, 10))


def _box_fixture() -> tuple[list[dict], list[dict]]:
    """Four one-image cases, one class: truth on cases 0, 1, 2 (two boxes on case 2)."""
    truth = [
        {"image_id": "c0", "finding": "nodule", "x": 0, "y": 0, "width": 10, "height": 10},
        {"image_id": "c1", "finding": "nodule", "x": 0, "y": 0, "width": 10, "height": 10},
        {"image_id": "c2", "finding": "nodule", "x": 0, "y": 0, "width": 10, "height": 10},
        {"image_id": "c2", "finding": "nodule", "x": 50, "y": 50, "width": 10, "height": 10},
    ]

    def box(image: str, x: float, score: float) -> dict:
        return {"image_id": image, "finding": "nodule", "x": x, "y": x, "width": 10,
                "height": 10, "score": score}  # fmt: skip

    candidates = [
        box("c0", 0, 0.95),  # hit
        box("c3", 0, 0.90),  # false positive (normal case)
        box("c1", 1, 0.80),  # hit (IoU 0.68)
        box("c3", 30, 0.70),  # false positive
        box("c2", 50, 0.60),  # hit
        box("c0", 30, 0.50),  # false positive
        box("c2", 0, 0.40),  # hit
    ]
    return truth, candidates


def test_froc_by_hand_and_as_the_box_metrics_compute_it() -> None:
    truth, candidates = _box_fixture()
    # Candidates by score: H F H F H F H; 4 truth boxes, 4 images.
    # <= 0.25 FP/image (1 FP): H F H -> 2 of 4; <= 0.5 (2 FP): H F H F H -> 3 of 4;
    # <= 1 (4 FP): all -> 4 of 4.
    case = {"c0": 0, "c1": 1, "c2": 2, "c3": 3}
    cases = np.array([case[c["image_id"]] for c in candidates])
    hits = np.array([True, False, True, False, True, False, True])
    truth_per_case = np.array([1.0, 1, 2, 0])
    ones = np.ones((1, 4))
    values = weighted.froc(cases, hits, truth_per_case, np.ones(4), ones, [0.25, 0.5, 1, 2])
    np.testing.assert_allclose(values[0], [0.5, 0.75, 1.0, 1.0])
    reference = box_froc(truth, candidates, images=case.keys(), rates=[0.25, 0.5, 1, 2])
    assert [reference[f"sensitivity_at_{r:g}_fp"] for r in (0.25, 0.5, 1, 2)] == list(values[0])
    # Case 3 (both early false positives) drawn twice, case 1 left out: 4 images, 3 truth boxes,
    # FP weights 2, 2, 1: <= 0.5 FP/image (2 FP) -> H F (H of weight 0) -> 1 hit of 3;
    # <= 1 (4 FP) -> H F H F H -> 2 of 3.
    resampled = np.array([[1.0, 0, 1, 2]])
    values = weighted.froc(cases, hits, truth_per_case, np.ones(4), resampled, [0.5, 1.0])
    np.testing.assert_allclose(values[0], [1 / 3, 2 / 3])


def _random_outcomes(
    rng: np.random.Generator, n: int, classes: tuple[str, ...] = ("a", "b", "c"), shift=0.0
) -> CaseOutcomes:
    c = len(classes)
    labels = rng.integers(0, 2, (n, c)).astype(float)
    labels[rng.uniform(size=(n, c)) < 0.05] = np.nan
    probabilities = expit(1.5 * np.nan_to_num(labels) + shift + rng.normal(size=(n, c)))
    truth_counts = rng.poisson(0.6, (n, c))
    per_case = rng.poisson(3, n)
    detection_case = np.repeat(np.arange(n), per_case)
    d = detection_case.size
    return CaseOutcomes(
        classes=classes,
        n_cases=n,
        detection_case=detection_case,
        detection_class=rng.integers(0, c, d),
        detection_score=rng.uniform(size=d),
        detection_tp=rng.uniform(size=d) < 0.4,
        truth_counts=truth_counts,
        finding_labels=labels,
        finding_probabilities=probabilities,
        report_counts=rng.integers(0, 3, (n, 3)),
    )


def test_box_ap_matches_the_promotion_bootstrap() -> None:
    rng = np.random.default_rng(5)
    outcomes = _random_outcomes(rng, 120)
    version = VersionOutcomes(outcomes)
    weights = resample_counts(120, 4, seed=2)
    rows = figure_rows(version, weights)
    for r in range(4):
        assert rows["boxes.map_50"][r] == pytest.approx(box_map50(outcomes, weights[r]))


def test_bootstrap_interval_equals_scipy_bootstrap_percentile() -> None:
    rng = np.random.default_rng(6)
    n = 150
    outcomes = _random_outcomes(rng, n)
    version = VersionOutcomes(outcomes, thresholds={"a": 0.6})
    y, p = outcomes.finding_labels[:, 0], outcomes.finding_probabilities[:, 0]
    figures = bootstrap_figures(version, resamples=1000, seed=42)

    def sensitivity(index: np.ndarray, axis: int = -1) -> np.ndarray:
        yy, called = y[index], p[index] >= 0.6
        return np.sum((yy == 1) & called, axis=axis) / np.sum(yy == 1, axis=axis)

    def auc(index: np.ndarray, axis: int = -1) -> np.ndarray:
        # The Mann-Whitney U of the resample's labelled cases, from scipy's midranks.
        values = []
        for row in np.atleast_2d(index):
            yy, pp = y[row], p[row]
            keep = np.isfinite(yy)
            yy, ranks = yy[keep], stats.rankdata(pp[keep])
            m, k = np.sum(yy == 1), np.sum(yy == 0)
            values.append((ranks[yy == 1].sum() - m * (m + 1) / 2) / (m * k))
        return np.array(values)

    for name, statistic, vectorized in (
        ("findings.a.sensitivity", sensitivity, True),
        ("findings.a.auroc", auc, True),
    ):
        reference = stats.bootstrap(
            (np.arange(n),), statistic, vectorized=vectorized, paired=True, n_resamples=1000,
            method="percentile", rng=np.random.default_rng(42),
        )  # fmt: skip
        ours = figures[name]
        assert ours.resamples == ours.resamples_used == 1000
        assert ours.low == pytest.approx(reference.confidence_interval.low, abs=1e-12)
        assert ours.high == pytest.approx(reference.confidence_interval.high, abs=1e-12)
        assert ours.low < ours.value < ours.high


def test_percentile_interval_skips_undefined_resamples() -> None:
    values = np.array([0.1, np.nan, 0.2, 0.3, np.nan])
    interval = percentile_interval(0.2, values, 0.5)
    assert interval.resamples == 5 and interval.resamples_used == 3
    assert (interval.low, interval.high) == pytest.approx((0.15, 0.25))
    assert percentile_interval(np.nan, np.full(3, np.nan)).as_dict()["low"] is None


def test_resamples_are_seeded() -> None:
    assert np.array_equal(resample_counts(10, 3, 7), resample_counts(10, 3, 7))
    assert not np.array_equal(resample_counts(10, 3, 7), resample_counts(10, 3, 8))
    assert (resample_counts(10, 3, 7).sum(axis=1) == 10).all()


def _delong_reference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The structural components from the Mann-Whitney kernel psi(x, z), O(m n)."""
    positive = y == 1
    components = []
    for s in (a, b):
        x, z = s[positive], s[~positive]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        components.append((psi.mean(axis=1), psi.mean(axis=0), psi.mean()))
    (v10a, v01a, auc_a), (v10b, v01b, auc_b) = components
    m, n = positive.sum(), (~positive).sum()
    s10 = np.cov(np.stack([v10a, v10b]))
    s01 = np.cov(np.stack([v01a, v01b]))
    cov = s10 / m + s01 / n
    z = (auc_a - auc_b) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return float(z), float(2 * stats.norm.sf(abs(z)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_the_mann_whitney_kernel_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    a = np.round(expit(1.2 * y + rng.normal(size=200)), 2)  # ties
    b = np.round(expit(0.6 * y + rng.normal(size=200)), 2)
    result = delong_test(y, a, b)
    z, p = _delong_reference(y, a, b)
    assert result.auroc_a == pytest.approx(roc_auc_score(y, a))
    assert result.auroc_b == pytest.approx(roc_auc_score(y, b))
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(p)
    assert result.low < result.difference < result.high


def test_delong_refuses_labels_of_one_class_and_same_scores_have_no_p() -> None:
    with pytest.raises(ValueError, match="positives and negatives"):
        delong_test([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    same = delong_test([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6], [0.1, 0.8, 0.3, 0.6])
    assert same.difference == 0 and same.p_value is None


def test_paired_differences_and_delong_see_a_better_version() -> None:
    rng = np.random.default_rng(8)
    base = _random_outcomes(rng, 400)
    better = CaseOutcomes(**{**base.__dict__, "_cache": {}})
    better.finding_probabilities = expit(
        3.0 * np.nan_to_num(base.finding_labels) - 1.5 + rng.normal(size=(400, 3))
    )
    a, b = VersionOutcomes(better), VersionOutcomes(base)
    differences = paired_differences(a, b, resamples=1000, seed=1)
    auc = differences["findings.a.auroc"]
    assert auc.difference.low is not None and auc.difference.low > 0
    assert auc.p_not_better == 0.0
    delong = delong_per_finding(a, b)["a"]
    assert delong is not None and delong["p_value"] < 0.001
    same = paired_differences(b, b, resamples=200, seed=1)["boxes.map_50"]
    assert same.difference.low == same.difference.high == 0.0


def test_subset_keeps_only_the_subgroups_cases() -> None:
    rng = np.random.default_rng(9)
    outcomes = _random_outcomes(rng, 50)
    version = VersionOutcomes(outcomes)
    chosen = np.arange(0, 50, 2)
    mask = np.zeros((1, 50))
    mask[0, chosen] = 1
    whole_masked = figure_rows(version, mask)
    part = figure_rows(subset(version, chosen), np.ones((1, chosen.size)))
    for name, value in part.items():
        np.testing.assert_allclose(value, whole_masked[name], equal_nan=True, err_msg=name)


def test_thousand_cases_two_thousand_resamples_within_a_minute() -> None:
    rng = np.random.default_rng(10)
    version = VersionOutcomes(_random_outcomes(rng, 1000, classes=tuple("abcdefgh")))
    start = time.perf_counter()
    figures = bootstrap_figures(version, resamples=2000, seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, elapsed
    assert all(f.resamples == 2000 for f in figures.values())
    assert len(figures) == 8 * (7 + 5) + 3


def test_report_scores_are_weighted_means_over_cases_with_a_report() -> None:
    rng = np.random.default_rng(11)
    outcomes = _random_outcomes(rng, 6)
    scores = np.array([0.2, np.nan, 0.4, 0.6, np.nan, 1.0])
    version = VersionOutcomes(outcomes, report_scores={"rouge": scores})
    weights = np.array([[1, 1, 1, 1, 1, 1.0], [2, 0, 0, 1, 3, 0], [0, 5, 0, 0, 1, 0]])
    values = figure_rows(version, weights)["reports.rouge"]
    np.testing.assert_allclose(values, [0.55, (0.4 + 0.6) / 3, np.nan])
    part = figure_rows(subset(version, np.array([3, 5])), np.ones((1, 2)))["reports.rouge"]
    assert part[0] == pytest.approx(0.8)
