"""Recording the audit trail. Every read or write of case data goes through ``record``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.http import HttpRequest

from annotations.models import AuditEvent


def client_address(request: HttpRequest | None) -> tuple[str | None, str]:
    """Return (ip, user agent) of a request; (None, "") without one (commands, tasks)."""
    if request is None:
        return None, ""
    ip = request.META.get("REMOTE_ADDR") or None
    agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    return ip, agent


def record(
    *,
    action: str,
    actor: User | AnonymousUser | None = None,
    target: models.Model | None = None,
    project_id: int | None = None,
    request: HttpRequest | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event: ``actor`` did ``action`` to ``target`` (in ``project_id``).

    ``request`` supplies the client address; ``detail`` is free JSON (never identifiers)."""
    user = actor if actor is not None and actor.is_authenticated else None
    ip, agent = client_address(request)
    return AuditEvent.objects.create(
        actor=user,
        actor_username=user.get_username() if user is not None else "",
        action=action,
        project_id=project_id,
        object_type=target._meta.label if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        ip_address=ip,
        user_agent=agent,
        detail=detail or {},
    )
