"""The loop's per-project settings: the promotion guard's and warm start's
(:class:`~active_learning.models.LoopSettings`) and the project's own loop fields (strategy,
retrain threshold, metric, auto-promote, training, model settings). Read with their defaults,
changed with checks, all together or nothing. A project without a row uses the defaults; the
row is created the first time a setting changes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from active_learning.models import LoopSettings
from annotations.models import Project
from annotations.permissions import LOOP_FIELDS
from annotations.services import audit, projects
from annotations.services.errors import InvalidInput

EDITABLE = (
    "min_validation_labels",
    "bootstrap_resamples",
    "bootstrap_confidence",
    "bootstrap_seed",
    "warm_start",
    "cold_start",
)
# The project's fields that belong to the loop (changed by the same roles, checked by
# :func:`annotations.services.projects.check_changes`).
PROJECT_FIELDS = tuple(sorted(LOOP_FIELDS))


def loop_settings(project: Project) -> LoopSettings:
    """The project's settings; an unsaved row with the defaults when none was ever changed."""
    found = LoopSettings.objects.filter(project=project).first()
    return found if found is not None else LoopSettings(project=project)


def _check(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(EDITABLE) - set(PROJECT_FIELDS)
    if unknown:
        known = ", ".join((*EDITABLE, *PROJECT_FIELDS))
        raise InvalidInput(f"unknown loop settings: {', '.join(sorted(unknown))}; known: {known}")
    for name in ("min_validation_labels", "bootstrap_resamples", "bootstrap_seed"):
        if name in changes and (
            not isinstance(changes[name], int) or isinstance(changes[name], bool)
        ):
            raise InvalidInput(f"{name} must be a whole number, got {changes[name]!r}")
        if name in changes and changes[name] < 0:
            raise InvalidInput(f"{name} must not be negative, got {changes[name]}")
    if "bootstrap_resamples" in changes and changes["bootstrap_resamples"] < 1000:
        raise InvalidInput("bootstrap_resamples must be at least 1000")
    if "bootstrap_confidence" in changes:
        value = changes["bootstrap_confidence"]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0.5 < value < 1:
            raise InvalidInput(f"bootstrap_confidence must lie in (0.5, 1), got {value!r}")
    if "warm_start" in changes and changes["warm_start"] not in LoopSettings.WarmStart.values:
        raise InvalidInput(
            f"warm_start must be one of {', '.join(LoopSettings.WarmStart.values)}, "
            f"got {changes['warm_start']!r}"
        )
    if "cold_start" in changes and changes["cold_start"] not in LoopSettings.ColdStart.values:
        raise InvalidInput(
            f"cold_start must be one of {', '.join(LoopSettings.ColdStart.values)}, "
            f"got {changes['cold_start']!r}"
        )


@transaction.atomic
def update_loop_settings(
    *, project: Project, changed_by: User | None = None, **changes: Any
) -> LoopSettings:
    """Change the project's loop settings: the guard's (:data:`EDITABLE`) and the project's
    loop fields (:data:`PROJECT_FIELDS`) in one transaction. Every value is checked before
    anything is stored, so a bad one (:class:`InvalidInput` or ``ValidationError``, a 400)
    leaves all of them as they were. Each part is audited (``loop.settings`` and
    ``project.update``)."""
    _check(changes)
    guard = {name: value for name, value in changes.items() if name in EDITABLE}
    fields = {name: value for name, value in changes.items() if name in PROJECT_FIELDS}
    projects.check_changes(project=project, changes=fields)
    settings, _ = LoopSettings.objects.select_for_update().get_or_create(project=project)
    if fields:
        projects.update_project(project=project, changed_by=changed_by, **fields)
    if guard:
        for name, value in guard.items():
            setattr(settings, name, value)
        settings.save()
        audit.record(
            action="loop.settings",
            actor=changed_by,
            target=project,
            project_id=project.pk,
            detail={name: guard[name] for name in sorted(guard)},
        )
    return settings
