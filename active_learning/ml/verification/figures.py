"""All figures of a model version on its test cases, with case-level bootstrap intervals, and
the paired comparison of two versions on the same cases.

Input is the version's :class:`~active_learning.ml.paired_bootstrap.CaseOutcomes` (built by
:func:`~active_learning.ml.paired_bootstrap.case_outcomes`: candidates matched to truth boxes
at IoU 0.5, finding labels and probabilities, report finding counts) with the operating
threshold of each finding. Figure names:

- ``findings.<key>.sensitivity`` / ``specificity`` / ``ppv`` / ``npv`` at the threshold,
  ``findings.<key>.auroc``, ``findings.<key>.ap``, ``findings.<key>.ece`` (10 bins);
  ``findings.auroc_macro`` (mean over the findings defined on the resample);
- ``boxes.<key>.ap_50`` and ``boxes.<key>.froc_<rate>_fp`` (lesion sensitivity at 0.5, 1, 2
  and 4 false positives per image), ``boxes.map_50``;
- ``reports.finding_f1_micro``, and ``reports.<name>`` for each per-case report score given
  (their mean over the cases with a report); with the drafts' corpus
  (:mod:`~active_learning.ml.verification.text`), ``reports.bleu_4`` and ``reports.cider_d``,
  corpus figures recomputed on each resample's corpus (CIDEr-D's document frequencies too).

One resample is one row of case weights (:mod:`~active_learning.ml.verification.resampling`);
all figures of all resamples are computed together, a chunk of rows at a time to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from active_learning.ml.metrics.boxes import FROC_RATES
from active_learning.ml.paired_bootstrap import CaseOutcomes
from active_learning.ml.verification import text, weighted
from active_learning.ml.verification.delong import delong_test
from active_learning.ml.verification.resampling import (
    Interval,
    percentile_interval,
    resample_counts,
)

CALIBRATION_BINS = 10
#: Rows of resample weights computed together (memory: rows x candidates x 8 bytes a matrix).
CHUNK_ROWS = 250


@dataclass
class VersionOutcomes:
    """A version's outcomes on ``outcomes.n_cases`` test cases: ``thresholds`` maps a finding to
    its operating threshold (a finding without one gets 0.5); ``images_per_case`` ``(n,)``
    (default one image per case) is the denominator of false positives per image."""

    outcomes: CaseOutcomes
    thresholds: Mapping[str, float] = field(default_factory=dict)
    images_per_case: NDArray[np.float64] | None = None
    #: Per-case report scores by name, ``(n,)`` each, NaN for a case without a report; the
    #: figure ``reports.<name>`` is their mean over the (weighted) cases that have one.
    report_scores: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)
    #: The drafts against the reference reports, for the corpus figures BLEU-4 and CIDEr-D.
    report_corpus: text.ReportCorpus | None = None

    @property
    def n_cases(self) -> int:
        return self.outcomes.n_cases

    @property
    def classes(self) -> tuple[str, ...]:
        return self.outcomes.classes

    def images(self) -> NDArray[np.float64]:
        if self.images_per_case is None:
            return np.ones(self.n_cases)
        return np.asarray(self.images_per_case, dtype=np.float64)

    def detections(self, k: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Class ``k``'s candidates by descending score: case indices and hits."""

        def per_class() -> list[tuple[NDArray[np.int64], NDArray[np.bool_]]]:
            o = self.outcomes
            order = np.argsort(-o.detection_score, kind="stable")
            labels = o.detection_class[order]
            return [
                (o.detection_case[order][labels == j], o.detection_tp[order][labels == j])
                for j in range(len(o.classes))
            ]

        detections: list[tuple[NDArray[np.int64], NDArray[np.bool_]]] = self.outcomes.cached(
            "verification.detections", per_class
        )
        return detections[k]


def _row_mean(columns: list[NDArray[np.float64]], rows: int) -> NDArray[np.float64]:
    if not columns:
        return np.full(rows, np.nan)
    stacked = np.stack(columns, axis=1)
    defined = np.isfinite(stacked)
    total = np.where(defined, stacked, 0.0).sum(axis=1)
    count = defined.sum(axis=1)
    return np.divide(total, count, out=np.full(rows, np.nan), where=count > 0)


