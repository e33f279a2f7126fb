"""The model owner's charts as numbers (``GET /api/projects/{id}/model-dashboard/``): the
learning curve across versions, per-class validation metrics, the acquisition scores of the
open cases, how useful each version's suggestions were to the annotators, and each version's
lineage and promotion-guard numbers (with the loop settings they were judged by).

Reads only. Versions are few (one per cycle), so their metrics are read row by row; everything
counted over cases, boxes or annotations is a grouped query, on PostgreSQL and on the embedded
SQLite default. The one Python loop over annotations, the report edit distance, reads at most
``REPORT_SAMPLE`` annotations per version.

Which version's suggestion an annotation was made over is not stored; it is the one the
workspace showed when the working copy was opened (:func:`shown_suggestion`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, Floor, Least, RowNumber

from active_learning.models import ModelVersion, Suggestion
from active_learning.services.loop_settings import kind_of, loop_settings, match_iou_for
from active_learning.services.metric_schema import (
    PROMOTION_METRICS_BY_KIND,
    metric_labels,
    metric_value,
    score,
)
from annotations.dashboards.throughput import STANDING_STATUSES, SuggestionUse, suggestion_use_by
from annotations.models import Annotation, Box, Case, Project
from medloop.metrics.text import word_edit_distance

# The validation metrics drawn against labels, besides the project's promotion metric (dotted
# keys into ModelVersion.metrics["validation"], as written by active_learning.ml.evaluate); a
# kind with its own promotion metrics (the CT detector) draws those.
CURVE_METRICS = (
    "boxes.map_50",
    "findings.auroc_macro",
    "reports.finding_f1_micro",
    "reports.rouge_l_f_beta1.2",
)


def curve_metrics(kind: str) -> tuple[str, ...]:
    """The metrics the learning curve draws for a project whose model is of ``kind``."""
    if kind not in PROMOTION_METRICS_BY_KIND:
        return CURVE_METRICS
    return tuple(m for m in PROMOTION_METRICS_BY_KIND[kind] if m != "combined")


SCORE_BINS = 10
REPORT_SAMPLE = 100


# --- report edits -----------------------------------------------------------------------------


def report_text(report: Mapping[str, Any], sections: Sequence[str]) -> str:
    """A report's sections joined in ``sections`` order (every key, sorted, when empty)."""
    keys = sections or sorted(report)
    return " ".join(str(report.get(key) or "").strip() for key in keys).strip()


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    """One version on the learning curve: validation metrics against its training labels.
    ``primary`` is the project's promotion metric (now; a version may have been promoted on
    another)."""

    number: int
    status: str
    serving: bool
    labels: int
    validation_labels: int | None
    primary: float | None
    metrics: dict[str, float | None]


@dataclass(frozen=True)
class ClassMetrics:
    """One finding class of one version: AP@0.5 of its boxes, AUROC of its case-level
    probability, F1 of its mention in the report draft (None where not measured)."""

    finding: str
    name: str
    ap_50: float | None
    auroc: float | None
    f1: float | None


@dataclass(frozen=True)
class VersionClassMetrics:
    number: int
    serving: bool
    classes: list[ClassMetrics]


@dataclass(frozen=True)
class ScoreBin:
    """Open cases whose acquisition score lies in [low, high) (the last bin includes high)."""

    low: float
    high: float
    count: int


@dataclass(frozen=True)
class AcquisitionScores:
    """The serving version's acquisition scores (the combined uncertainty each suggestion
    stored, ``Suggestion.acquisition_score``) over the open cases, in ``SCORE_BINS`` equal
    bins from min(0, lowest) to max(1, highest); ``unscored``: open cases it has no score for
    (all of them when no version serves)."""

    version: int | None
    strategy: str
    open_cases: int
    scored: int
    unscored: int
    bins: list[ScoreBin] = field(default_factory=list)


