"""The drafts' corpus figures (BLEU-4, CIDEr-D) on weighted cases: every resample scored as the
corpus it is, checked against references that build each resampled corpus case by case and score
it from scratch (pycocoevalcap's ``Bleu`` and ``Cider``, and sacreBLEU), and the interval
against ``scipy.stats.bootstrap`` with those references as the statistic."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from scipy import stats

from active_learning.ml.paired_bootstrap import CaseOutcomes
from active_learning.ml.verification import text
from active_learning.ml.verification.figures import VersionOutcomes, bootstrap_figures, subset
from active_learning.ml.verification.resampling import resample_counts

WORDS = [
    *("no", "focal", "consolidation", "small", "left", "lower", "lobe", "nodule", "right"),
    *("pleural", "effusion", "heart", "size", "normal", "mild", "cardiomegaly", "mass"),
    *("upper", "lungs", "clear", "pneumothorax"),
]


def _corpus(n: int, seed: int) -> tuple[list[str | None], list[str | None]]:
    """Reference reports (every fifth case has none) and drafts, some copied, some partly."""
    rng = np.random.default_rng(seed)
    references: list[str | None] = []
    drafts: list[str | None] = []
    for i in range(n):
        reference = " ".join(rng.choice(WORDS, int(rng.integers(4, 16))))
        kind = rng.random()
        if kind < 0.2:
            draft = reference
        elif kind < 0.6:
            draft = " ".join(reference.split()[: int(rng.integers(1, 6))])  # short: brevity
        else:
            draft = " ".join(rng.choice(WORDS, int(rng.integers(1, 18))))
        references.append(None if i % 5 == 4 else reference)
        drafts.append(draft)
    return references, drafts


def _resampled(
    references: list[str | None], drafts: list[str | None], counts: np.ndarray
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """The corpus a row of counts stands for, each case written out as often as it is drawn."""
    gts: dict[int, list[str]] = {}
    res: dict[int, list[str]] = {}
    for i, count in enumerate(counts):
        if references[i] is None:
            continue
        for _ in range(int(count)):
            gts[len(gts)] = [str(references[i])]
            res[len(res)] = [str(drafts[i] or "")]
    return gts, res


def _reference_bleu(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float:
    score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return float(score[3])


def _reference_cider(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float:
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def test_every_resample_is_scored_as_its_own_corpus() -> None:
    """BLEU-4 from the weighted sums, and CIDEr-D with the document frequencies of each
    resample's corpus, equal the corpus written out and scored from scratch."""
    references, drafts = _corpus(30, 0)
    corpus = text.report_corpus(references, drafts)
    assert corpus is not None
    weights = np.vstack([np.ones(30), resample_counts(30, 8, 3)])
    bleu, cider = text.bleu_4(corpus, weights), text.cider_d(corpus, weights)
    for row, counts in enumerate(weights):
        gts, res = _resampled(references, drafts, counts)
        assert bleu[row] == pytest.approx(_reference_bleu(gts, res), rel=1e-12, abs=1e-15)
        assert cider[row] == pytest.approx(_reference_cider(gts, res), rel=1e-12, abs=1e-15)
        hypotheses = [res[k][0] for k in sorted(res)]
        sacre = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none")
        expected = sacre.corpus_score(hypotheses, [[gts[k][0] for k in sorted(gts)]]).score
        assert bleu[row] == pytest.approx(expected / 100, rel=1e-6, abs=1e-9)


def test_cider_document_frequencies_change_with_the_resample() -> None:
    """Fixed document frequencies (those of all cases) would score a resample differently: the
    per-resample ones are what the corpus written out gives."""
    references, drafts = _corpus(30, 1)
    corpus = text.report_corpus(references, drafts)
    assert corpus is not None
    counts = resample_counts(30, 1, 11)
    _, fixed_scores = Cider().compute_score(*_whole(references, drafts))
    per_case = np.zeros(30)
    per_case[[i for i, r in enumerate(references) if r is not None]] = fixed_scores
    scored = counts[0] * (np.array([r is not None for r in references]))
    fixed = float(per_case @ scored / scored.sum())
    resampled = float(text.cider_d(corpus, counts)[0])
    assert resampled == pytest.approx(_reference_cider(*_resampled(references, drafts, counts[0])))
    assert abs(resampled - fixed) > 1e-3


def _whole(
    references: list[str | None], drafts: list[str | None]
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    return _resampled(references, drafts, np.ones(len(references)))


def _version(references: list[str | None], drafts: list[str | None]) -> VersionOutcomes:
    n = len(references)
    outcomes = CaseOutcomes(
        classes=("a",),
        n_cases=n,
        detection_case=np.zeros(0, dtype=np.int64),
        detection_class=np.zeros(0, dtype=np.int64),
        detection_score=np.zeros(0),
        detection_tp=np.zeros(0, dtype=bool),
        truth_counts=np.zeros((n, 1), dtype=np.int64),
        finding_labels=np.full((n, 1), np.nan),
        finding_probabilities=np.full((n, 1), np.nan),
        report_counts=np.zeros((n, 3), dtype=np.int64),
    )
    return VersionOutcomes(outcomes, report_corpus=text.report_corpus(references, drafts))


@pytest.mark.parametrize("figure", ["reports.bleu_4", "reports.cider_d"])
def test_interval_equals_scipy_bootstrap_of_the_corpus_scored_from_scratch(figure: str) -> None:
    references, drafts = _corpus(16, 2)
    figures = bootstrap_figures(_version(references, drafts), resamples=1000, seed=5)
    reference_score = _reference_bleu if figure == "reports.bleu_4" else _reference_cider

    def statistic(index: np.ndarray) -> float:
        counts = np.bincount(index.astype(int), minlength=len(references))
        gts, res = _resampled(references, drafts, counts)
        return reference_score(gts, res) if gts else np.nan

    reference = stats.bootstrap(
        (np.arange(len(references)),), statistic, vectorized=False, paired=True,
        n_resamples=1000, method="percentile", rng=np.random.default_rng(5),
    )  # fmt: skip
    ours = figures[figure]
    assert ours.value == pytest.approx(reference_score(*_whole(references, drafts)))
    assert ours.resamples_used == 1000
    assert ours.low == pytest.approx(reference.confidence_interval.low, rel=1e-9)
    assert ours.high == pytest.approx(reference.confidence_interval.high, rel=1e-9)
    assert ours.low < ours.value < ours.high


def test_a_subgroup_is_its_own_corpus_and_no_report_is_undefined() -> None:
    references, drafts = _corpus(20, 4)
    version = _version(references, drafts)
    cases = np.array([7, 2, 11, 4, 15, 0])
    part = subset(version, cases)
    gts, res = _resampled(
        [references[i] for i in cases], [drafts[i] for i in cases], np.ones(cases.size)
    )
    figures = bootstrap_figures(part, resamples=1000, seed=0)
    assert figures["reports.bleu_4"].value == pytest.approx(_reference_bleu(gts, res))
    assert figures["reports.cider_d"].value == pytest.approx(_reference_cider(gts, res))
    # Only cases without a reference report: nothing to score.
    assert text.report_corpus([None, None], ["a b", "c"]) is None
    corpus = text.report_corpus(references, drafts)
    assert corpus is not None
    only_unreported = np.zeros((1, 20))
    only_unreported[0, 4] = 3.0  # case 4 has no reference report
    assert np.isnan(text.bleu_4(corpus, only_unreported)).all()
    assert np.isnan(text.cider_d(corpus, only_unreported)).all()
