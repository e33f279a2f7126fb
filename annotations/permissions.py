"""Who may do what, per project: one table of (resource, action) -> roles, checked in one place.

Superusers may do everything. Annotators additionally see only the cases they hold or work on
and have not skipped (``can_view_case``), so a case's clinical data reaches the fewest people
needed."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.utils import timezone

from annotations.models import Annotation, Case, CaseSkip, Membership, Project, Role
from medloop.compiled_queries import CompiledQuery

A, R, L, M, D = Role.ANNOTATOR, Role.REVIEWER, Role.LEAD, Role.MODEL_OWNER, Role.ADMIN
P = Role.DPO
ALL_ROLES = frozenset(Role.values)
# The roles that work with the patients' data (cases, images, labels, models): all but the
# data protection officer, who sees consent and data-use reports only.
WORKING_ROLES = frozenset({A, R, L, M, D})

POLICY: dict[tuple[str, str], frozenset[str]] = {
    ("project", "view"): ALL_ROLES,
    # A project's name, label schema and queue settings.
    ("project", "change"): frozenset({L, D}),
    # The settings page: leads (schema, queue, members) and model owners (the loop).
    ("settings", "view"): frozenset({L, M, D}),
    # The loop's settings (active_learning.LoopSettings).
    ("loop", "change"): frozenset({M, D}),
    ("membership", "view"): frozenset({L, D}),
    ("membership", "change"): frozenset({L, D}),
    ("queue", "lease"): frozenset({A}),
    ("case", "list"): frozenset({R, L, M, D}),
    ("case", "view_any"): frozenset({R, L, M, D}),
    ("case", "view_own"): frozenset({A}),
    ("annotation", "annotate"): frozenset({A}),
    ("annotation", "view_any"): frozenset({R, L, M, D}),
    ("annotation", "review"): frozenset({R, L, D}),
    ("suggestion", "view"): WORKING_ROLES,
    ("model", "view"): frozenset({M, L, D}),
    ("model", "change"): frozenset({M, D}),
    ("audit", "view"): frozenset({L, D}),
    ("export", "download"): frozenset({L, M, D}),
    ("ingest", "upload"): frozenset({L, D}),
    ("quarantine", "review"): frozenset({L, D}),
    ("dashboard", "view"): frozenset({L, D}),
    # Double reading: reviewers, leads and admins see the agreement and make final labels.
    ("adjudication", "view"): frozenset({R, L, D}),
    ("adjudication", "resolve"): frozenset({R, L, D}),
    # Reviewers already see every submission and its annotator; the counts help them plan.
    ("dashboard", "view_review"): frozenset({R, L, D}),
    # Ethics approvals (issue 17): every member sees whether the project is read-only and why;
    # leads and admins record approvals; only admins decide whether the project needs one.
    ("ethics", "view"): ALL_ROLES,
    ("ethics", "change"): frozenset({L, D}),
    ("ethics", "require"): frozenset({D}),
    # Consent (issue 17): leads and admins record consent and withdrawals and still see a
    # withdrawn patient's cases; the data protection officer (with them) sees every patient's
    # consent status and asks for a patient's data-use report, and sees nothing else of the
    # patients' data: no case, image, label, suggestion or model.
    ("consent", "view"): frozenset({L, D, P}),
    ("consent", "change"): frozenset({L, D}),
    ("data_use", "view"): frozenset({L, D, P}),
}


def _memberships(*, user_id: int, project_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user_id, project_id=project_id)


# Asked on nearly every request: compiled once (medloop.compiled_queries).
_ROLES = CompiledQuery(lambda **ids: _memberships(**ids).values_list("role", flat=True))
_MEMBERSHIPS_WITH_PROJECT = CompiledQuery(
    lambda **ids: _memberships(**ids).select_related("project")
)


def roles_in(user: User | AnonymousUser, project_id: int) -> frozenset[str]:
    """The roles ``user`` holds in the project (all roles for a superuser)."""
    if not user.is_authenticated:
        return frozenset()
    if getattr(user, "is_superuser", False):
        return ALL_ROLES
    cache: dict[int, frozenset[str]] = user.__dict__.setdefault("_medloop_roles", {})
    if project_id not in cache:
        cache[project_id] = frozenset(_ROLES.fetch(user_id=user.pk, project_id=project_id))
    return cache[project_id]


def project_with_roles(user: User | AnonymousUser, project_id: int) -> Project | None:
    """The project, reading the user's roles in it in the same query (``roles_in`` then needs
    none); None when it does not exist or the user is not a member (superusers see all)."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return Project.objects.filter(pk=project_id).first()
    memberships: list[Membership] = _MEMBERSHIPS_WITH_PROJECT.fetch(
        user_id=user.pk, project_id=project_id
    )
    cache: dict[int, frozenset[str]] = user.__dict__.setdefault("_medloop_roles", {})
    cache[project_id] = frozenset(m.role for m in memberships)
    return memberships[0].project if memberships else None


def allowed(user: User | AnonymousUser, project_id: int, resource: str, action: str) -> bool:
    return bool(roles_in(user, project_id) & POLICY[(resource, action)])


def is_member(user: User | AnonymousUser, project_id: int) -> bool:
    return bool(roles_in(user, project_id))


def can_view_case(user: User | AnonymousUser, case: Case) -> bool:
    """Whether ``user`` may read ``case`` and its clinical data.

    Reviewers, leads, model owners and admins see every case of their project. An annotator
    sees a case while they hold its lease, once they have submitted a read of it (their own
    work), or while they have a draft of it that they have not skipped: a skipped case (its
    draft kept or not) and an expired lease grant nothing."""
    if allowed(user, case.project_id, "case", "view_any"):
        return True
    if not allowed(user, case.project_id, "case", "view_own"):
        return False
    if case.held_out:  # held out by the eligibility rules: never served to annotators
        return False
    if case.leased_to_id == user.pk and (
        case.lease_expires_at is None or case.lease_expires_at > timezone.now()
    ):
        return True
    own = Annotation.objects.filter(case_id=case.pk, annotator_id=user.pk)
    if own.exclude(status=Annotation.Status.DRAFT).exists():
        return True
    skipped = CaseSkip.objects.filter(case_id=case.pk, annotator_id=user.pk).exists()
    return not skipped and own.exists()


def can_view_annotation(user: User | AnonymousUser, annotation: Annotation) -> bool:
    project_id = annotation.case.project_id
    if annotation.annotator_id == user.pk and is_member(user, project_id):
        return True
    return allowed(user, project_id, "annotation", "view_any")
