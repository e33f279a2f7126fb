"""The case queue: hand each annotator the highest-priority case that needs their label and
is not leased to anybody else, and reserve it with a lease.

Safety against double hand-out:
- PostgreSQL: one transaction, ``SELECT ... FOR UPDATE SKIP LOCKED`` on the case row; the
  lease is written before commit, so a concurrent transaction skips the row or, if it waited on
  it, re-checks the lease condition on the committed row.
- SQLite (the embedded default): the database is configured with ``transaction_mode =
  IMMEDIATE`` (see medloop.settings.base), so the transaction holds SQLite's write lock
  before its first read and concurrent hand-outs are serialised.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotations.models import Annotation, Box, Case, CaseSkip, Instance, Project
from annotations.services import audit, consent, ethics
from annotations.services.errors import Conflict, InvalidInput
from medloop.compiled_queries import CompiledQuery, CompiledUpdate

# Reads that count towards a case's required reads (a returned one still belongs to its reader).
COUNTED_READ_STATUSES = (
    Annotation.Status.SUBMITTED,
    Annotation.Status.ACCEPTED,
    Annotation.Status.RETURNED,
)
DONE_READ_STATUSES = (Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED)
# The current case and the one prefetched after it.
MAX_LEASES_PER_ANNOTATOR = 2


def _has_image_to_read() -> Exists:
    """A case with at least one image an annotator may see: one held in quarantine (possible
    burned-in identifiers) or rejected there is hidden, so a case of such images alone has
    nothing to read and is not handed out until a lead releases one of them."""
    return Exists(Instance.objects.filter(series__study=OuterRef("study"), quarantined=False))


def cases_needing_read_by(*, project: Project, annotator: User) -> QuerySet[Case]:
    """Open cases of ``project`` that still need a read from ``annotator``, lease ignored,
    in queue order (priority, then first in, first out).

    The order matches the ``case_queue_order`` index, so the database walks the index and stops
    at the first case that qualifies instead of ranking the whole queue."""
    reads_by_others = (
        Annotation.objects.filter(case=OuterRef("pk"), status__in=COUNTED_READ_STATUSES)
        .exclude(annotator=annotator)
        .order_by()
        .values("case")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Case.objects.filter(project=project, state=Case.State.OPEN)
        .filter(_has_image_to_read(), consent.servable(), held_out=False)
        .exclude(
            Exists(
                Annotation.objects.filter(
                    case=OuterRef("pk"), annotator=annotator, status__in=DONE_READ_STATUSES
                )
            )
        )
        .exclude(Exists(CaseSkip.objects.filter(case=OuterRef("pk"), annotator=annotator)))
        .annotate(
            reads_by_others=Coalesce(Subquery(reads_by_others), 0, output_field=IntegerField())
        )
        .filter(reads_by_others__lt=F("required_reads"))
        .order_by("-priority", "id")
    )


def unfinished_work_of(*, project: Project, annotator: User) -> QuerySet[Case]:
    """Open cases where the annotator has a draft or returned annotation: served first.

    Starts from the annotator's few annotations, not from the whole queue."""
    unfinished = Annotation.objects.filter(
        annotator=annotator,
        status__in=(Annotation.Status.DRAFT, Annotation.Status.RETURNED),
        case__project=project,
    ).values("case_id")
    return (
        Case.objects.filter(pk__in=unfinished, state=Case.State.OPEN)
        .filter(_has_image_to_read(), consent.servable(), held_out=False)
        .exclude(Exists(CaseSkip.objects.filter(case=OuterRef("pk"), annotator=annotator)))
        .order_by("-priority", "id")
    )


def returned_work_waiting(
    *, project_id: int, annotator: User, now: datetime | None = None
) -> QuerySet[Case]:
    """Open cases of the project whose read by ``annotator`` a reviewer returned and that
    nobody else holds, highest priority first: ``lease_next_case`` hands them out before the
    cases the annotator already holds."""
    returned = Annotation.objects.filter(
        annotator=annotator, status=Annotation.Status.RETURNED, case__project_id=project_id
    ).values("case_id")
    return (
        Case.objects.filter(pk__in=returned, state=Case.State.OPEN)
        .filter(_has_image_to_read(), consent.servable(), held_out=False)
        .filter(_lease_free_for(annotator, now or timezone.now()))
        .exclude(Exists(CaseSkip.objects.filter(case=OuterRef("pk"), annotator=annotator)))
        .order_by("-priority", "id")
    )


