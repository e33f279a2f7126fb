"""A lead's review of cases held out at ingest by the project's eligibility rules (issue 17,
section 4): include (the rule misjudged the case, e.g. an age recorded wrongly: annotators may
now be handed it) or exclude (it stays held out for good and leaves the review list), many
cases at once, always with the lead's comment in the audit trail. The same shape as the
quarantine review of held images (annotations.services.quarantine)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from annotations import selectors
from annotations.models import Case, Project
from annotations.services import audit, loop_signals
from annotations.services.errors import InvalidInput
from annotations.services.quarantine import MAX_COMMENT_LENGTH

MAX_CASES_PER_DECISION = 500


class Decision(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


AUDIT_ACTIONS = {
    Decision.INCLUDE: "case.include_held_out",
    Decision.EXCLUDE: "case.exclude_held_out",
}


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
    comment = comment.strip()
    if not comment:
        raise InvalidInput("comment: say why you include or exclude these cases.")
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidInput(f"comment: at most {MAX_COMMENT_LENGTH} characters.")
    wanted = sorted(set(case_ids))
    if not wanted:
        raise InvalidInput("cases: name at least one held-out case.")
    if len(wanted) > MAX_CASES_PER_DECISION:
        raise InvalidInput(f"cases: at most {MAX_CASES_PER_DECISION} cases at once.")
    now = timezone.now()
    with transaction.atomic():
        held = list(
            selectors.held_out_cases(project.pk)
            .filter(pk__in=wanted)
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        missing = sorted(set(wanted) - {c.pk for c in held})
        if missing:
            raise InvalidInput(
                f"cases: {missing} are not cases of project {project.pk} awaiting review "
                "(already included or excluded, or never held out).",
                cases=missing,
            )
        rows = Case.objects.filter(pk__in=wanted)
        if decision is Decision.INCLUDE:
            rows.update(held_out=False)
        else:
            rows.update(held_out_excluded_at=now)
        for case in held:
            audit.record(
                action=AUDIT_ACTIONS[decision],
                actor=actor,
                target=case,
                project_id=project.pk,
                request=request,
                detail={
                    "decision": decision.value,
                    "reason": case.held_out_reason,
                    "comment": comment,
                    "cases_in_decision": len(held),
                },
            )
        if decision is Decision.INCLUDE:
            loop_signals.reorder_queue(project.pk)
    for case in held:
        case.refresh_from_db(fields=["held_out", "held_out_excluded_at"])
    return held
