"""Helpers shared by the management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from annotations.models import Project


def project_from_argument(key: str) -> Project:
    """The project named by a command-line value: its id, or else its exact name."""
    project = (
        Project.objects.filter(pk=int(key)).first()
        if key.isdigit() and len(key) < 19
        else Project.objects.filter(name=key).first()
    )
    if project is None:
        raise CommandError(f"No project {key!r} (give its id or exact name).")
    return project