def _returned_work_of(*, project: Project, annotator: User, now: datetime) -> QuerySet[Case]:
    """``returned_work_waiting``, locked for the caller (skipping rows another transaction
    holds)."""
    cases = returned_work_waiting(project_id=project.pk, annotator=annotator, now=now)
    if connection.features.has_select_for_update_skip_locked:
        cases = cases.select_for_update(skip_locked=True, of=("self",))
    return cases


def _lease_free_for(annotator: User, now: datetime) -> Q:
    return Q(leased_to__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_to=annotator)


def _first_free(
    cases: QuerySet[Case], annotator: User, now: datetime, exclude: Collection[int]
) -> QuerySet[Case]:
    """``cases`` the annotator may lease now, except ``exclude``, locked for the caller (rows
    another transaction holds are skipped; SQLite serialises instead, see above)."""
    candidates = cases.filter(_lease_free_for(annotator, now)).exclude(pk__in=exclude)
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    return candidates


def _next_needing_read(
    *, project_id: int, annotator_id: int, now: datetime, exclude: list[int]
) -> QuerySet[Case]:
    annotator = User(pk=annotator_id)
    cases = cases_needing_read_by(project=Project(pk=project_id), annotator=annotator)
    return _first_free(cases, annotator, now, exclude)[:1]


# The hand-out's look-up, compiled once (medloop.compiled_queries): building and compiling it
# cost more Python time than the database takes to answer it.
_NEXT_NEEDING_READ = CompiledQuery(_next_needing_read)


def _returned_waiting_ids(*, project_id: int, annotator_id: int, now: datetime) -> QuerySet[Any]:
    cases = returned_work_waiting(project_id=project_id, annotator=User(pk=annotator_id), now=now)
    return cases.values_list("pk", flat=True)[:10]


_RETURNED_WAITING_IDS = CompiledQuery(_returned_waiting_ids)


def _held_by(*, project_id: int, annotator_id: int, now: datetime) -> QuerySet[Case]:
    return Case.objects.filter(
        project_id=project_id,
        state=Case.State.OPEN,
        leased_to_id=annotator_id,
        lease_expires_at__gt=now,
    ).order_by("id")


def _open_work_states(*, project_id: int, annotator_id: int) -> QuerySet[Any]:
    return (
        Annotation.objects.filter(
            annotator_id=annotator_id,
            status__in=(Annotation.Status.DRAFT, Annotation.Status.RETURNED),
            case__project_id=project_id,
        )
        .order_by()
        .values_list("status", flat=True)
        .distinct()
    )


# Asked or written on every hand-out or submit: compiled once.
_HELD_BY = CompiledQuery(_held_by)
_OPEN_WORK_STATES = CompiledQuery(_open_work_states)
_LEASE = CompiledUpdate(
    lambda *, case_pk, annotator_id, expires: (
        Case.objects.filter(pk=case_pk),
        {"leased_to_id": annotator_id, "lease_expires_at": expires},
    )
)
_FREE_LEASE = CompiledUpdate(
    lambda *, case_pk, annotator_id: (
        Case.objects.filter(pk=case_pk, leased_to_id=annotator_id),
        {"leased_to": None, "lease_expires_at": None},
    )
)
_DONE_READS = CompiledQuery(
    lambda *, case_pk: Annotation.objects.filter(
        case_id=case_pk, status__in=DONE_READ_STATUSES
    ).values_list("pk", flat=True)
)
_SET_STATE = CompiledUpdate(
    lambda *, case_pk, state: (Case.objects.filter(pk=case_pk), {"state": state})
)


def free_lease(*, case: Case, annotator: User) -> None:
    """End ``annotator``'s lease on ``case`` (nothing when somebody else holds it)."""
    _FREE_LEASE.run(case_pk=case.pk, annotator_id=annotator.pk)


