"""Agreement between readers of the same cases: boxes, findings and report text (double reading).

Pure Python (numpy, scipy, scikit-learn); never imports Django, so the agreement figures can be
computed on MedLoop's own double reads, on a public multi-reader set and in tests alike.

- Boxes: :func:`box_f1` matches two readers' boxes on one image one-to-one (same finding class
  unless ``by_class=False``, optimal assignment on IoU, a pair counts when IoU >= the threshold)
  and returns :class:`BoxAgreement` counts; :func:`aggregate_box_agreement` sums them over images
  into micro-averaged figures, overall and per class.
- Findings: :func:`finding_kappa`, Cohen's kappa per class of present/absent reads over cases both
  readers read (``sklearn.metrics.cohen_kappa_score``); :func:`fleiss_kappa` for more readers.
- Reports: :func:`report_similarity`, ROUGE-L F1 and a normalised word edit distance.
- More than two readers: :func:`multi_reader_agreement` computes the pairwise figures for every
  reader pair of each image and pools them; :func:`read_vindr` loads the VinDr-CXR box list
  (three radiologists per image) that ships in the ``torchxrayvision`` wheel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import cohen_kappa_score

from medloop.metrics.boxes import iou_matrix_xywh, iou_matrix_xyzwhd, optimal_match_count
from medloop.metrics.text import edit_distance, rouge_l_f1, tokenize_report
from medloop.public_data import (
    TORCHXRAYVISION_INSTALL_HINT,
    VINDR_FILE,
    VINDR_NO_FINDING,
    torchxrayvision_file,
    vindr_rows,
)

__all__ = [
    "VINDR_CLASSES",
    "VINDR_FILE",
    "VINDR_INSTALL_HINT",
    "VINDR_NO_FINDING",
    "Box",
    "Box3D",
    "BoxAgreement",
    "BoxCounts",
    "ClassAgreement",
    "KappaResult",
    "MultiReaderAgreement",
    "Read",
    "ReportSimilarity",
    "aggregate_box_agreement",
    "box_f1",
    "default_vindr_path",
    "finding_kappa",
    "fleiss_kappa",
    "multi_reader_agreement",
    "read_vindr",
    "report_similarity",
]

Box = tuple[str, float, float, float, float]
"""One box: ``(finding, x, y, width, height)``, pixels, origin at the image's top-left corner."""

Box3D = tuple[str, float, float, float, float, float, float]
"""One 3D box in a volume: ``(finding, x, y, z, width, height, depth)``, voxels (z along the
slices); :func:`box_f1` matches such boxes by 3D IoU."""

Read = bool | str | None
"""One reader's call on one finding: ``True`` / ``"present"``, ``False`` / ``"absent"``; ``None``
(no read) and ``"uncertain"`` exclude the case from that finding's kappa."""


# ----------------------------------------------------------------------------------------- boxes
@dataclass(frozen=True)
class BoxCounts:
    """Box counts of two readers, A the reference: ``matched`` pairs, ``boxes_a``, ``boxes_b``.

    precision = matched / boxes_b, recall = matched / boxes_a, F1 = 2 matched / (boxes_a + boxes_b).
    Convention for empty denominators: when neither reader drew a box, agreement is perfect
    (precision, recall and F1 all 1.0); when only one did, the empty side's ratio is 0.0, so F1 is
    0.0. Counts add up (``+``), which is how micro averages over images are formed.
    """

    matched: int = 0
    boxes_a: int = 0
    boxes_b: int = 0

    def __add__(self, other: BoxCounts) -> BoxCounts:
        return BoxCounts(
            self.matched + other.matched, self.boxes_a + other.boxes_a, self.boxes_b + other.boxes_b
        )

    def _ratio(self, denominator: int) -> float:
        if denominator:
            return self.matched / denominator
        return 1.0 if self.boxes_a == self.boxes_b == 0 else 0.0

    @property
    def precision(self) -> float:
        return self._ratio(self.boxes_b)

    @property
    def recall(self) -> float:
        return self._ratio(self.boxes_a)

    @property
    def f1(self) -> float:
        boxes = self.boxes_a + self.boxes_b
        return 2 * self.matched / boxes if boxes else 1.0


