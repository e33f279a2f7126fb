"""Parts of a project's JSON that other apps own. The loop keeps its settings in its own model
(``active_learning.LoopSettings``) and registers them here when it starts, so a project's JSON
still carries them while ``annotations`` imports nothing of the loop. A part's fields are read
only through the project's endpoints: a request that changes one is told where it is changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from annotations.models import Project


@dataclass(frozen=True)
class ProjectPart:
    """``fields``: the names the part adds; ``read(project)``: their values; ``changed_at``: the
    endpoint that changes them, a format string of ``project_pk``."""

    fields: tuple[str, ...]
    read: Callable[[Project], dict[str, Any]]
    changed_at: str


_PARTS: dict[str, ProjectPart] = {}


def register(name: str, part: ProjectPart) -> None:
    """Add (or replace) the part ``name``; idempotent, as an app's ``ready()`` may run twice."""
    _PARTS[name] = part


def parts() -> list[ProjectPart]:
    return list(_PARTS.values())


def read_parts(project: Project) -> dict[str, Any]:
    """Every registered part's fields of ``project``."""
    values: dict[str, Any] = {}
    for part in _PARTS.values():
        values.update(part.read(project))
    return values


def misplaced_fields(names: Iterable[str], project_pk: int | None) -> str | None:
    """Why a project request may not change ``names`` (the parts' fields among them, and where
    they are changed), or None when it names none."""
    found = []
    for part in _PARTS.values():
        named = [name for name in part.fields if name in set(names)]
        if named:
            where = part.changed_at.format(project_pk=project_pk if project_pk else "{id}")
            found.append(f"{', '.join(named)} cannot be changed here: change with PATCH {where}")
    return "; ".join(found) or None
