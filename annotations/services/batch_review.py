"""One shape for a lead's review of what the ingest held back, many items at once: images held
for possibly burned-in identifiers (annotations.services.quarantine) and cases held out by the
eligibility rules (annotations.services.held_out). A decision is all or none, always carries the
lead's comment, and writes one audit event per item with the reason it was held."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from django.contrib.auth.models import User
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from annotations.models import Project
from annotations.services import audit
from annotations.services.errors import InvalidInput

MAX_COMMENT_LENGTH = 1000

Item = TypeVar("Item", bound=models.Model)


# What a decision changes on each item, given the decision's time: {field: value}.
Changes = Callable[[datetime], dict[str, Any]]


@dataclass(frozen=True)
class BatchReview(Generic[Item]):
    """What differs between the reviews: the items' words, where they wait, what each decision
    does.

    ``field`` names the items in requests and messages ("instances"); ``items`` is their plural
    ("images"); ``one`` a single one awaiting review ("held image"); ``verbs`` the two decisions
    ("release or reject"); ``not_awaiting`` says why an id may not be awaiting review;
    ``awaiting`` gives a project's items awaiting review; ``reason`` the reason one was held;
    ``decisions`` maps each decision to its audit action and its changes; ``count_key`` is the
    audit detail's key for how many were decided together; with ``stamp_time`` the detail also
    holds the decision's time; ``after`` runs in the decision's transaction once it is made."""

    field: str
    items: str
    one: str
    verbs: str
    not_awaiting: str
    awaiting: Callable[[int], models.QuerySet[Item]]
    reason: Callable[[Item], str]
    decisions: Mapping[StrEnum, tuple[str, Changes]]
    max_items: int
    count_key: str
    stamp_time: bool = False
    after: Callable[[Project, StrEnum], None] | None = None

    def decide(
        self,
        *,
        project: Project,
        ids: Sequence[int],
        decision: StrEnum,
        comment: str,
        actor: User,
        request: HttpRequest | None = None,
    ) -> list[Item]:
        """Decide ``decision`` for the items ``ids`` of ``project``, all or none.

        Every id must name an item of the project awaiting review; otherwise ``InvalidInput``
        names those that are not, and nothing changes. Each item gets the decision's audit
        event with the decision, the reason it was held and ``comment``. Returns the decided
        items (changed), in id order."""
        comment = comment.strip()
        if not comment:
            raise InvalidInput(f"comment: say why you {self.verbs} these {self.items}.")
        if len(comment) > MAX_COMMENT_LENGTH:
            raise InvalidInput(f"comment: at most {MAX_COMMENT_LENGTH} characters.")
        wanted = sorted(set(ids))
        if not wanted:
            raise InvalidInput(f"{self.field}: name at least one {self.one}.")
        if len(wanted) > self.max_items:
            raise InvalidInput(f"{self.field}: at most {self.max_items} {self.items} at once.")
        audit_action, changes_at = self.decisions[decision]
        now = timezone.now()
        changes = changes_at(now)
        with transaction.atomic():
            held = list(
                self.awaiting(project.pk)
                .filter(pk__in=wanted)
                .select_for_update(of=("self",))
                .order_by("pk")
            )
            missing = sorted(set(wanted) - {item.pk for item in held})
            if missing:
                raise InvalidInput(
                    f"{self.field}: {missing} are not {self.items} of project {project.pk} "
                    f"awaiting review ({self.not_awaiting}).",
                    **{self.field: missing},
                )
            type(held[0])._default_manager.filter(pk__in=wanted).update(**changes)
            for item in held:
                for name, value in changes.items():
                    setattr(item, name, value)
                detail: dict[str, Any] = {
                    "decision": decision.value,
                    "reason": self.reason(item),
                    "comment": comment,
                }
                if self.stamp_time:
                    detail["decided_at"] = now.isoformat()
                detail[self.count_key] = len(held)
                audit.record(
                    action=audit_action,
                    actor=actor,
                    target=item,
                    project_id=project.pk,
                    request=request,
                    detail=detail,
                )
            if self.after is not None:
                self.after(project, decision)
        return held