@dataclass(frozen=True)
class VersionUsefulness:
    """What annotators did with one version's suggestions, over the submitted (or accepted)
    annotations whose case showed its suggestion: the suggested boxes accepted unchanged,
    edited and rejected, the boxes drawn that it missed (``boxes``), and the mean word edit
    distance of the final report from its draft (:func:`word_edit_distance`) over the latest
    ``report_cases`` (at most ``REPORT_SAMPLE``) annotations whose draft had text."""

    number: int
    serving: bool
    annotations: int
    boxes: SuggestionUse
    report_cases: int
    report_edit_distance: float | None

    @property
    def missed_per_case(self) -> float | None:
        return round(self.boxes.drawn / self.annotations, 4) if self.annotations else None


@dataclass(frozen=True)
class VersionLineage:
    """Where one version came from and what the promotion guard found: ``parent``, the version
    its training started from (None: from scratch) and ``parent_reason``; ``promotion_check``,
    the guard's numbers (validation labels against the minimum, positives per class, the paired
    bootstrap interval, the verdict and its reason; empty for a version made outside a cycle)."""

    number: int
    status: str
    serving: bool
    labels: int
    parent: int | None
    parent_reason: str
    promotion_check: dict[str, Any]


@dataclass(frozen=True)
class LoopSettingsView:
    """The loop settings in force (``active_learning.models.LoopSettings``)."""

    min_validation_labels: int
    bootstrap_resamples: int
    bootstrap_confidence: float
    warm_start: str
    cold_start: str


@dataclass(frozen=True)
class ModelDashboard:
    promotion_metric: str
    serving: int | None
    learning_curve: list[CurvePoint]
    # Readable names of the metrics by key, where the page's own do not fit (a CT project's).
    metric_names: dict[str, str]
    per_class: list[VersionClassMetrics]
    acquisition: AcquisitionScores
    usefulness: list[VersionUsefulness]
    lineage: list[VersionLineage] = field(default_factory=list)
    loop: LoopSettingsView | None = None


# --- reads ------------------------------------------------------------------------------------


def learning_curve(project: Project) -> list[CurvePoint]:
    """Every version but the failed ones, by training labels (then number)."""
    found = loop_settings(project)
    metric, drawn = found.promotion_metric, curve_metrics(kind_of(found))
    versions = (
        ModelVersion.objects.filter(project=project)
        .exclude(status=ModelVersion.Status.FAILED)
        .order_by("label_count", "number")
    )
    points = []
    for version in versions.only("number", "status", "label_count", "metrics", "model_kind"):
        validation = version.metrics.get("validation") or {}
        points.append(
            CurvePoint(
                number=version.number,
                status=version.status,
                serving=version.status == ModelVersion.Status.PROMOTED,
                labels=version.label_count,
                validation_labels=version.metrics.get("validation_labels"),
                primary=metric_value(validation, metric, kind=version.model_kind),
                metrics={
                    key: metric_value(validation, key, kind=version.model_kind) for key in drawn
                },
            )
        )
    return points


def per_class_metrics(project: Project) -> list[VersionClassMetrics]:
    """Per finding class, for every version evaluated on validation labels, newest first;
    the project's classes in schema order, then any others a version was evaluated on."""
    names = {f["key"]: f.get("name", f["key"]) for f in project.label_schema.get("findings", [])}
    out = []
    versions = ModelVersion.objects.filter(project=project).exclude(
        status=ModelVersion.Status.FAILED
    )
    for version in versions.order_by("-number").only("number", "status", "metrics"):
        validation = version.metrics.get("validation")
        if not isinstance(validation, dict):
            continue
        ap = (validation.get("boxes") or {}).get("ap_50_per_class") or {}
        auroc = (validation.get("findings") or {}).get("auroc") or {}
        f1 = (validation.get("reports") or {}).get("finding_f1_per_class") or {}
        measured = set(ap) | set(auroc) | set(f1)
        keys = [k for k in names if k in measured] + sorted(measured - set(names))
        out.append(
            VersionClassMetrics(
                number=version.number,
                serving=version.status == ModelVersion.Status.PROMOTED,
                classes=[
                    ClassMetrics(
                        finding=key,
                        name=names.get(key, key),
                        ap_50=score(ap.get(key)),
                        auroc=score(auroc.get(key)),
                        f1=score(f1.get(key)),
                    )
                    for key in keys
                ],
            )
        )
    return out


