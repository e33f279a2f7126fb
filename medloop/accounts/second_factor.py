"""The second factor (TOTP through django-otp), written once: who needs it, whether a session
has given it, and checking a code. The gate (:mod:`medloop.accounts.middleware`), the token
endpoint, the token authentication and the two-factor page all ask here.

A user needs it when they hold a role listed in MEDLOOP_REQUIRE_2FA_FOR in any project
(superusers hold every role), or when they have set up an authenticator app themselves. Until
their session is verified with a code, such a user gets only the two-factor page (to set the
app up, or to enter a code), the login and logout pages: other pages redirect there, and the
API answers 403 ``two_factor_required``. API tokens for them are issued only with a code
(``otp_token``, see :mod:`medloop.accounts.token_views`)."""

from __future__ import annotations

import enum
from typing import Any

import django_otp
from django.conf import settings
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from annotations.models import Membership
from annotations.services import audit


def holds_required_role(user: Any) -> bool:
    """True when the user is a member in a role that MEDLOOP_REQUIRE_2FA_FOR names."""
    roles = list(settings.MEDLOOP_REQUIRE_2FA_FOR)
    return bool(roles) and Membership.objects.filter(user=user, role__in=roles).exists()


def required_by_role(user: Any) -> bool:
    """True when the user holds a role that MEDLOOP_REQUIRE_2FA_FOR names (a superuser holds
    every role)."""
    if not user.is_authenticated:
        return False
    superuser = bool(settings.MEDLOOP_REQUIRE_2FA_FOR) and user.is_superuser
    return superuser or holds_required_role(user)


def confirmed_device(user: Any) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they have set one up."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def needs_code(user: Any, *, has_device: bool, in_required_role: bool) -> bool:
    """The rule, from facts already read: an authenticator app set up, superuser status while
    some role requires a code, or a role that requires one. Token authentication reads the
    facts with the token in one query; :func:`needs_second_factor` reads them here."""
    superuser = bool(settings.MEDLOOP_REQUIRE_2FA_FOR) and user.is_superuser
    return has_device or superuser or in_required_role


def needs_second_factor(user: Any) -> bool:
    """True when this user must enter a code before using MedLoop."""
    if not user.is_authenticated:
        return False
    return needs_code(
        user,
        has_device=confirmed_device(user) is not None,
        in_required_role=holds_required_role(user),
    )


def is_verified(request: HttpRequest) -> bool:
    """Whether this session has given a code (django_otp's OTPMiddleware marks the user)."""
    verified = getattr(request.user, "is_verified", None)
    return bool(verified and verified())


class CodeCheck(enum.Enum):
    """What :func:`check_code` found."""

    VERIFIED = "verified"
    WRONG = "wrong"  # not the current code (or not a code at all)
    THROTTLED = "throttled"  # too many wrong codes lately: django-otp waits before the next


def check_code(*, device: TOTPDevice, code: str | None, request: HttpRequest) -> CodeCheck:
    """Check ``code`` (spaces ignored) against ``device`` under django-otp's throttle, which
    grows the wait after each wrong code. A wrong or throttled code is the audit event
    ``auth.2fa_failed``."""
    text = (code or "").strip().replace(" ", "")
    allowed, _ = device.verify_is_allowed()
    if allowed and text.isdigit() and device.verify_token(text):
        return CodeCheck.VERIFIED
    user = device.user
    audit.record(action="auth.2fa_failed", actor=user, target=user, request=request)
    return CodeCheck.WRONG if allowed else CodeCheck.THROTTLED


def verify_session(request: HttpRequest, device: TOTPDevice) -> None:
    """Mark the browser session as having given a code from ``device`` (audited)."""
    django_otp.login(request, device)
    user = device.user
    audit.record(action="auth.2fa_verified", actor=user, target=user, request=request)
