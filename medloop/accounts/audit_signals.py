"""Logins, failed logins, lockouts and logouts go into the audit trail.

Receivers of Django's auth signals (and django-axes' lockout signal), connected in
``AccountsConfig.ready``. A failed login records the username tried, never the password."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from annotations.services import audit


def _http_request(request: Any) -> HttpRequest | None:
    """The Django request behind a DRF request (both carry the client address)."""
    return getattr(request, "_request", request)


def on_logged_in(sender: object, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record(action="auth.login", actor=user, target=user, request=_http_request(request))


def on_login_failed(
    sender: object, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")[:150]
    audit.record(
        action="auth.login_failed",
        request=_http_request(request),
        detail={"username": username},
    )


def on_logged_out(sender: object, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record(action="auth.logout", actor=user, target=user, request=_http_request(request))


def on_locked_out(
    sender: object, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    audit.record(
        action="auth.locked_out",
        request=_http_request(request),
        detail={"username": str(username or "")[:150]},
    )


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="medloop-audit-login")
    user_login_failed.connect(on_login_failed, dispatch_uid="medloop-audit-login-failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="medloop-audit-logout")
    user_locked_out.connect(on_locked_out, dispatch_uid="medloop-audit-locked-out")