def returned_work_waiting_ids(*, project_id: int, annotator: User) -> list[int]:
    """The first ten of ``returned_work_waiting`` (ids), as the submit answer lists them."""
    rows = _RETURNED_WAITING_IDS.rows(
        project_id=project_id, annotator_id=annotator.pk, now=timezone.now()
    )
    return [row[0] for row in rows]


def lease_next_case(
    *,
    project: Project,
    annotator: User,
    now: datetime | None = None,
    exclude: Collection[int] = (),
) -> Case | None:
    """Lease the next case for ``annotator`` for ``project.lease_seconds``; None when the queue
    holds nothing for them. A case the annotator already holds is handed back (renewed).

    ``exclude`` names cases the caller already has open: the workspace leases the case after
    the current one ahead of time, to prefetch its images. At most MAX_LEASES_PER_ANNOTATOR
    cases are held at once (Conflict beyond), so nobody can hoard the queue. Refused
    (EthicsApprovalRequired) while the project has no current ethics approval."""
    ethics.require_current_approval(project=project, actor=annotator, activity="annotation")
    now = now or timezone.now()
    expires = now + timedelta(seconds=project.lease_seconds)
    # Inside the caller's transaction when there is one (the next-case view's), without a
    # savepoint of its own: the refusal below is raised once the block has ended, before it
    # wrote anything, so a caller that handles it keeps a usable transaction.
    full = False
    with transaction.atomic(savepoint=False):
        # What the annotator has open here: the cases they hold (at most
        # MAX_LEASES_PER_ANNOTATOR) and the states of their drafts and returned reads. Each
        # later look-up is made only when these say it can find something.
        holding: list[Case] = _HELD_BY.fetch(
            project_id=project.pk, annotator_id=annotator.pk, now=now
        )
        held_ids = {case.pk for case in holding}
        open_work = set(_OPEN_WORK_STATES.fetch(project_id=project.pk, annotator_id=annotator.pk))
        # Work a reviewer returned comes first, before the cases already held (the one
        # prefetched after the current case), as long as the lease limit leaves room for it.
        returned = None
        if Annotation.Status.RETURNED in open_work:
            returned = (
                _returned_work_of(project=project, annotator=annotator, now=now)
                .exclude(pk__in=exclude)
                .first()
            )
        already_held = returned is not None and returned.pk in held_ids
        if returned is not None and (already_held or len(holding) < MAX_LEASES_PER_ANNOTATOR):
            Case.objects.filter(pk=returned.pk).update(
                leased_to=annotator, lease_expires_at=expires
            )
            returned.leased_to = annotator  # type: ignore[assignment]
            returned.lease_expires_at = expires
            if not already_held:
                audit.record(
                    action="case.lease", actor=annotator, target=returned, project_id=project.pk
                )
            return returned
        held = next((case for case in holding if case.pk not in exclude), None)
        full = held is None and len(holding) >= MAX_LEASES_PER_ANNOTATOR
        if full:
            case = None
        elif held is not None:
            Case.objects.filter(pk=held.pk).update(lease_expires_at=expires)
            held.lease_expires_at = expires
            return held
        else:
            case = None
        if not full and open_work:
            case = _first_free(
                unfinished_work_of(project=project, annotator=annotator), annotator, now, exclude
            ).first()
        if not full and case is None:
            case = next(
                _NEXT_NEEDING_READ.objects(
                    Case,
                    project_id=project.pk,
                    annotator_id=annotator.pk,
                    now=now,
                    exclude=sorted(set(exclude)),
                ),
                None,
            )
        if case is not None:
            _LEASE.run(case_pk=case.pk, annotator_id=annotator.pk, expires=expires)
            case.leased_to = annotator  # type: ignore[assignment]
            case.lease_expires_at = expires
            audit.record(action="case.lease", actor=annotator, target=case, project_id=project.pk)
    if full:
        raise Conflict(
            f"You already hold {MAX_LEASES_PER_ANNOTATOR} cases; submit, skip or release one."
        )
    return case


