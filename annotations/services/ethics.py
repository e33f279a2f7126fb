"""Ethics approval (issue 17, section 3): a project records its committee approvals, and
without a current one the project is read-only for everyone but admins: no ingest, no
annotation, no training. Every write path of those three calls :func:`require_current_approval`,
whose refusal names the approval that lapsed.

Which projects the rule binds: ``Project.requires_ethics_approval``. New projects take it from
the setting ``MEDLOOP_REQUIRE_ETHICS_APPROVAL`` (on by default, off in the test settings so
that fixtures need no approval); projects that existed before the rule were migrated with it
off, and an admin turns it on once their approval is recorded."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from annotations import permissions
from annotations.atomic_files import write_atomically
from annotations.models import EthicsApproval, Project, Role
from annotations.services import audit
from annotations.services.errors import InvalidInput, NotAllowed
from medloop.compiled_queries import CompiledQuery

# What each guarded activity is called in a refusal.
ACTIVITIES = {
    "ingest": "no images or clinical data may be imported",
    "annotation": "no case may be handed out, annotated or reviewed",
    "training": "no model may be trained",
}
DOCUMENT_TYPES = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class EthicsApprovalRequired(NotAllowed):
    """The project has no current ethics approval (HTTP 403, code ethics_approval_required)."""

    code = "ethics_approval_required"


@dataclass(frozen=True)
class EthicsStatus:
    """Where a project stands: ``current`` is the approval in force today (None: none),
    ``latest`` the one that lapsed last when none is current, ``days_left`` until the current
    one expires, ``warning`` whether that is within MEDLOOP_ETHICS_WARNING_DAYS."""

    required: bool
    current: EthicsApproval | None
    latest: EthicsApproval | None
    days_left: int | None
    warning: bool

    @property
    def read_only(self) -> bool:
        return self.required and self.current is None

    def message(self, project: Project) -> str:
        """The sentence pages and refusals show (empty when there is nothing to say)."""
        if self.read_only:
            return f"{lapsed_description(project, self.latest)} The project is read-only."
        if self.warning and self.current is not None:
            approval = self.current
            days = "today" if self.days_left == 0 else f"in {self.days_left} days"
            return (
                f"Ethics approval {approval.reference} ({approval.committee}) expires on "
                f"{approval.expires_on.isoformat()}, {days}: record its renewal before then, "
                "or the project becomes read-only."
            )
        return ""


def approvals_of(project: Project) -> QuerySet[EthicsApproval]:
    return EthicsApproval.objects.filter(project=project).select_related("recorded_by")


def _in_force(*, project_id: int, today: date) -> QuerySet[EthicsApproval]:
    return EthicsApproval.objects.filter(
        project_id=project_id, approved_on__lte=today, expires_on__gte=today, revoked_at=None
    ).order_by("-expires_on", "-id")[:1]


# Checked on every hand-out and submit: compiled once (medloop.compiled_queries).
_IN_FORCE = CompiledQuery(_in_force)


def current_approval(project: Project, *, today: date | None = None) -> EthicsApproval | None:
    """The approval in force on ``today`` (approved on or before, expiring on or after, not
    revoked), the one that lasts longest when several are."""
    found = _IN_FORCE.fetch(project_id=project.pk, today=today or timezone.localdate())
    return found[0] if found else None


def status_of(project: Project, *, today: date | None = None) -> EthicsStatus:
    """The project's ethics status on ``today`` (see :class:`EthicsStatus`)."""
    today = today or timezone.localdate()
    current = current_approval(project, today=today)
    latest = None
    if current is None:
        latest = (
            EthicsApproval.objects.filter(project=project)
            .filter(Q(approved_on__lte=today) | Q(revoked_at__isnull=False))
            .order_by("-expires_on", "-id")
            .first()
        )
    days_left = (current.expires_on - today).days if current is not None else None
    warning = days_left is not None and days_left <= int(settings.MEDLOOP_ETHICS_WARNING_DAYS)
    return EthicsStatus(
        required=project.requires_ethics_approval,
        current=current,
        latest=latest,
        days_left=days_left,
        warning=warning and project.requires_ethics_approval,
    )


def lapsed_description(project: Project, latest: EthicsApproval | None) -> str:
    """Why the project has no current approval, naming the approval that lapsed."""
    if latest is None:
        return f"Project {project.name!r} has no ethics approval recorded."
    what = f"ethics approval {latest.reference} ({latest.committee})"
    if latest.revoked_at is not None:
        reason = f": {latest.revoked_reason}" if latest.revoked_reason else ""
        return (
            f"Project {project.name!r} has no current ethics approval: {what} was revoked on "
            f"{timezone.localtime(latest.revoked_at).date().isoformat()}{reason}."
        )
    return (
        f"Project {project.name!r} has no current ethics approval: {what} expired on "
        f"{latest.expires_on.isoformat()}."
    )


def _is_admin(actor: User | AnonymousUser | None, project: Project) -> bool:
    return actor is not None and Role.ADMIN in permissions.roles_in(actor, project.pk)


