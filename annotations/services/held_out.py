"""A lead's review of cases held out at ingest by the project's eligibility rules (issue 17,
section 4): include (the rule misjudged the case, e.g. an age recorded wrongly: annotators may
now be handed it) or exclude (it stays held out for good and leaves the review list), many
cases at once, always with the lead's comment in the audit trail. The same review as that of
held images (annotations.services.batch_review)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from django.contrib.auth.models import User
from django.http import HttpRequest

from annotations import selectors
from annotations.models import Case, Project
from annotations.services import loop_signals
from annotations.services.batch_review import BatchReview

MAX_CASES_PER_DECISION = 500


class Decision(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


def _reorder_after_including(project: Project, decision: StrEnum) -> None:
    if decision is Decision.INCLUDE:
        loop_signals.reorder_queue(project.pk)  # after commit: annotators may get them now


REVIEW: BatchReview[Case] = BatchReview(
    field="cases",
    items="cases",
    one="held-out case",
    verbs="include or exclude",
    not_awaiting="already included or excluded, or never held out",
    awaiting=selectors.held_out_cases,
    reason=lambda case: case.held_out_reason,
    decisions={
        Decision.INCLUDE: ("case.include_held_out", lambda now: {"held_out": False}),
        Decision.EXCLUDE: ("case.exclude_held_out", lambda now: {"held_out_excluded_at": now}),
    },
    max_items=MAX_CASES_PER_DECISION,
    count_key="cases_in_decision",
    after=_reorder_after_including,
)


def decide_held_out_cases(
    *,
    project: Project,
    case_ids: Sequence[int],
    decision: Decision,
    comment: str,
    actor: User,
    request: HttpRequest | None = None,
) -> list[Case]:
    """Include or exclude the held-out cases ``case_ids`` of ``project``, all or none.

    Every id must name a case of the project still awaiting review
    (``selectors.held_out_cases``); otherwise ``InvalidInput`` names those that are not and
    nothing changes. Each case gets an audit event with the decision, the reason it was held
    out and ``comment``. Returns the decided cases, in id order."""
    return REVIEW.decide(
        project=project, ids=case_ids, decision=decision, comment=comment, actor=actor,
        request=request,
    )  # fmt: skip
