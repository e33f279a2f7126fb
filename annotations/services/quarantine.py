"""A lead's review of images held at ingest for possibly burned-in identifiers: release (the
image shows none, annotators may see it) or reject (it does; it stays hidden for good), one image
or many at once, always with the lead's comment in the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from django.contrib.auth.models import User
from django.http import HttpRequest

from annotations import selectors
from annotations.models import Instance, Project
from annotations.services.batch_review import BatchReview

MAX_IMAGES_PER_DECISION = 500


class Decision(StrEnum):
    RELEASE = "release"
    REJECT = "reject"


REVIEW: BatchReview[Instance] = BatchReview(
    field="instances",
    items="images",
    one="held image",
    verbs="release or reject",
    not_awaiting="already released or rejected, or not held",
    awaiting=selectors.held_images,
    reason=lambda instance: instance.quarantine_reason,
    decisions={
        Decision.RELEASE: ("instance.clear_quarantine", lambda now: {"quarantined": False}),
        Decision.REJECT: (
            "instance.reject_quarantine",
            lambda now: {"quarantine_rejected_at": now},
        ),
    },
    max_items=MAX_IMAGES_PER_DECISION,
    count_key="images_in_decision",
    stamp_time=True,
)


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
    return REVIEW.decide(
        project=project, ids=instance_ids, decision=decision, comment=comment, actor=actor,
        request=request,
    )  # fmt: skip