def renew_lease(*, case: Case, annotator: User, now: datetime | None = None) -> Case:
    """Extend the annotator's lease on ``case`` (taking it again if it had expired and nobody
    else took it). Raises Conflict when someone else holds it, when the annotator skipped it,
    or when they already hold MAX_LEASES_PER_ANNOTATOR other cases."""
    ethics.require_current_approval(project=case.project, actor=annotator, activity="annotation")
    consent.check_case_open(case)
    now = now or timezone.now()
    expires = now + timedelta(seconds=case.project.lease_seconds)
    if CaseSkip.objects.filter(case=case, annotator=annotator).exists():
        raise Conflict("You skipped this case; it is not leased to you again.")
    # The cap of lease_next_case holds here too: renewing is no way to hoard cases.
    others = (
        Case.objects.filter(
            project_id=case.project_id,
            state=Case.State.OPEN,
            leased_to=annotator,
            lease_expires_at__gt=now,
        )
        .exclude(pk=case.pk)
        .count()
    )
    if others >= MAX_LEASES_PER_ANNOTATOR:
        raise Conflict(
            f"You already hold {MAX_LEASES_PER_ANNOTATOR} cases; submit, skip or release one."
        )
    with transaction.atomic(savepoint=False):
        taken = Case.objects.filter(pk=case.pk).filter(_lease_free_for(annotator, now))
        if case.state != Case.State.OPEN:
            raise Conflict("This case needs no more reads; it cannot be leased.")
        if taken.update(leased_to=annotator, lease_expires_at=expires) == 0:
            raise Conflict("This case is leased to another annotator.")
    case.leased_to = annotator  # type: ignore[assignment]
    case.lease_expires_at = expires
    return case


def release_lease(*, case: Case, annotator: User, skip_reason: str | None = None) -> None:
    """Give the case back to the queue. With ``skip_reason`` the annotator passes on it: it is
    not offered to them again, the reason is kept for the project lead, and their working copy
    is deleted if they never wrote to it (an empty draft would otherwise keep the case's
    clinical data readable to them, see annotations.permissions.can_view_case)."""
    with transaction.atomic():
        Case.objects.filter(pk=case.pk, leased_to=annotator).update(
            leased_to=None, lease_expires_at=None
        )
        if skip_reason is not None:
            reason = skip_reason.strip()
            if not reason:
                raise InvalidInput("A skip needs a reason.")
            CaseSkip.objects.get_or_create(
                case=case, annotator=annotator, defaults={"reason": reason[:200]}
            )
            _discard_untouched_draft(case=case, annotator=annotator)
        audit.record(
            action="case.skip" if skip_reason is not None else "case.release",
            actor=annotator,
            target=case,
            project_id=case.project_id,
            detail={"reason": skip_reason} if skip_reason else {},
        )
    case.leased_to = None
    case.lease_expires_at = None


def _discard_untouched_draft(*, case: Case, annotator: User) -> None:
    """Delete the annotator's draft of ``case`` if it is still as next-case created it: never
    saved (version 1), no findings, report, boxes or rejected suggestions."""
    untouched = Annotation.objects.filter(
        case=case,
        annotator=annotator,
        status=Annotation.Status.DRAFT,
        version=1,
        findings={},
        report={},
        rejected_suggestion_boxes=[],
    ).exclude(Exists(Box.objects.filter(annotation=OuterRef("pk"))))
    for annotation in untouched:
        audit.record(
            action="annotation.discard",
            actor=annotator,
            target=annotation,
            project_id=case.project_id,
            detail={"case": case.pk, "why": "skipped before any change"},
        )
        annotation.delete()


def release_expired_leases(*, now: datetime | None = None) -> int:
    """Free every lease whose time is up; return how many were freed."""
    now = now or timezone.now()
    return Case.objects.filter(lease_expires_at__lte=now).update(
        leased_to=None, lease_expires_at=None
    )


def refresh_case_state(case: Case) -> None:
    """Mark a case complete once enough reads are submitted, open again otherwise."""
    done = len(_DONE_READS.fetch(case_pk=case.pk))
    state = Case.State.COMPLETE if done >= case.required_reads else Case.State.OPEN
    if state != case.state:
        _SET_STATE.run(case_pk=case.pk, state=str(state))
        case.state = state
