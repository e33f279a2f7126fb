"""The review load: what waits for a reviewer, and each annotator's work by review outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min, Q

from annotations.models import Annotation, Project

S, R, A = Annotation.Status.SUBMITTED, Annotation.Status.RETURNED, Annotation.Status.ACCEPTED


@dataclass(frozen=True)
class AnnotatorReview:
    """One annotator's annotations now: ``awaiting_review`` (submitted, not yet accepted or
    returned), ``returned`` (sent back, not yet resubmitted), ``accepted``."""

    annotator: str
    awaiting_review: int
    returned: int
    accepted: int


@dataclass(frozen=True)
class ReviewDashboard:
    """``queue_size``: submitted annotations not yet accepted or returned (the review queue);
    ``oldest_submitted_at``: when the longest-waiting of them was submitted."""

    queue_size: int
    oldest_submitted_at: datetime | None
    annotators: list[AnnotatorReview] = field(default_factory=list)


def review_dashboard(*, project: Project) -> ReviewDashboard:
    """Everything ``GET /api/projects/{id}/dashboard/review/`` shows; one grouped query."""
    rows = (
        Annotation.objects.filter(case__project=project, status__in=(S, R, A))
        .order_by("annotator__username")
        .values("annotator__username")
        .annotate(
            awaiting_review=Count("pk", filter=Q(status=S)),
            returned=Count("pk", filter=Q(status=R)),
            accepted=Count("pk", filter=Q(status=A)),
            oldest=Min("submitted_at", filter=Q(status=S)),
        )
    )
    annotators, oldest = [], []
    for row in rows:  # grouped: one row per annotator
        annotators.append(
            AnnotatorReview(
                annotator=row["annotator__username"],
                awaiting_review=row["awaiting_review"],
                returned=row["returned"],
                accepted=row["accepted"],
            )
        )
        if row["oldest"] is not None:
            oldest.append(row["oldest"])
    return ReviewDashboard(
        queue_size=sum(a.awaiting_review for a in annotators),
        oldest_submitted_at=min(oldest, default=None),
        annotators=annotators,
    )
