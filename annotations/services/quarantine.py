"""A lead's review of images held at ingest for possibly burned-in identifiers: release (the
image shows none, annotators may see it) or reject (it does; it stays hidden for good), one image
or many at once, always with the lead's comment in the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from annotations import selectors
from annotations.models import Instance, Project
from annotations.services import audit
from annotations.services.errors import InvalidInput

MAX_IMAGES_PER_DECISION = 500
MAX_COMMENT_LENGTH = 1000


class Decision(StrEnum):
    RELEASE = "release"
    REJECT = "reject"


AUDIT_ACTIONS = {
    Decision.RELEASE: "instance.clear_quarantine",
    Decision.REJECT: "instance.reject_quarantine",
}


def decide_held_images(
    *,
    project: Project,
    instance_ids: Sequence[int],
    decision: Decision,
    comment: str,
    actor: User,
    request: HttpRequest | None = None,
) -> list[Instance]:
    """Release or reject the held images ``instance_ids`` of ``project``, all or none.

    Every id must name an image of the project that is still awaiting review
    (``selectors.held_images``); otherwise ``InvalidInput`` names the ids that are not, and
    nothing changes. Each image gets its own audit event with the decision, the reason it was
    held and ``comment``. Returns the decided images, in id order."""
    comment = comment.strip()
    if not comment:
        raise InvalidInput("comment: say why you release or reject these images.")
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidInput(f"comment: at most {MAX_COMMENT_LENGTH} characters.")
    wanted = sorted(set(instance_ids))
    if not wanted:
        raise InvalidInput("instances: name at least one held image.")
    if len(wanted) > MAX_IMAGES_PER_DECISION:
        raise InvalidInput(f"instances: at most {MAX_IMAGES_PER_DECISION} images at once.")
    now = timezone.now()
    with transaction.atomic():
        held = list(
            selectors.held_images(project.pk)
            .filter(pk__in=wanted)
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        missing = sorted(set(wanted) - {i.pk for i in held})
        if missing:
            raise InvalidInput(
                f"instances: {missing} are not images of project {project.pk} awaiting review "
                "(already released or rejected, or not held).",
                instances=missing,
            )
        rows = Instance.objects.filter(pk__in=wanted)
        if decision is Decision.RELEASE:
            rows.update(quarantined=False)
        else:
            rows.update(quarantine_rejected_at=now)
        for instance in held:
            if decision is Decision.RELEASE:
                instance.quarantined = False
            else:
                instance.quarantine_rejected_at = now
            audit.record(
                action=AUDIT_ACTIONS[decision],
                actor=actor,
                target=instance,
                project_id=project.pk,
                request=request,
                detail={
                    "decision": decision.value,
                    "reason": instance.quarantine_reason,
                    "comment": comment,
                    "decided_at": now.isoformat(),
                    "images_in_decision": len(held),
                },
            )
    return held
