"""The loop's per-project settings (:class:`~active_learning.models.LoopSettings`): read with
their defaults, change with checks. A project without a row uses the defaults; the row is
created the first time a setting changes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from active_learning.models import LoopSettings
from annotations.models import Project
from annotations.services import audit
from annotations.services.errors import InvalidInput

EDITABLE = (
    "min_validation_labels",
    "bootstrap_resamples",
    "bootstrap_confidence",
    "bootstrap_seed",
    "warm_start",
    "cold_start",
)


def loop_settings(project: Project) -> LoopSettings:
    """The project's settings; an unsaved row with the defaults when none was ever changed."""
    found = LoopSettings.objects.filter(project=project).first()
    return found if found is not None else LoopSettings(project=project)


def _check(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(
            f"unknown loop settings: {', '.join(sorted(unknown))}; known: {', '.join(EDITABLE)}"
        )
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
    """Change the project's loop settings (:data:`EDITABLE`); bad values raise
    :class:`InvalidInput` (400). The change is audited."""
    _check(changes)
    settings, _ = LoopSettings.objects.select_for_update().get_or_create(project=project)
    for name, value in changes.items():
        setattr(settings, name, value)
    settings.save()
    audit.record(
        action="loop.settings",
        actor=changed_by,
        target=project,
        project_id=project.pk,
        detail={name: changes[name] for name in sorted(changes)},
    )
    return settings