def acquisition_scores(project: Project, serving: ModelVersion | None) -> AcquisitionScores:
    """The histogram of :class:`AcquisitionScores` in three queries (open cases; the scores'
    count and range; the count per bin)."""
    strategy = loop_settings(project).acquisition_strategy
    open_cases = Case.objects.filter(project=project, state=Case.State.OPEN).count()
    if serving is None:
        return AcquisitionScores(
            version=None,
            strategy=strategy,
            open_cases=open_cases,
            scored=0,
            unscored=open_cases,
        )
    scores = Suggestion.objects.filter(
        model_version=serving,
        case__project=project,
        case__state=Case.State.OPEN,
        acquisition_score__isnull=False,
    ).order_by()
    summary = scores.aggregate(
        n=Count("pk"), low=Min("acquisition_score"), high=Max("acquisition_score")
    )
    bins: list[ScoreBin] = []
    if summary["n"]:
        low = min(0.0, math.floor(summary["low"]))
        high = max(1.0, math.ceil(summary["high"]))
        # Multiplying by bins/span (10.0 for [0, 1]) keeps 0.3 in the bin [0.3, 0.4).
        scale = SCORE_BINS / (high - low)
        index = Least(
            Floor((F("acquisition_score") - Value(low)) * Value(scale)),
            Value(SCORE_BINS - 1),
            output_field=IntegerField(),
        )
        counts = {
            int(row["index"]): row["n"]
            for row in scores.annotate(index=index).values("index").annotate(n=Count("pk"))
        }
        width = (high - low) / SCORE_BINS
        bins = [
            ScoreBin(
                low=round(low + i * width, 6),
                high=round(low + (i + 1) * width, 6),
                count=counts.get(i, 0),
            )
            for i in range(SCORE_BINS)
        ]
    return AcquisitionScores(
        version=serving.number,
        strategy=strategy,
        open_cases=open_cases,
        scored=summary["n"],
        unscored=open_cases - summary["n"],
        bins=bins,
    )


def shown_suggestion(annotation: str = "", field: str = "pk") -> Coalesce:
    """``field`` of the suggestion the workspace showed when an annotation's working copy was
    opened, NULL when none was shown. Of the case's suggestions made before the opening it
    showed the one of the version serving then (the one promoted last before the opening),
    else the newest version's (``frontend/src/workspace/suggestions.ts``). A version promoted
    twice (a rollback) counts from its last promotion.

    Correlated to the outer query's annotation at the path ``annotation`` ("" for an
    Annotation query, "annotation__" for a Box query). Two subqueries rather than one ordered
    by "is it the serving one": SQLite cannot see an outer query's columns from a subquery in
    an ORDER BY."""
    opened = OuterRef(f"{annotation}created_at")
    serving_then = (
        ModelVersion.objects.filter(
            project=OuterRef("case__project"), promoted_at__lte=OuterRef(opened)
        )
        .order_by("-promoted_at", "-number")
        .values("pk")[:1]
    )
    made_before = Suggestion.objects.filter(
        case=OuterRef(f"{annotation}case"), created_at__lte=opened
    )
    return Coalesce(
        Subquery(made_before.filter(model_version=Subquery(serving_then)).values(field)[:1]),
        Subquery(made_before.order_by("-model_version__number").values(field)[:1]),
        output_field=IntegerField(),
    )


def shown_version(annotation: str = "") -> Coalesce:
    """The number of the version whose suggestion the annotation was made over (or NULL)."""
    return shown_suggestion(annotation, "model_version__number")