def figure_rows(version: VersionOutcomes, weights: NDArray[np.float64]) -> dict[str, Any]:
    """Every figure (module docstring) for each row of ``weights`` ``(R, n)``: name -> ``(R,)``."""
    o = version.outcomes
    rows = weights.shape[0]
    out: dict[str, NDArray[np.float64]] = {}
    aurocs, box_aps = [], []
    images = version.images()
    for k, key in enumerate(o.classes):
        y, p = o.finding_labels[:, k], o.finding_probabilities[:, k]
        if np.isfinite(y).any():
            threshold = float(version.thresholds.get(key, 0.5))
            point = weighted.operating_point(y, p, threshold, weights)
            for name in ("sensitivity", "specificity", "ppv", "npv"):
                out[f"findings.{key}.{name}"] = point[name]
            out[f"findings.{key}.auroc"] = weighted.auroc(y, p, weights)
            out[f"findings.{key}.ap"] = weighted.average_precision(y, p, weights)
            out[f"findings.{key}.ece"] = weighted.expected_calibration_error(
                y, p, weights, CALIBRATION_BINS
            )
            aurocs.append(out[f"findings.{key}.auroc"])
        truth = o.truth_counts[:, k].astype(np.float64)
        cases, hits = version.detections(k)
        if truth.any() or cases.size:
            out[f"boxes.{key}.ap_50"] = weighted.box_average_precision(cases, hits, truth, weights)
            box_aps.append(out[f"boxes.{key}.ap_50"])
            sensitivity = weighted.froc(cases, hits, truth, images, weights, FROC_RATES)
            for j, rate in enumerate(FROC_RATES):
                out[f"boxes.{key}.froc_{rate:g}_fp"] = sensitivity[:, j]
    out["findings.auroc_macro"] = _row_mean(aurocs, rows)
    out["boxes.map_50"] = _row_mean(box_aps, rows)
    tp, fp, fn = (weights @ o.report_counts.astype(np.float64)).T
    out["reports.finding_f1_micro"] = weighted._ratio(2 * tp, 2 * tp + fp + fn)
    for name, values in version.report_scores.items():
        scored = np.isfinite(values)
        w = weights[:, scored]
        out[f"reports.{name}"] = weighted._ratio(w @ values[scored], w.sum(axis=1))
    if version.report_corpus is not None:
        out["reports.bleu_4"] = text.bleu_4(version.report_corpus, weights)
        out["reports.cider_d"] = text.cider_d(version.report_corpus, weights)
    return out


def _replicates(
    versions: Sequence[VersionOutcomes],
    resamples: int,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> list[dict[str, NDArray[np.float64]]]:
    """Each version's figures on the same ``resamples`` (seeded), computed in chunks;
    ``progress`` is told the share of resamples done after each chunk."""
    n = versions[0].n_cases
    counts = resample_counts(n, resamples, seed)
    chunks: list[list[dict[str, NDArray[np.float64]]]] = [[] for _ in versions]
    for start in range(0, resamples, CHUNK_ROWS):
        block = counts[start : start + CHUNK_ROWS]
        for i, version in enumerate(versions):
            chunks[i].append(figure_rows(version, block))
        if progress is not None:
            progress(min(start + CHUNK_ROWS, resamples) / resamples)
    return [
        {name: np.concatenate([c[name] for c in per_version]) for name in per_version[0]}
        for per_version in chunks
    ]


def bootstrap_figures(
    version: VersionOutcomes, *, resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Interval]:
    """Every figure on all test cases with its percentile interval over ``resamples`` case-level
    resamples drawn with ``seed``."""
    point = figure_rows(version, np.ones((1, version.n_cases)))
    (replicates,) = _replicates([version], resamples, seed)
    return {
        name: percentile_interval(float(point[name][0]), replicates[name], confidence)
        for name in point
    }


@dataclass(frozen=True)
class PairedDifference:
    """A figure of versions ``a`` and ``b`` on the same cases and the interval of ``a - b``;
    ``p_not_better``: the share of resamples (where both are defined) in which ``a`` does not
    exceed ``b``."""

    value_a: float | None
    value_b: float | None
    difference: Interval
    p_not_better: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "value_a": self.value_a,
            "value_b": self.value_b,
            "difference": self.difference.as_dict(),
            "p_not_better": self.p_not_better,
        }


