"""Corpus figures of report drafts on weighted cases: BLEU-4 and CIDEr-D, for many weightings
at once (one row of case weights per bootstrap resample, as in
:mod:`~active_learning.ml.verification.weighted`).

Both are corpus figures, not means of per-case scores, so a resample is scored as the corpus it
is (each case as many times as it is drawn):

- **BLEU-4** pools the clipped n-gram matches, the n-gram counts and the lengths over the corpus
  before the geometric mean and the brevity penalty. Per case, the clipped matches and counts of
  orders 1-4 and the two lengths are counted once; a resample's corpus BLEU is computed from
  their weighted sums (pycocoevalcap's ``Bleu(4)`` with one reference: its ``1e-15``/``1e-9``
  guards, brevity penalty ``exp(1 - r/c)`` when the drafts are shorter, no smoothing).
- **CIDEr-D** weighs n-grams by their inverse document frequency over the corpus's reference
  reports, so the weights change with the resample: a case drawn twice is two documents. Per
  resample the document frequencies are the weighted sums of each n-gram's presence in the
  cases' references, and every tf-idf product a case's score needs is a sum over its n-grams of
  ``(tf term) x idf^2``: three sparse-by-dense products per order and chunk of resamples
  (pycocoevalcap's ``Cider``: idf ``log(N) - log(max(1, df))``, the draft's tf-idf clipped to the
  reference's, Gaussian length penalty with sigma 6 on the bigram counts as it counts length,
  times 10, averaged over the corpus's documents).

Texts are the space-joined :func:`~medloop.metrics.text.tokenize_report` tokens. Cases without a
reference report are left out of both figures; a row that weighs none of them is NaN.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

ORDERS = 4
SIGMA = 6.0
# pycocoevalcap's guards: a zero count of matches gives a precision of ~0, never 0/0.
_TINY, _SMALL = 1e-15, 1e-9

Weights = NDArray[np.float64]
PerRow = NDArray[np.float64]


def _ngrams(words: list[str]) -> Counter[tuple[str, ...]]:
    return Counter(
        tuple(words[i : i + k]) for k in range(1, ORDERS + 1) for i in range(len(words) - k + 1)
    )


@dataclass(frozen=True)
class ReportCorpus:
    """Per-case sufficient statistics of the drafts against their reference reports.

    ``cases`` ``(m,)``: the case indices (of the ``n`` a weight row covers) that have a reference
    report; the other arrays have one row per such case. BLEU: ``correct`` and ``guess``
    ``(m, 4)`` (clipped matches and n-gram counts of orders 1-4), ``draft_length`` and
    ``reference_length`` ``(m,)`` words. CIDEr-D, over the ``G`` distinct n-grams sorted by order
    (``order_bounds``: where each order's columns start, plus the end): ``presence`` (1 where the
    reference holds the n-gram), ``overlap`` (``min(tf_draft, tf_ref) x tf_ref``), ``draft_square``
    (``tf_draft^2``), ``reference_square`` (``tf_ref^2``), each sparse ``(m, G)``; ``penalty``
    ``(m,)`` the Gaussian length penalty."""

    cases: NDArray[np.int64]
    correct: NDArray[np.float64]
    guess: NDArray[np.float64]
    draft_length: NDArray[np.float64]
    reference_length: NDArray[np.float64]
    order_bounds: tuple[int, ...]
    presence: sparse.csr_matrix
    overlap: sparse.csr_matrix
    draft_square: sparse.csr_matrix
    reference_square: sparse.csr_matrix
    penalty: NDArray[np.float64]

    def subset(self, cases: NDArray[np.int64]) -> ReportCorpus:
        """The corpus of the cases ``cases`` (indices into the cases, in that order), their
        indices renumbered as positions in ``cases``."""
        cases = np.asarray(cases, dtype=np.int64)
        position = {int(c): p for p, c in enumerate(cases)}
        rows = [r for r, c in enumerate(self.cases) if int(c) in position]
        rows = sorted(rows, key=lambda r: position[int(self.cases[r])])
        return ReportCorpus(
            cases=np.array([position[int(self.cases[r])] for r in rows], dtype=np.int64),
            correct=self.correct[rows],
            guess=self.guess[rows],
            draft_length=self.draft_length[rows],
            reference_length=self.reference_length[rows],
            order_bounds=self.order_bounds,
            presence=self.presence[rows],
            overlap=self.overlap[rows],
            draft_square=self.draft_square[rows],
            reference_square=self.reference_square[rows],
            penalty=self.penalty[rows],
        )


def report_corpus(
    references: Sequence[str | None], drafts: Sequence[str | None]
) -> ReportCorpus | None:
    """The statistics of ``drafts[i]`` against ``references[i]`` (space-joined tokens; ``None``:
    no reference report, the case is left out; a missing draft counts as empty). ``None`` when no
    case has a reference report."""
    if len(references) != len(drafts):
        raise ValueError(f"{len(references)} references but {len(drafts)} drafts")
    kept = [i for i, text in enumerate(references) if text is not None]
    if not kept:
        return None
    reference_words = [str(references[i]).split() for i in kept]
    draft_words = [str(drafts[i] or "").split() for i in kept]
    reference_counts = [_ngrams(w) for w in reference_words]
    draft_counts = [_ngrams(w) for w in draft_words]
    vocabulary = sorted(
        {g for counts in (*reference_counts, *draft_counts) for g in counts},
        key=lambda g: (len(g), g),
    )
    column = {g: j for j, g in enumerate(vocabulary)}
    orders = np.array([len(g) for g in vocabulary], dtype=np.int64)
    bounds = tuple(int(b) for b in np.searchsorted(orders, np.arange(1, ORDERS + 2)))

    m = len(kept)
    correct, guess = np.zeros((m, ORDERS)), np.zeros((m, ORDERS))
    cells: dict[str, tuple[list[int], list[int], list[float]]] = {
        name: ([], [], []) for name in ("presence", "overlap", "draft", "reference")
    }

    def put(name: str, row: int, gram: tuple[str, ...], value: float) -> None:
        rows, cols, values = cells[name]
        rows.append(row)
        cols.append(column[gram])
        values.append(value)

    for r, (ref, draft, words) in enumerate(
        zip(reference_counts, draft_counts, draft_words, strict=True)
    ):
        guess[r] = [max(0, len(words) - k) for k in range(ORDERS)]
        for gram, tf in ref.items():
            put("presence", r, gram, 1.0)
            put("reference", r, gram, float(tf) ** 2)
        for gram, tf in draft.items():
            clipped = min(tf, ref.get(gram, 0))
            correct[r, len(gram) - 1] += clipped
            put("draft", r, gram, float(tf) ** 2)
            if clipped:
                put("overlap", r, gram, float(clipped * ref[gram]))

    def matrix(name: str) -> sparse.csr_matrix:
        rows, cols, values = cells[name]
        return sparse.csr_matrix((values, (rows, cols)), shape=(m, len(vocabulary)))

    # pycocoevalcap's CIDEr counts a text's length as its number of bigrams.
    bigrams = (
        [max(0, len(w) - 1) for w in draft_words],
        [max(0, len(w) - 1) for w in reference_words],
    )
    delta = np.subtract(*bigrams).astype(np.float64)
    return ReportCorpus(
        cases=np.asarray(kept, dtype=np.int64),
        correct=correct,
        guess=guess,
        draft_length=np.array([len(w) for w in draft_words], dtype=np.float64),
        reference_length=np.array([len(w) for w in reference_words], dtype=np.float64),
        order_bounds=bounds,
        presence=matrix("presence"),
        overlap=matrix("overlap"),
        draft_square=matrix("draft"),
        reference_square=matrix("reference"),
        penalty=np.exp(-(delta**2) / (2 * SIGMA**2)),
    )


def bleu_4(corpus: ReportCorpus, weights: Weights) -> PerRow:
    """Corpus BLEU-4 of each row of ``weights`` ``(R, n)``."""
    w = weights[:, corpus.cases]
    correct, guess = w @ corpus.correct, w @ corpus.guess
    precision = np.prod((correct + _TINY) / (guess + _SMALL), axis=1)
    draft, reference = w @ corpus.draft_length, w @ corpus.reference_length
    ratio = (draft + _TINY) / (reference + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.maximum(ratio, _TINY)), 1.0)
    score = precision ** (1 / ORDERS) * penalty
    return np.where(w.sum(axis=1) > 0, score, np.nan)


def cider_d(corpus: ReportCorpus, weights: Weights) -> PerRow:
    """Corpus CIDEr-D of each row of ``weights`` ``(R, n)``, document frequencies counted on
    that row's corpus."""
    w = weights[:, corpus.cases]
    documents = w.sum(axis=1)
    frequency = np.asarray(corpus.presence.T @ w.T)  # (G, R): documents holding each n-gram
    with np.errstate(divide="ignore"):
        idf = np.log(documents)[None, :] - np.log(np.maximum(frequency, 1.0))
    idf_square = np.where(np.isfinite(idf), idf, 0.0) ** 2
    similarity = np.zeros((corpus.cases.size, weights.shape[0]))  # (m, R)
    bounds = corpus.order_bounds
    for start, end in itertools.pairwise(bounds):
        if start == end:
            continue
        block = idf_square[start:end]
        numerator = np.asarray(corpus.overlap[:, start:end] @ block)
        norms = np.sqrt(
            np.asarray(corpus.draft_square[:, start:end] @ block)
            * np.asarray(corpus.reference_square[:, start:end] @ block)
        )
        similarity += np.divide(numerator, norms, out=numerator.copy(), where=norms != 0)
    scores = 10.0 * similarity / ORDERS * corpus.penalty[:, None]
    total = np.einsum("rm,mr->r", w, scores)
    out = np.full(weights.shape[0], np.nan)
    np.divide(total, documents, out=out, where=documents > 0)
    return out