def require_current_approval(
    *, project: Project, actor: User | AnonymousUser | None, activity: str
) -> None:
    """Refuse ``activity`` (a key of :data:`ACTIVITIES`) with :class:`EthicsApprovalRequired`
    when ``project`` needs an ethics approval and has no current one. Admins of the project
    (and superusers) are exempt; work without a user (the DICOM listener, commands, workers)
    is not."""
    if not project.requires_ethics_approval or _is_admin(actor, project):
        return
    today = timezone.localdate()
    if current_approval(project, today=today) is not None:
        return
    latest = status_of(project, today=today).latest
    raise EthicsApprovalRequired(
        f"{lapsed_description(project, latest)} Until a lead records a current approval the "
        f"project is read-only: {ACTIVITIES[activity]}.",
        project=project.pk,
        activity=activity,
        approval=latest.pk if latest is not None else None,
        expired_on=latest.expires_on.isoformat() if latest is not None else None,
    )


def _document_name(name: str) -> tuple[str, str]:
    """A safe stored name and its content type; only the document kinds of DOCUMENT_TYPES."""
    base = _SAFE_NAME.sub("_", Path(name or "").name).strip(" .")[:150]
    suffix = Path(base).suffix.lower()
    if suffix not in DOCUMENT_TYPES:
        raise InvalidInput(
            f"document: {suffix or 'no extension'} is not accepted; send one of "
            f"{sorted(DOCUMENT_TYPES)}."
        )
    return base, DOCUMENT_TYPES[suffix]


def _parse_day(value: date | str, field: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise InvalidInput(f"{field}: {value!r} is not a date (YYYY-MM-DD).") from exc


def record_approval(
    *,
    project: Project,
    committee: str,
    reference: str,
    approved_on: date | str,
    expires_on: date | str,
    scope: str,
    actor: User | None,
    document: bytes | None = None,
    document_name: str = "",
    request: HttpRequest | None = None,
) -> EthicsApproval:
    """Record an ethics approval of ``project`` with its document (stored under
    ``projects/{id}/ethics/``, named by its SHA-256), audited as ``ethics.approval.record``.
    Raises InvalidInput naming the field at fault."""
    committee, reference, scope = committee.strip(), reference.strip(), scope.strip()
    for field, value, limit in (
        ("committee", committee, 200),
        ("reference", reference, 100),
        ("scope", scope, 5000),
    ):
        if not value:
            raise InvalidInput(f"{field}: required.")
        if len(value) > limit:
            raise InvalidInput(f"{field}: at most {limit} characters.")
    start = _parse_day(approved_on, "approved_on")
    end = _parse_day(expires_on, "expires_on")
    if end < start:
        raise InvalidInput("expires_on: the approval cannot expire before it was given.")
    stored_path = name = content_type = sha256 = ""
    size = 0
    if document is not None:
        if not document:
            raise InvalidInput("document: the file is empty.")
        limit = int(settings.MEDLOOP_MAX_ETHICS_DOCUMENT_BYTES)
        if len(document) > limit:
            raise InvalidInput(f"document: {len(document)} bytes is over the limit of {limit}.")
        name, content_type = _document_name(document_name)
        sha256 = hashlib.sha256(document).hexdigest()
        size = len(document)
        stored_path = f"projects/{project.pk}/ethics/{sha256}{Path(name).suffix.lower()}"
        write_atomically(Path(settings.STORAGE_DIR) / stored_path, document)
    with transaction.atomic():
        approval = EthicsApproval.objects.create(
            project=project,
            committee=committee,
            reference=reference,
            approved_on=start,
            expires_on=end,
            scope=scope,
            document_path=stored_path,
            document_name=name,
            document_content_type=content_type,
            document_sha256=sha256,
            document_size=size,
            recorded_by=actor,
        )
        audit.record(
            action="ethics.approval.record",
            actor=actor,
            target=approval,
            project_id=project.pk,
            request=request,
            detail={
                "committee": committee,
                "reference": reference,
                "approved_on": start.isoformat(),
                "expires_on": end.isoformat(),
                "document_sha256": sha256,
            },
        )
    return approval


def revoke_approval(
    *, approval: EthicsApproval, reason: str, actor: User | None, request: HttpRequest | None = None
) -> EthicsApproval:
    """Mark an approval withdrawn by its committee (suspended, or recorded in error): it is no
    longer current. Audited as ``ethics.approval.revoke``."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason: say why the approval is revoked.")
    if approval.revoked_at is not None:
        raise InvalidInput("This approval is already revoked.")
    approval.revoked_at = timezone.now()
    approval.revoked_reason = reason[:500]
    with transaction.atomic():
        approval.save(update_fields=["revoked_at", "revoked_reason"])
        audit.record(
            action="ethics.approval.revoke",
            actor=actor,
            target=approval,
            project_id=approval.project_id,
            request=request,
            detail={"reference": approval.reference, "reason": approval.revoked_reason},
        )
    return approval


def set_requirement(
    *, project: Project, required: bool, actor: User, request: HttpRequest | None = None
) -> Project:
    """Turn the approval rule on or off for ``project``: admins only (a lead could otherwise
    lift the read-only state the rule imposes), audited as ``ethics.requirement``."""
    if not _is_admin(actor, project):
        raise NotAllowed("Only an admin of the project may change whether it needs approval.")
    project.requires_ethics_approval = required
    with transaction.atomic():
        project.save(update_fields=["requires_ethics_approval"])
        audit.record(
            action="ethics.requirement",
            actor=actor,
            target=project,
            project_id=project.pk,
            request=request,
            detail={"requires_ethics_approval": required},
        )
    return project


def document_file(approval: EthicsApproval) -> Path | None:
    """The stored approval document, None when the approval has none."""
    if not approval.document_path:
        return None
    return Path(settings.STORAGE_DIR) / approval.document_path