@dataclass(frozen=True)
class BoxAgreement(BoxCounts):
    """:class:`BoxCounts` over all classes, plus ``per_class`` counts keyed by finding (every class
    either reader drew; empty when matching ignored classes)."""

    per_class: Mapping[str, BoxCounts] = field(default_factory=dict)


def _as_array(boxes: Sequence[Box | Box3D], numbers: int = 4) -> NDArray[np.float64]:
    """The boxes' numbers, ``(n, 4)`` for 2D boxes or ``(n, 6)`` for 3D ones."""
    sizes = {len(box) - 1 for box in boxes}
    if len(sizes) > 1:
        raise ValueError("2D and 3D boxes cannot be matched with one another")
    numbers = sizes.pop() if sizes else numbers
    array = np.array([box[1:] for box in boxes], dtype=np.float64).reshape(-1, numbers)
    if (array[:, numbers // 2 :] < 0).any():
        raise ValueError("box width, height and depth must not be negative")
    return array


def _match_count(a: NDArray[np.float64], b: NDArray[np.float64], threshold: float) -> int:
    """Most one-to-one pairs with IoU >= threshold; among those, the largest summed IoU (3D IoU
    for 3D boxes)."""
    if a.shape[1] != b.shape[1] and a.size and b.size:
        raise ValueError("2D and 3D boxes cannot be matched with one another")
    three_d = max(a.shape[1], b.shape[1]) == 6
    if three_d:
        a, b = a.reshape(-1, 6), b.reshape(-1, 6)
    return optimal_match_count((iou_matrix_xyzwhd if three_d else iou_matrix_xywh)(a, b), threshold)


def box_f1(
    boxes_a: Sequence[Box | Box3D],
    boxes_b: Sequence[Box | Box3D],
    iou_threshold: float = 0.5,
    by_class: bool = True,
) -> BoxAgreement:
    """Agreement of two readers' boxes on the same image, reader A as the reference.

    In: two sequences of :data:`Box` ``(finding, x, y, width, height)`` in pixels, or of
    :data:`Box3D` ``(finding, x, y, z, width, height, depth)`` in voxels (3D IoU). Boxes are
    matched one-to-one within each finding class (across classes when ``by_class`` is False) by an
    optimal assignment (``scipy.optimize.linear_sum_assignment``) that maximises the number of
    pairs with IoU >= ``iou_threshold``, then their summed IoU. Out: :class:`BoxAgreement` with
    ``matched``, ``boxes_a``, ``boxes_b``, ``precision`` (matched / B's boxes), ``recall``
    (matched / A's boxes), ``f1`` and ``per_class`` counts. Both readers without boxes: perfect
    agreement, F1 1.0; only one without boxes: F1 0.0 (see :class:`BoxCounts`).
    """
    if not by_class:
        matched = _match_count(_as_array(boxes_a), _as_array(boxes_b), iou_threshold)
        return BoxAgreement(matched, len(boxes_a), len(boxes_b))
    grouped: dict[str, tuple[list[Box | Box3D], list[Box | Box3D]]] = {}
    for side, boxes in enumerate((boxes_a, boxes_b)):
        for box in boxes:
            grouped.setdefault(box[0], ([], []))[side].append(box)
    per_class = {
        finding: BoxCounts(_match_count(_as_array(a), _as_array(b), iou_threshold), len(a), len(b))
        for finding, (a, b) in sorted(grouped.items())
    }
    total = sum(per_class.values(), BoxCounts())
    return BoxAgreement(total.matched, total.boxes_a, total.boxes_b, per_class)


def aggregate_box_agreement(results: Iterable[BoxAgreement]) -> BoxAgreement:
    """Micro average over images: matches and boxes summed, overall and per class, so a class's
    F1 is 2 * its matches / its boxes from both readers over all images."""
    total = BoxCounts()
    per_class: dict[str, BoxCounts] = {}
    for result in results:
        total += result
        for finding, counts in result.per_class.items():
            per_class[finding] = per_class.get(finding, BoxCounts()) + counts
    return BoxAgreement(
        total.matched, total.boxes_a, total.boxes_b, dict(sorted(per_class.items()))
    )


# -------------------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa of one finding. ``kappa`` is NaN when undefined, and ``undefined`` then says
    why (no case read by both readers, or both gave one constant label); ``cases`` were read
    present/absent by both, ``excluded`` had an uncertain or missing read; ``observed_agreement``
    is the fraction of ``cases`` where the two reads agree (NaN without cases)."""

    kappa: float
    cases: int
    excluded: int
    observed_agreement: float
    undefined: str = ""


def _binary(read: Read) -> int | None:
    if read is True or read == "present":
        return 1
    if read is False or read == "absent":
        return 0
    if read is None or read == "uncertain":
        return None
    raise ValueError(f"unknown read {read!r}: expected present, absent, uncertain or None")


def _kappa(a: NDArray[np.int8], b: NDArray[np.int8], excluded: int) -> KappaResult:
    cases = len(a)
    if not cases:
        return KappaResult(math.nan, 0, excluded, math.nan, "no case read by both readers")
    observed = float(np.mean(a == b))
    labels = np.union1d(a, b)
    if len(labels) == 1:  # expected agreement is 1: kappa = 0 / 0
        label = "present" if labels[0] else "absent"
        return KappaResult(
            math.nan, cases, excluded, observed, f"both readers read every case {label}"
        )
    kappa = cohen_kappa_score(a, b, labels=[0, 1])
    return KappaResult(float(kappa), cases, excluded, observed)


def finding_kappa(
    pairs_by_class: Mapping[str, Iterable[tuple[Read, Read]]],
) -> dict[str, KappaResult]:
    """Cohen's kappa per finding class between two readers.

    In: ``{finding: [(read_a, read_b), ...]}``, one pair per case, each :data:`Read` present,
    absent, uncertain or None. A pair with an uncertain or missing read is left out of that class
    and counted in ``excluded``. Out: ``{finding: KappaResult}`` with kappa from
    ``sklearn.metrics.cohen_kappa_score``; NaN, with the reason, when no case remains or when both
    readers gave every case the same single label (expected agreement 1). No warning is raised.
    """
    results = {}
    for finding, pairs in pairs_by_class.items():
        kept, excluded = [], 0
        for read_a, read_b in pairs:
            a, b = _binary(read_a), _binary(read_b)
            if a is None or b is None:
                excluded += 1
            else:
                kept.append((a, b))
        array = np.array(kept, dtype=np.int8).reshape(-1, 2)
        results[finding] = _kappa(array[:, 0], array[:, 1], excluded)
    return results


def fleiss_kappa(counts: ArrayLike) -> float:
    """Fleiss' kappa of several readers. In: ``(cases, categories)`` counts, row i holding how many
    readers put case i in each category, the same number of readers (>= 2) on every case. Out: kappa
    (NaN when expected agreement is 1, i.e. every read falls in one category)."""
    table = np.asarray(counts, dtype=np.float64)
    readers = table.sum(axis=1)
    if table.ndim != 2 or not len(table) or readers.min() < 2 or np.ptp(readers) > 0:
        raise ValueError("need a (cases, categories) table with the same >= 2 readers per case")
    n = readers[0]
    observed = float(((table * (table - 1)).sum(axis=1) / (n * (n - 1))).mean())
    expected = float(((table.sum(axis=0) / table.sum()) ** 2).sum())
    return math.nan if expected >= 1.0 else (observed - expected) / (1.0 - expected)


# --------------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ReportSimilarity:
    """``rouge_l_f1`` in [0, 1] (1: same words in the same order) and ``word_edit_distance`` in
    [0, 1] (0: identical), both on :func:`~medloop.metrics.text.tokenize_report` tokens."""

    rouge_l_f1: float
    word_edit_distance: float


def report_similarity(a: str, b: str) -> ReportSimilarity:
    """Similarity of two readers' report texts.

    Both texts are tokenised as the report metrics do (:func:`tokenize_report`: lower case,
    punctuation dropped). ``rouge_l_f1``: ROUGE-L F-measure with beta 1, 2PR / (P + R) from the
    longest common word subsequence (:func:`~medloop.metrics.text.rouge_l_f1`;
    pycocoevalcap's ROUGE-L in ``report_metrics`` uses beta 1.2).
    ``word_edit_distance``: Levenshtein distance over words (insert, delete, substitute cost 1)
    divided by the longer text's word count. Two empty texts are identical (1.0 and 0.0).
    """
    tokens_a, tokens_b = tokenize_report(a), tokenize_report(b)
    if not tokens_a or not tokens_b:
        same = not tokens_a and not tokens_b
        return ReportSimilarity(1.0 if same else 0.0, 0.0 if same else 1.0)
    distance = edit_distance(tokens_a, tokens_b) / max(len(tokens_a), len(tokens_b))
    return ReportSimilarity(rouge_l_f1(tokens_a, tokens_b), distance)


# --------------------------------------------------------------------------------- many readers
@dataclass(frozen=True)
class ClassAgreement:
    """One finding over all reader pairs: ``images`` where any reader marked it, ``boxes`` of it
    from all readers, ``box`` counts pooled over reader pairs (micro), ``kappa`` of its image-level
    presence pooled over reader pairs."""

    finding: str
    images: int
    boxes: int
    box: BoxCounts
    kappa: KappaResult


@dataclass(frozen=True)
class MultiReaderAgreement:
    """Pairwise agreement pooled over images: ``images`` read, ``reader_pairs`` compared,
    ``per_class`` figures, and ``any_finding``: box counts of all classes together (micro over
    classes, matching within class) with the kappa of "abnormal" (any box) against "normal"."""

    images: int
    reader_pairs: int
    per_class: dict[str, ClassAgreement]
    any_finding: ClassAgreement

    @property
    def mean_kappa(self) -> float:
        """Unweighted mean of the defined per-class kappas (NaN if none is defined)."""
        values = [c.kappa.kappa for c in self.per_class.values() if not math.isnan(c.kappa.kappa)]
        return float(np.mean(values)) if values else math.nan

    @property
    def mean_box_f1(self) -> float:
        """Unweighted mean box F1 of the classes some reader drew (NaN if none was drawn)."""
        values = [c.box.f1 for c in self.per_class.values() if c.boxes]
        return float(np.mean(values)) if values else math.nan


def multi_reader_agreement(
    reads: Mapping[str, Mapping[str, Sequence[Box]]],
    *,
    iou_threshold: float = 0.5,
    classes: Sequence[str] | None = None,
) -> MultiReaderAgreement:
    """Pairwise agreement of several readers, pooled over every reader pair of every image.

    In: ``{image_id: {reader_id: [Box, ...]}}``; a reader with an empty list read the image and
    found nothing; a finding is present for a reader when it drew a box of it. ``classes``
    defaults to every finding seen. For each image, each unordered reader pair is compared:
    :func:`box_f1` counts are summed over pairs and images (micro F1; F1 is symmetric in the pair),
    and the presence reads of each pair enter Cohen's kappa in both orders, since no reader of a
    pair is the reference. With the same number of readers on every image this pooled kappa equals
    Fleiss' kappa. An image with a single reader adds no pair.
    """
    findings = (
        sorted(classes)
        if classes is not None
        else sorted(
            {box[0] for readers in reads.values() for boxes in readers.values() for box in boxes}
        )
    )
    index = {finding: i for i, finding in enumerate(findings)}
    box_total: dict[str, BoxCounts] = {f: BoxCounts() for f in findings}
    presence_a: list[NDArray[np.int8]] = []
    presence_b: list[NDArray[np.int8]] = []
    images_with = np.zeros(len(findings) + 1, dtype=np.int64)  # last column: any finding
    boxes_of = np.zeros(len(findings), dtype=np.int64)
    pairs = 0
    for readers in reads.values():
        present = {}
        for reader, boxes in readers.items():
            row = np.zeros(len(findings) + 1, dtype=np.int8)
            for box in boxes:
                if box[0] in index:
                    row[index[box[0]]] = 1
                    boxes_of[index[box[0]]] += 1
            row[-1] = row[:-1].any()
            present[reader] = row
        if present:
            images_with += np.any(list(present.values()), axis=0)
        for first, second in combinations(sorted(readers), 2):
            pairs += 1
            kept_a = [b for b in readers[first] if b[0] in index]
            kept_b = [b for b in readers[second] if b[0] in index]
            for finding, counts in box_f1(kept_a, kept_b, iou_threshold).per_class.items():
                box_total[finding] += counts
            presence_a += [present[first], present[second]]
            presence_b += [present[second], present[first]]
    a = np.array(presence_a, dtype=np.int8).reshape(-1, len(findings) + 1)
    b = np.array(presence_b, dtype=np.int8).reshape(-1, len(findings) + 1)
    per_class = {
        finding: ClassAgreement(
            finding,
            int(images_with[i]),
            int(boxes_of[i]),
            box_total[finding],
            _symmetric_kappa(a[:, i], b[:, i]),
        )
        for finding, i in index.items()
    }
    any_finding = ClassAgreement(
        "any finding",
        int(images_with[-1]),
        int(boxes_of.sum()),
        sum(box_total.values(), BoxCounts()),
        _symmetric_kappa(a[:, -1], b[:, -1]),
    )
    return MultiReaderAgreement(len(reads), pairs, per_class, any_finding)


def _symmetric_kappa(a: NDArray[np.int8], b: NDArray[np.int8]) -> KappaResult:
    # Rows come in both orders of each pair: count each pair once in `cases`.
    result = _kappa(a, b, 0)
    return KappaResult(
        result.kappa, result.cases // 2, 0, result.observed_agreement, result.undefined
    )


# ------------------------------------------------------------------------------------- VinDr-CXR
VINDR_INSTALL_HINT = TORCHXRAYVISION_INSTALL_HINT
VINDR_CLASSES = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
)  # class_id 0..13; 14 is "No finding"


def default_vindr_path() -> Path:
    """Where the torchxrayvision wheel keeps ``vinbigdata-train.csv.gz``, found without importing
    the package (that would import torch). The file itself may still be missing; raises
    FileNotFoundError when the package is not installed."""
    return torchxrayvision_file(VINDR_FILE)


def read_vindr(path: Path | str, *, limit: int | None = None) -> dict[str, dict[str, list[Box]]]:
    """The VinDr-CXR box list as ``{image_id: {rad_id: [Box, ...]}}``.

    In: the gzip CSV (:func:`medloop.public_data.vindr_rows`; pixels of the original images). A
    "No finding" row has no box: the reader read the image as normal, and gets an empty list.
    ``limit`` keeps the first N images in file order. Out: boxes as ``(class_name, x_min, y_min,
    x_max - x_min, y_max - y_min)``. Raises ValueError naming the line of a malformed row.
    """
    reads: dict[str, dict[str, list[Box]]] = {}
    for row in vindr_rows(path):
        if row.image_id not in reads:
            if limit is not None and len(reads) >= limit:
                continue
            reads[row.image_id] = {}
        boxes = reads[row.image_id].setdefault(row.rad_id, [])
        if row.box is None:
            continue
        x0, y0, x1, y1 = row.box
        boxes.append((row.class_name, x0, y0, x1 - x0, y1 - y0))
    return reads
