"""The queue as the project lead sees it: cases by state, expired leases, skip reasons, and a
burn-down of the cases still needing reads."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Case as SqlCase
from django.db.models import Count, Exists, F, Min, OuterRef, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from annotations.dashboards.expressions import days_from, first_submitted_at, utc_date
from annotations.models import Annotation, Case, CaseSkip, Project
from annotations.services.queue import DONE_READ_STATUSES

BURN_DOWN_DAYS = 90
TOP_SKIP_REASONS = 20


@dataclass(frozen=True)
class CaseStates:
    """Cases counted once each, in the first state that applies, in this order:

    - returned: a reviewer returned a read of it; the rework lies with its annotator
    - submitted: a read awaits review
    - accepted: all its reads are in and none awaits review or rework
    - leased: open, and somebody's lease on it has not expired
    - draft: open, nobody holds it, and somebody has a draft of it
    - skipped: open, nobody holds it, no draft; an annotator passed on it (it waits for others)
    - waiting: open, no live lease, no draft, nobody skipped it. A case whose lease expired and
      was not yet released is waiting: the queue hands it out again at once.

    ``open`` and ``complete`` count ``Case.state`` (complete: all required reads submitted,
    reviewed or not), so ``open + complete == total == sum of the states``."""

    total: int = 0
    open: int = 0
    complete: int = 0
    returned: int = 0
    submitted: int = 0
    accepted: int = 0
    leased: int = 0
    draft: int = 0
    skipped: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class SkipReason:
    reason: str
    count: int


@dataclass(frozen=True)
class BurnDownDay:
    date: date
    remaining: int
    validation_remaining: int


@dataclass(frozen=True)
class QueueDashboard:
    cases: CaseStates
    validation: CaseStates
    expired_leases: int
    skips: int
    skip_reasons: list[SkipReason] = field(default_factory=list)
    burn_down: list[BurnDownDay] = field(default_factory=list)


def _annotation_exists(status: str) -> Exists:
    return Exists(Annotation.objects.filter(case=OuterRef("pk"), status=status))


def case_states(*, project: Project, now: datetime) -> dict[bool, CaseStates]:
    """The state counts of the project's cases, keyed by ``is_validation``; one query."""
    live_lease = Q(lease_expires_at__gt=now)
    is_open = Q(state=Case.State.OPEN)
    state = SqlCase(
        When(_annotation_exists(Annotation.Status.RETURNED), then=Value("returned")),
        When(_annotation_exists(Annotation.Status.SUBMITTED), then=Value("submitted")),
        When(~is_open, then=Value("accepted")),
        When(live_lease, then=Value("leased")),
        When(_annotation_exists(Annotation.Status.DRAFT), then=Value("draft")),
        When(Exists(CaseSkip.objects.filter(case=OuterRef("pk"))), then=Value("skipped")),
        default=Value("waiting"),
    )
    rows = (
        Case.objects.filter(project=project)
        .annotate(dashboard_state=state)
        .order_by()
        .values("is_validation", "dashboard_state")
        .annotate(n=Count("pk"), n_open=Count("pk", filter=is_open))
    )
    counts: dict[bool, dict[str, int]] = {False: defaultdict(int), True: defaultdict(int)}
    for row in rows:  # one row per (validation flag, state): at most 14
        tally = counts[row["is_validation"]]
        tally[row["dashboard_state"]] += row["n"]
        tally["total"] += row["n"]
        tally["open"] += row["n_open"]
    for tally in counts.values():
        tally["complete"] = tally["total"] - tally["open"]
    return {flag: CaseStates(**tally) for flag, tally in counts.items()}


def burn_down(*, project: Project, today: date, days: int = BURN_DOWN_DAYS) -> list[BurnDownDay]:
    """Cases still needing reads at the end of each UTC day, from the project's first case (at
    most ``days`` days back) to ``today``; validation cases apart.

    Reconstruction rule: a case needs reads at the end of day D when it was created by then
    (``Case.created_at``) and fewer than ``required_reads`` of its reads had been submitted by
    then. A read counts from its first submission (its earliest AnnotationRevision), not from a
    later resubmission. A read a reviewer has returned and that is not yet resubmitted does not
    count at all, as the queue treats it, so the last day equals the cases open now. Returns are
    not replayed into the past (the annotation keeps no time of return): a read returned and
    resubmitted counts from its first submission throughout."""
    first_created = Case.objects.filter(project=project).aggregate(first=Min("created_at"))
    if first_created["first"] is None:
        return []
    start = max(first_created["first"].astimezone(UTC).date(), today - timedelta(days - 1))
    created = (
        Case.objects.filter(project=project)
        .annotate(day=utc_date("created_at", not_before=start))
        .order_by()
        .values("is_validation", "day")
        .annotate(n=Count("pk"))
    )
    # The read that completed each case: its required_reads-th first submission in time.
    completing_reads = (
        Annotation.objects.filter(case__project=project, status__in=DONE_READ_STATUSES)
        .annotate(first_submitted_at=first_submitted_at())
        .annotate(
            nth_read=Window(
                RowNumber(),
                partition_by=[F("case_id")],
                order_by=[F("first_submitted_at").asc(), F("pk").asc()],
            )
        )
        .filter(nth_read=F("case__required_reads"))
    )
    completed = (
        Annotation.objects.filter(pk__in=completing_reads.values("pk"))
        .annotate(day=utc_date(first_submitted_at(), not_before=start))
        .order_by()
        .values("case__is_validation", "day")
        .annotate(n=Count("pk"))
    )
    change: dict[tuple[bool, date], int] = defaultdict(int)
    for row in created:  # grouped rows: at most two per day of the window
        change[(row["is_validation"], row["day"])] += row["n"]
    for done in completed:
        change[(done["case__is_validation"], done["day"])] -= done["n"]
    series = []
    remaining = {False: 0, True: 0}
    for day in days_from(start, today):
        for flag in remaining:
            remaining[flag] += change[(flag, day)]
        series.append(
            BurnDownDay(date=day, remaining=remaining[False], validation_remaining=remaining[True])
        )
    return series


def queue_dashboard(*, project: Project, now: datetime | None = None) -> QueueDashboard:
    """Everything ``GET /api/projects/{id}/dashboard/queue/`` shows."""
    now = now or timezone.now()
    states = case_states(project=project, now=now)
    skips = CaseSkip.objects.filter(case__project=project)
    reasons = (
        skips.order_by()
        .values("reason")
        .annotate(count=Count("pk"))
        .order_by("-count", "reason")[:TOP_SKIP_REASONS]
    )
    return QueueDashboard(
        cases=states[False],
        validation=states[True],
        expired_leases=Case.objects.filter(project=project, lease_expires_at__lte=now).count(),
        skips=skips.count(),
        skip_reasons=[SkipReason(reason=r["reason"], count=r["count"]) for r in reasons],
        burn_down=burn_down(project=project, today=now.astimezone(UTC).date()),
    )
