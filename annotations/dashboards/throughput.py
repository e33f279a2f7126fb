"""Annotator throughput over the last ``days`` UTC days: submissions per day, time to first
submission, work returned by reviewers, and how suggestions were used."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from annotations.dashboards.expressions import (
    JSONArrayLength,
    day_start,
    days_from,
    first_submitted_at,
    utc_date,
)
from annotations.models import Annotation, AnnotationRevision, Box, Project

MAX_DAYS = 365
STANDING_STATUSES = (Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED)


@dataclass(frozen=True)
class SuggestionUse:
    """What annotators did with the model's suggested boxes, counted on the boxes of annotations
    whose content stands as submitted (submitted or accepted, last submitted in the window):
    ``accepted`` and ``edited`` from ``Box.origin`` (suggested_accepted, suggested_edited),
    ``rejected`` from ``Annotation.rejected_suggestion_boxes``, ``drawn`` the boxes no
    suggestion had (origin drawn). Shares are of the suggested boxes decided on (accepted +
    edited + rejected); None when there were none."""

    accepted: int = 0
    edited: int = 0
    rejected: int = 0
    drawn: int = 0

    @property
    def suggested(self) -> int:
        return self.accepted + self.edited + self.rejected

    def _share(self, count: int) -> float | None:
        return round(count / self.suggested, 4) if self.suggested else None

    @property
    def accepted_share(self) -> float | None:
        return self._share(self.accepted)

    @property
    def edited_share(self) -> float | None:
        return self._share(self.edited)

    @property
    def rejected_share(self) -> float | None:
        return self._share(self.rejected)

    def __add__(self, other: SuggestionUse) -> SuggestionUse:
        return SuggestionUse(
            accepted=self.accepted + other.accepted,
            edited=self.edited + other.edited,
            rejected=self.rejected + other.rejected,
            drawn=self.drawn + other.drawn,
        )


@dataclass(frozen=True)
class DaySubmissions:
    date: date
    submitted: int


@dataclass(frozen=True)
class AnnotatorThroughput:
    """One annotator over the window.

    ``submitted``: submissions (AnnotationRevision rows, resubmissions included);
    ``returned``: those of them a reviewer returned (a submission was returned when a later one
    of the same annotation exists, or when the annotation is returned now: work can only be
    resubmitted after a return); ``median_seconds_to_first_submit``: median time from the
    annotation's ``created_at`` (the moment its working copy was opened, which for a case the
    workspace prefetched is when it was leased behind the current one) to its first
    submission, over the ``timed_cases`` first submitted in the window."""

    annotator: str
    submitted: int
    returned: int
    timed_cases: int
    median_seconds_to_first_submit: float | None
    daily: list[DaySubmissions]
    suggestions: SuggestionUse


@dataclass(frozen=True)
class Throughput:
    days: int
    start: date
    end: date
    annotators: list[AnnotatorThroughput] = field(default_factory=list)
    suggestions: SuggestionUse = field(default_factory=SuggestionUse)


def _submissions(project: Project, since: datetime) -> dict[str, dict[date, tuple[int, int]]]:
    """{annotator: {day: (submitted, returned)}}; one grouped query."""
    later = AnnotationRevision.objects.filter(
        annotation=OuterRef("annotation"), version__gt=OuterRef("version")
    )
    returned = Q(Exists(later)) | Q(annotation__status=Annotation.Status.RETURNED)
    rows = (
        AnnotationRevision.objects.filter(
            annotation__case__project=project, submitted_at__gte=since
        )
        .annotate(day=utc_date("submitted_at"))
        .order_by()
        .values("annotation__annotator__username", "day")
        .annotate(submitted=Count("pk"), returned=Count("pk", filter=returned))
    )
    out: dict[str, dict[date, tuple[int, int]]] = defaultdict(dict)
    for row in rows:  # grouped: at most one row per annotator and day
        out[row["annotation__annotator__username"]][row["day"]] = (
            row["submitted"],
            row["returned"],
        )
    return out


def _median_seconds(project: Project, since: datetime) -> dict[str, tuple[int, float]]:
    """{annotator: (timed cases, median seconds from opening to first submission)}.

    The database ranks each annotator's durations and returns only the middle one (odd count)
    or two (even count); their mean is the median."""
    middle = (
        Annotation.objects.filter(case__project=project)
        .annotate(first_submitted_at=first_submitted_at())
        .filter(first_submitted_at__gte=since)
        .annotate(duration=F("first_submitted_at") - F("created_at"))
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("annotator_id")],
                order_by=[F("duration").asc(), F("pk").asc()],
            ),
            timed=Window(Count("pk"), partition_by=[F("annotator_id")]),
        )
        .filter(rank__gte=(F("timed") + 1) / 2, rank__lte=F("timed") / 2 + 1)
        .order_by()
        .values_list("annotator__username", "timed", "duration")
    )
    picked: dict[str, list[timedelta]] = defaultdict(list)
    timed: dict[str, int] = {}
    for username, count, duration in middle:  # at most two rows per annotator
        picked[username].append(duration)
        timed[username] = count
    return {
        username: (timed[username], sum(d.total_seconds() for d in ds) / len(ds))
        for username, ds in picked.items()
    }


def suggestion_use_by(
    *,
    boxes: QuerySet[Box],
    box_key: str,
    annotations: QuerySet[Annotation],
    annotation_key: str,
) -> dict[Any, SuggestionUse]:
    """:class:`SuggestionUse` per group, in two grouped queries: ``boxes`` counted by origin
    (grouped by ``box_key``) and the rejected suggestion boxes of ``annotations`` summed
    (grouped by ``annotation_key``). The keys are field paths or annotations of the querysets
    naming the same group from each side (the annotator, the model version shown...)."""
    box_rows = (
        boxes.order_by()
        .values(box_key)
        .annotate(
            accepted=Count("pk", filter=Q(origin=Box.Origin.SUGGESTED_ACCEPTED)),
            edited=Count("pk", filter=Q(origin=Box.Origin.SUGGESTED_EDITED)),
            drawn=Count("pk", filter=Q(origin=Box.Origin.DRAWN)),
        )
    )
    rejected = (
        annotations.order_by()
        .values(annotation_key)
        .annotate(rejected=Coalesce(Sum(JSONArrayLength("rejected_suggestion_boxes")), 0))
    )
    counts: dict[Any, dict[str, int]] = defaultdict(dict)
    for box_row in box_rows:  # grouped: one row per group
        counts[box_row[box_key]].update(
            accepted=box_row["accepted"], edited=box_row["edited"], drawn=box_row["drawn"]
        )
    for annotation_row in rejected:
        counts[annotation_row[annotation_key]]["rejected"] = annotation_row["rejected"]
    return {key: SuggestionUse(**c) for key, c in counts.items()}


def _suggestion_use(project: Project, since: datetime) -> dict[str, SuggestionUse]:
    standing = Q(
        annotation__case__project=project,
        annotation__status__in=STANDING_STATUSES,
        annotation__submitted_at__gte=since,
    )
    return suggestion_use_by(
        boxes=Box.objects.filter(standing),
        box_key="annotation__annotator__username",
        annotations=Annotation.objects.filter(
            case__project=project, status__in=STANDING_STATUSES, submitted_at__gte=since
        ),
        annotation_key="annotator__username",
    )


def throughput_dashboard(
    *, project: Project, days: int = 30, now: datetime | None = None
) -> Throughput:
    """Everything ``GET /api/projects/{id}/dashboard/throughput/?days=`` shows: the window is
    the last ``days`` UTC days, today included (1 <= days <= MAX_DAYS)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}, got {days}")
    end = (now or timezone.now()).astimezone(UTC).date()
    start = end - timedelta(days=days - 1)
    since = day_start(start)
    submissions = _submissions(project, since)
    medians = _median_seconds(project, since)
    suggestions = _suggestion_use(project, since)
    window = days_from(start, end)
    annotators = []
    for username in sorted(submissions.keys() | medians.keys() | suggestions.keys()):
        per_day = submissions.get(username, {})
        timed, median = medians.get(username, (0, None))
        annotators.append(
            AnnotatorThroughput(
                annotator=username,
                submitted=sum(s for s, _ in per_day.values()),
                returned=sum(r for _, r in per_day.values()),
                timed_cases=timed,
                median_seconds_to_first_submit=median,
                daily=[DaySubmissions(date=d, submitted=per_day.get(d, (0, 0))[0]) for d in window],
                suggestions=suggestions.get(username, SuggestionUse()),
            )
        )
    total = sum((a.suggestions for a in annotators), SuggestionUse())
    return Throughput(days=days, start=start, end=end, annotators=annotators, suggestions=total)