def paired_differences(
    a: VersionOutcomes,
    b: VersionOutcomes,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    progress: Callable[[float], None] | None = None,
) -> dict[str, PairedDifference]:
    """Each figure both versions have, ``a - b`` on all cases and on each of the same
    ``resamples`` (the pairing: both versions are scored on every resample); ``progress`` is
    told the share of resamples done as they are computed."""
    if a.n_cases != b.n_cases:
        raise ValueError(f"paired figures need the same cases: {a.n_cases} vs {b.n_cases}")
    ones = np.ones((1, a.n_cases))
    point_a, point_b = figure_rows(a, ones), figure_rows(b, ones)
    rep_a, rep_b = _replicates([a, b], resamples, seed, progress)
    out: dict[str, PairedDifference] = {}
    for name in point_a.keys() & point_b.keys():
        va, vb = float(point_a[name][0]), float(point_b[name][0])
        differences = rep_a[name] - rep_b[name]
        defined = differences[np.isfinite(differences)]
        out[name] = PairedDifference(
            value_a=va if np.isfinite(va) else None,
            value_b=vb if np.isfinite(vb) else None,
            difference=percentile_interval(va - vb, differences, confidence),
            p_not_better=float(np.mean(defined <= 0)) if defined.size else None,
        )
    return dict(sorted(out.items()))


def delong_per_finding(
    a: VersionOutcomes, b: VersionOutcomes, *, confidence: float = 0.95
) -> dict[str, dict[str, Any] | None]:
    """DeLong's test per finding on the cases labelled and scored by both versions (``None``
    for a finding without both a positive and a negative there)."""
    out: dict[str, dict[str, Any] | None] = {}
    for k, key in enumerate(a.classes):
        if key not in b.classes:
            continue
        j = b.classes.index(key)
        y = a.outcomes.finding_labels[:, k]
        pa, pb = a.outcomes.finding_probabilities[:, k], b.outcomes.finding_probabilities[:, j]
        keep = np.isfinite(y) & np.isfinite(pa) & np.isfinite(pb)
        labels = y[keep]
        if not ((labels == 1).any() and (labels == 0).any()):
            out[key] = None
            continue
        out[key] = delong_test(labels, pa[keep], pb[keep], confidence=confidence).as_dict()
    return out


def subset(version: VersionOutcomes, cases: NDArray[np.int64]) -> VersionOutcomes:
    """The version's outcomes on the cases ``cases`` (indices into its cases), in that order."""
    o = version.outcomes
    cases = np.asarray(cases, dtype=np.int64)
    position = np.full(o.n_cases, -1, dtype=np.int64)
    position[cases] = np.arange(cases.size)
    kept = position[o.detection_case] >= 0
    return VersionOutcomes(
        outcomes=CaseOutcomes(
            classes=o.classes,
            n_cases=int(cases.size),
            detection_case=position[o.detection_case[kept]],
            detection_class=o.detection_class[kept],
            detection_score=o.detection_score[kept],
            detection_tp=o.detection_tp[kept],
            truth_counts=o.truth_counts[cases],
            finding_labels=o.finding_labels[cases],
            finding_probabilities=o.finding_probabilities[cases],
            report_counts=o.report_counts[cases],
        ),
        thresholds=version.thresholds,
        images_per_case=None if version.images_per_case is None else version.images()[cases],
        report_scores={name: values[cases] for name, values in version.report_scores.items()},
        report_corpus=(
            None if version.report_corpus is None else version.report_corpus.subset(cases)
        ),
    )


#: The value a case without the attribute is counted under.
UNKNOWN = "unknown"


def subgroup_figures(
    version: VersionOutcomes,
    attributes: Mapping[str, Sequence[str | None]],
    *,
    min_cases: int,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per attribute (``attributes[name]``: one value per case, ``None`` unknown) and value:
    its case count, ``small`` (fewer than ``min_cases`` cases: flagged, never hidden) and every
    figure with its interval, resampled within the subgroup."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, values in attributes.items():
        if len(values) != version.n_cases:
            raise ValueError(f"{name}: {len(values)} values for {version.n_cases} cases")
        labels = np.array([UNKNOWN if v is None else str(v) for v in values], dtype=object)
        groups: dict[str, dict[str, Any]] = {}
        for value in sorted(set(labels)):
            cases = np.flatnonzero(labels == value)
            figures = bootstrap_figures(
                subset(version, cases), resamples=resamples, seed=seed, confidence=confidence
            )
            groups[value] = {
                "cases": int(cases.size),
                "small": bool(cases.size < min_cases),
                "figures": {k: v.as_dict() for k, v in figures.items()},
            }
        out[name] = groups
    return out
