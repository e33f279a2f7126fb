"""Projects, their label schema and their members."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal

from annotations.dicom import eligibility
from annotations.models import Membership, Project, Role
from annotations.services import audit
from annotations.services.errors import NotAllowed

DEFAULT_CHEST_SCHEMA: dict[str, Any] = {
    "findings": [
        {"key": "nodule", "name": "Nodule", "color": "#e6194b", "hotkey": "1"},
        {"key": "mass", "name": "Mass", "color": "#f58231", "hotkey": "2"},
        {"key": "consolidation", "name": "Consolidation", "color": "#ffe119", "hotkey": "3"},
        {"key": "effusion", "name": "Pleural effusion", "color": "#3cb44b", "hotkey": "4"},
        {"key": "pneumothorax", "name": "Pneumothorax", "color": "#4363d8", "hotkey": "5"},
        {"key": "cardiomegaly", "name": "Cardiomegaly", "color": "#911eb4", "hotkey": "6"},
    ],
    "report_sections": [
        {"key": "findings", "title": "Findings"},
        {"key": "impression", "title": "Impression"},
    ],
}

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def validate_label_schema(schema: Any) -> dict[str, Any]:
    """Check a label schema and return it normalised; raise ValidationError naming the fault.

    Shape: {"findings": [{"key", "name", "color": "#rrggbb", "hotkey": one character}],
    "report_sections": [{"key", "title"}]}. Keys are unique snake_case; hotkeys unique."""
    if not isinstance(schema, dict):
        raise ValidationError(
            "label_schema must be an object with 'findings' and 'report_sections'."
        )
    findings = schema.get("findings")
    sections = schema.get("report_sections")
    if not isinstance(findings, list) or not findings:
        raise ValidationError("label_schema.findings must be a non-empty list.")
    if not isinstance(sections, list) or not sections:
        raise ValidationError("label_schema.report_sections must be a non-empty list.")
    keys: set[str] = set()
    hotkeys: set[str] = set()
    clean_findings = []
    for i, item in enumerate(findings):
        where = f"label_schema.findings[{i}]"
        if not isinstance(item, dict):
            raise ValidationError(f"{where} must be an object.")
        key = item.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValidationError(f"{where}.key must be snake_case (a-z, 0-9, _), got {key!r}.")
        if key in keys:
            raise ValidationError(f"{where}.key {key!r} is used twice.")
        keys.add(key)
        color = item.get("color", "#ffffff")
        if not isinstance(color, str) or not _COLOR.match(color):
            raise ValidationError(f"{where}.color must look like #rrggbb, got {color!r}.")
        hotkey = item.get("hotkey", "")
        if not isinstance(hotkey, str) or len(hotkey) > 1:
            raise ValidationError(f"{where}.hotkey must be a single character.")
        if hotkey and hotkey in hotkeys:
            raise ValidationError(f"{where}.hotkey {hotkey!r} is used twice.")
        if hotkey:
            hotkeys.add(hotkey)
        name = item.get("name") or key.replace("_", " ").capitalize()
        clean_findings.append({"key": key, "name": str(name), "color": color, "hotkey": hotkey})
    section_keys: set[str] = set()
    clean_sections = []
    for i, item in enumerate(sections):
        where = f"label_schema.report_sections[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValidationError(f"{where} must be an object with a 'key'.")
        key = item["key"]
        if not _KEY.match(key) or key in section_keys:
            raise ValidationError(f"{where}.key {key!r} must be unique snake_case.")
        section_keys.add(key)
        clean_sections.append({"key": key, "title": str(item.get("title") or key.capitalize())})
    return {"findings": clean_findings, "report_sections": clean_sections}


def _check_eligibility_rules(rules: Any) -> dict[str, Any]:
    """Inclusion rules checked at ingest (annotations.dicom.eligibility), normalised."""
    try:
        return eligibility.validate_rules(rules)
    except eligibility.RulesInvalid as exc:
        raise ValidationError(str(exc)) from exc


def _check_fractions(double_read_fraction: float, validation_fraction: float) -> None:
    if not 0.0 <= double_read_fraction <= 1.0:
        raise ValidationError("double_read_fraction must be between 0 and 1.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValidationError("validation_fraction must be at least 0 and below 1.")


@transaction.atomic
def create_project(
    *,
    name: str,
    created_by: User | None,
    modality: str = "DX",
    description: str = "",
    label_schema: dict[str, Any] | None = None,
    double_read_fraction: float = 0.0,
    validation_fraction: float = 0.1,
    lease_seconds: int = 900,
    requires_ethics_approval: bool | None = None,
    eligibility_rules: dict[str, Any] | None = None,
    adjudication_box_f1: float | None = None,
    adjudication_report_rouge: float | None = None,
) -> Project:
    """Create a project; its creator becomes its admin and lead (the loop's settings are the
    loop's own: ``active_learning.services.loop_settings``). ``requires_ethics_approval``
    (None: the setting MEDLOOP_REQUIRE_ETHICS_APPROVAL): ingest, annotation and training wait
    for a current ethics approval (annotations.services.ethics)."""
    rules = _check_eligibility_rules(eligibility_rules or {})
    if requires_ethics_approval is None:
        requires_ethics_approval = bool(settings.MEDLOOP_REQUIRE_ETHICS_APPROVAL)
    schema = validate_label_schema(label_schema or DEFAULT_CHEST_SCHEMA)
    _check_fractions(double_read_fraction, validation_fraction)
    thresholds = {
        name: value
        for name, value in (
            ("adjudication_box_f1", adjudication_box_f1),
            ("adjudication_report_rouge", adjudication_report_rouge),
        )
        if value is not None
    }
    _check_thresholds(thresholds)
    project = Project.objects.create(
        name=name,
        description=description,
        modality=modality,
        label_schema=schema,
        double_read_fraction=double_read_fraction,
        validation_fraction=validation_fraction,
        lease_seconds=lease_seconds,
        requires_ethics_approval=requires_ethics_approval,
        eligibility_rules=rules,
        **thresholds,
    )
    if created_by is not None:
        for role in (Role.ADMIN, Role.LEAD):
            Membership.objects.create(project=project, user=created_by, role=role)
    audit.record(action="project.create", actor=created_by, target=project, project_id=project.pk)
    return project


UPDATABLE_SETTINGS = (
    "name",
    "description",
    "label_schema",
    "double_read_fraction",
    "adjudication_box_f1",
    "adjudication_report_rouge",
    "validation_fraction",
    "lease_seconds",
    "eligibility_rules",
)


# Sent (project, modality) before a stored project's modality changes (the Django admin's
# project form; the API does not change it). A receiver refuses the change by raising
# InvalidInput with a message naming what is at fault: the loop, when the model settings it
# holds do not fit the model kind the new modality would train.
modality_changing = Signal()


def check_modality_change(project: Project, modality: str) -> None:
    """Ask the receivers of :data:`modality_changing` whether ``project`` may take
    ``modality``; InvalidInput when one refuses."""
    if modality != project.modality:
        modality_changing.send(sender=Project, project=project, modality=modality)


def check_changes(*, project: Project, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes to ``project``'s settings, checked and normalised (the label schema) as
    :func:`update_project` applies them; raise ValidationError naming the field at fault. The
    Django admin's project form runs the same checks."""
    unknown = set(changes) - set(UPDATABLE_SETTINGS)
    if unknown:
        raise ValidationError(f"These project fields cannot be changed: {sorted(unknown)}.")
    changes = dict(changes)
    if "label_schema" in changes:
        changes["label_schema"] = validate_label_schema(changes["label_schema"])
    if "eligibility_rules" in changes:
        changes["eligibility_rules"] = _check_eligibility_rules(changes["eligibility_rules"])
    _check_thresholds(changes)
    _check_fractions(
        changes.get("double_read_fraction", project.double_read_fraction),
        changes.get("validation_fraction", project.validation_fraction),
    )
    return changes


def _check_thresholds(values: dict[str, Any]) -> None:
    """The double reads' agreement thresholds that ``values`` names are numbers in [0, 1]."""
    for threshold in ("adjudication_box_f1", "adjudication_report_rouge"):
        value = values.get(threshold, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValidationError(f"{threshold} must be a number between 0 and 1, got {value!r}.")


def finding_keys_change(project: Project, label_schema: dict[str, Any]) -> bool:
    """Whether ``label_schema`` names other finding classes, or orders them otherwise, than the
    project's: the loop's next cycle then cannot build on an earlier version (a cold start)."""
    return [f["key"] for f in label_schema.get("findings", [])] != project.finding_keys


# Settings whose old and new values the audit trail records (the rest: their names only).
_AUDITED_VALUES = (
    "name",
    "eligibility_rules",
    "double_read_fraction",
    "adjudication_box_f1",
    "adjudication_report_rouge",
    "validation_fraction",
    "lease_seconds",
)


@transaction.atomic
def update_project(*, project: Project, changed_by: User | None, **changes: Any) -> Project:
    """Change project settings (:func:`check_changes`: unknown fields are refused, the schema
    is validated). The audit event names the fields, the old and new values of the scalar
    ones, and whether the schema's finding classes changed (the next cycle starts cold)."""
    changes = check_changes(project=project, changes=changes)
    detail: dict[str, Any] = {"fields": sorted(changes)}
    values = {
        field: [getattr(project, field), changes[field]]
        for field in _AUDITED_VALUES
        if field in changes and getattr(project, field) != changes[field]
    }
    if values:
        detail["values"] = values
    if "label_schema" in changes:
        detail["finding_keys_changed"] = finding_keys_change(project, changes["label_schema"])
    for field, value in changes.items():
        setattr(project, field, value)
    project.save(update_fields=list(changes))
    audit.record(
        action="project.update",
        actor=changed_by,
        target=project,
        project_id=project.pk,
        detail=detail,
    )
    return project


def may_manage_admin_role(project: Project, user: User | None) -> bool:
    """Whether ``user`` may grant or remove the admin role in ``project``: a project admin or a
    superuser (None: the system)."""
    if user is None or user.is_superuser:
        return True
    return Membership.objects.filter(project=project, user=user, role=Role.ADMIN).exists()


def _check_may_manage(project: Project, role: str, actor: User | None, verb: str) -> None:
    """Only a project admin (or a superuser) grants or removes the admin role: a lead manages
    the other roles, and must not make anyone (themselves included) an admin."""
    if role == Role.ADMIN and not may_manage_admin_role(project, actor):
        raise NotAllowed(f"Only a project admin can {verb} the admin role.")


def add_member(*, project: Project, user: User, role: str, added_by: User | None) -> Membership:
    """Give ``user`` ``role`` in ``project`` (idempotent). ``added_by`` None: the system (demo,
    commands); otherwise only a project admin or a superuser may grant the admin role."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; expected one of {Role.values}.")
    _check_may_manage(project, role, added_by, "grant")
    membership, _ = Membership.objects.get_or_create(project=project, user=user, role=role)
    audit.record(
        action="membership.add",
        actor=added_by,
        target=membership,
        project_id=project.pk,
        detail={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def grant_role(*, project: Project, username: str, role: str, granted_by: User) -> None:
    """Give the active user named ``username`` ``role`` in ``project``, as the member form does.

    Returns nothing and raises nothing that depends on whether the account exists: the form
    must not tell a lead which usernames exist (an unknown or inactive name is recorded in the
    audit trail as ``membership.add_unknown`` and otherwise ignored). A bad role, or the admin
    role from someone who is not a project admin, is refused whoever is named."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; expected one of {Role.values}.")
    _check_may_manage(project, role, granted_by, "grant")
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        audit.record(
            action="membership.add_unknown",
            actor=granted_by,
            project_id=project.pk,
            detail={"username": username, "role": role},
        )
        return
    add_member(project=project, user=user, role=role, added_by=granted_by)


def remove_member(*, membership: Membership, removed_by: User) -> None:
    """Remove a membership; only a project admin (or a superuser) removes an admin's."""
    _check_may_manage(membership.project, membership.role, removed_by, "remove")
    audit.record(
        action="membership.remove",
        actor=removed_by,
        target=membership,
        project_id=membership.project_id,
        detail={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()
