"""Report metrics of suggestion models: BLEU-1..4, ROUGE-L and CIDEr-D from pycocoevalcap on
:func:`~medloop.metrics.text.tokenize_report` tokens, and finding-level F1 from
:func:`~active_learning.ml.report_findings.findings_stated`. The token-level similarity measures
(ROUGE-L F1, edit distance) that reader agreement shares live in :mod:`medloop.metrics.text`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from active_learning.ml.metrics import macro_mean as _macro
from active_learning.ml.report_findings import FINDING_RULES, findings_stated
from medloop.metrics.text import edit_distance, lcs_length, rouge_l_f1, tokenize_report

__all__ = [
    "edit_distance",
    "finding_f1",
    "lcs_length",
    "report_metrics",
    "rouge_l_f1",
    "tokenize_report",
]


def finding_f1(
    references: Sequence[str], candidates: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """F1 of positive finding mentions: per class, a true positive is a report pair where both
    texts state the finding present (:func:`findings_stated`); absent and unstated both count as
    negative. ``finding_f1_micro`` pools the counts over classes; ``finding_f1_macro`` averages
    the per-class F1 over classes that are positive in at least one text (others are ``None``)."""
    counts = {c: [0, 0, 0] for c in classes}  # tp, fp, fn
    for reference, candidate in zip(references, candidates, strict=True):
        truth, stated = findings_stated(reference, classes), findings_stated(candidate, classes)
        for c in classes:
            t, s = truth.get(c) == "present", stated.get(c) == "present"
            counts[c][0] += t and s
            counts[c][1] += s and not t
            counts[c][2] += t and not s

    def f1(tp: int, fp: int, fn: int) -> float | None:
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None

    per_class = {c: f1(*counts[c]) for c in classes}
    micro = f1(*(sum(v[i] for v in counts.values()) for i in range(3)))
    return {
        "finding_f1_micro": micro,
        "finding_f1_macro": _macro(per_class.values()),
        "finding_f1_per_class": per_class,
    }


def report_metrics(
    references: Sequence[str],
    candidates: Sequence[str],
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Corpus metrics of generated reports ``candidates`` against one reference each.

    Text is tokenised with :func:`tokenize_report` and scored with pycocoevalcap:

    - ``bleu_1`` .. ``bleu_4``: corpus BLEU (clipped n-gram counts summed over the corpus,
      brevity penalty with the closest reference length, no smoothing).
    - ``rouge_l_f_beta1.2``: ROUGE-L as pycocoevalcap computes it, the LCS F-measure
      ``(1 + b^2) P R / (R + b^2 P)`` with ``b = 1.2`` per report, averaged over reports.
    - ``cider_d``: pycocoevalcap's ``Cider`` is CIDEr-D (candidate tf-idf clipped to the
      reference's, Gaussian length penalty sigma 6, times 10, no stemming), with document
      frequencies from these references: it needs a corpus, a single report scores 0.
    - ``finding_f1_*``: :func:`finding_f1` over ``classes`` (default: every class in
      :data:`FINDING_RULES`).
    """
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} references but {len(candidates)} candidates")
    if not references:
        raise ValueError("no reports to evaluate")
    refs = {i: [" ".join(tokenize_report(r))] for i, r in enumerate(references)}
    cands = {i: [" ".join(tokenize_report(c))] for i, c in enumerate(candidates)}
    bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    rouge, _ = Rouge().compute_score(refs, cands)
    cider, _ = Cider().compute_score(refs, cands)
    results: dict[str, Any] = {f"bleu_{n}": float(bleu[n - 1]) for n in range(1, 5)}
    results["rouge_l_f_beta1.2"] = float(rouge)
    results["cider_d"] = float(cider)
    results.update(finding_f1(references, candidates, list(classes or FINDING_RULES)))
    results["n_reports"] = len(references)
    return results
