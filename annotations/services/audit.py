"""Recording the audit trail. Every read or write of case data goes through ``record``.

Inside ``batched()`` the events of a request are kept and written by one INSERT when the block
ends, inside the caller's transaction: an event is written with the work it records or not at
all, never on a commit of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.http import HttpRequest

from annotations.models import AuditEvent
from medloop import request_client
from medloop.compiled_queries import CompiledInsert

_pending = threading.local()
# A request's events in one INSERT ... VALUES, not bulk_create's UNNEST (medloop.compiled_queries).
_INSERT = CompiledInsert(AuditEvent)


@contextmanager
def batched() -> Iterator[None]:
    """Keep the events recorded in the block and write them in one INSERT as it ends; use it
    inside the transaction that does the work (``with transaction.atomic(), audit.batched():``).
    An exception discards them: the transaction that would have held them rolls back."""
    outer = getattr(_pending, "events", None)
    if outer is not None:  # already batching: the outermost block writes
        yield
        return
    events: list[AuditEvent] = []
    _pending.events = events
    try:
        yield
    except BaseException:
        _pending.events = None
        raise
    _pending.events = None
    if events:
        _INSERT.insert(events)


def client_address(request: HttpRequest | None) -> tuple[str | None, str]:
    """Return (ip, user agent) of ``request``; without one, of the request being served
    (``medloop.request_client``), and (None, "") outside a request (commands, tasks)."""
    if request is None:
        return request_client.current_client()
    return request_client.client_of(request)


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

    The client's address and user agent come from ``request``, else from the request being
    served (every event of a web request has them); ``detail`` is free JSON (never
    identifiers)."""
    user = actor if actor is not None and actor.is_authenticated else None
    ip, agent = client_address(request)
    event = AuditEvent(
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
    pending = getattr(_pending, "events", None)
    if pending is not None:
        pending.append(event)
    else:
        event.save(force_insert=True)
    return event