def _report_edits(
    project: Project, standing: QuerySet[Annotation]
) -> dict[int, tuple[int, float | None]]:
    """{version: (reports measured, mean word edit distance)} over the latest REPORT_SAMPLE
    annotations per version (a window in the database picks them). ``standing`` carries the
    version shown as ``shown``."""
    rows = list(  # at most REPORT_SAMPLE per version
        standing.annotate(
            suggestion=shown_suggestion(),
            rank=Window(
                RowNumber(),
                partition_by=[F("shown")],
                order_by=[F("submitted_at").desc(), F("pk").desc()],
            ),
        )
        .filter(shown__isnull=False, rank__lte=REPORT_SAMPLE)
        .values_list("shown", "suggestion", "report")
    )
    drafts = dict(
        Suggestion.objects.filter(pk__in={s for _, s, _ in rows}).values_list("pk", "report_draft")
    )
    sections = project.report_section_keys
    distances: dict[int, list[float]] = defaultdict(list)
    for version, suggestion, report in rows:
        draft = report_text(drafts.get(suggestion) or {}, sections)
        if draft:  # no draft, nothing to edit
            distances[version].append(word_edit_distance(draft, report_text(report, sections)))
    return {
        version: (len(values), round(sum(values) / len(values), 4))
        for version, values in distances.items()
    }


def suggestion_usefulness(project: Project) -> list[VersionUsefulness]:
    """:class:`VersionUsefulness` of every version whose suggestion some submitted annotation
    was made over, newest version first."""
    standing = Annotation.objects.filter(
        case__project=project, status__in=STANDING_STATUSES
    ).annotate(shown=shown_version())
    boxes = Box.objects.filter(
        annotation__case__project=project, annotation__status__in=STANDING_STATUSES
    ).annotate(shown=shown_version("annotation__"))
    use = suggestion_use_by(
        boxes=boxes, box_key="shown", annotations=standing, annotation_key="shown"
    )
    counts = dict(
        standing.filter(shown__isnull=False)
        .order_by()
        .values("shown")
        .annotate(n=Count("pk"))
        .values_list("shown", "n")
    )
    edits = _report_edits(project, standing)
    serving = set(
        ModelVersion.objects.filter(
            project=project, status=ModelVersion.Status.PROMOTED
        ).values_list("number", flat=True)
    )
    return [
        VersionUsefulness(
            number=number,
            serving=number in serving,
            annotations=n,
            boxes=use.get(number, SuggestionUse()),
            report_cases=edits.get(number, (0, None))[0],
            report_edit_distance=edits.get(number, (0, None))[1],
        )
        for number, n in sorted(counts.items(), reverse=True)
    ]


def lineage(project: Project) -> list[VersionLineage]:
    """:class:`VersionLineage` of every version, newest first (failed ones included: their
    place in the lineage is still where a later version may come from)."""
    rows = (
        ModelVersion.objects.filter(project=project)
        .order_by("-number")
        .values(
            "number", "status", "label_count", "parent__number", "parent_reason",
            "promotion_check",
        )
    )  # fmt: skip
    return [
        VersionLineage(
            number=row["number"],
            status=row["status"],
            serving=row["status"] == ModelVersion.Status.PROMOTED,
            labels=row["label_count"],
            parent=row["parent__number"],
            parent_reason=row["parent_reason"],
            promotion_check=row["promotion_check"] or {},
        )
        for row in rows
    ]


def model_dashboard(*, project: Project) -> ModelDashboard:
    """Everything the Models page's charts show, for ``project``."""
    serving = ModelVersion.objects.filter(
        project=project, status=ModelVersion.Status.PROMOTED
    ).first()
    loop = loop_settings(project)
    kind = kind_of(loop)
    return ModelDashboard(
        promotion_metric=loop.promotion_metric,
        serving=serving.number if serving else None,
        learning_curve=learning_curve(project),
        metric_names=metric_labels(kind, match_iou=match_iou_for(kind, loop)),
        per_class=per_class_metrics(project),
        acquisition=acquisition_scores(project, serving),
        usefulness=suggestion_usefulness(project),
        lineage=lineage(project),
        loop=LoopSettingsView(
            min_validation_labels=loop.min_validation_labels,
            bootstrap_resamples=loop.bootstrap_resamples,
            bootstrap_confidence=loop.bootstrap_confidence,
            warm_start=loop.warm_start,
            cold_start=loop.cold_start,
        ),
    )
