"""The two-factor page: set up an authenticator app (TOTP), then enter its codes.

Setting an app up is a change to how the account is protected, so a session alone is not
enough (a borrowed, unattended or stolen session could otherwise bind the attacker's phone).
The user first re-enters their password; only then is a new secret made, bound to this session
and shown (as text and as an otpauth:// link), and it is confirmed with a first code within
REAUTH_SECONDS of the password. A user with a confirmed app just enters a code. A correct code
verifies the session (django_otp.login). Each outcome is an audit event."""

from __future__ import annotations

import time
from base64 import b32encode
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_totp.models import TOTPDevice

from annotations.services import audit
from medloop.accounts.second_factor import (
    CodeCheck,
    check_code,
    confirmed_device,
    required_by_role,
    verify_session,
)

# How long after re-entering the password the new app may be confirmed.
REAUTH_SECONDS = 300
_SESSION_KEY = "medloop_2fa_setup"  # {"device": id, "at": epoch seconds}


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def _setup_device(request: HttpRequest, user: User) -> TOTPDevice | None:
    """The app being set up in this session, if the password was re-entered recently."""
    state: dict[str, Any] = request.session.get(_SESSION_KEY) or {}
    if time.time() - float(state.get("at", 0)) > REAUTH_SECONDS:
        return None
    return TOTPDevice.objects.filter(pk=state.get("device"), user=user, confirmed=False).first()


def _start_setup(request: HttpRequest, user: User) -> TOTPDevice:
    """A new secret for this session: any earlier unconfirmed one (which someone else may have
    seen) is thrown away."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    request.session[_SESSION_KEY] = {"device": device.pk, "at": time.time()}
    return device


def _password_page(
    request: HttpRequest, user: User, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "setting_up": True,
        "reauth": True,
        "required": required_by_role(user),
        "error": error,
        "next": _next_url(request),
    }
    return render(request, "frontend/two_factor.html", context, status=status)


def _setup(request: HttpRequest, user: User) -> HttpResponse:
    """Setting up an app: password first, then the new secret and its first code."""
    if request.method == "POST" and "password" in request.POST:
        password = request.POST.get("password", "")
        if authenticate(request, username=user.get_username(), password=password) is None:
            audit.record(
                action="auth.2fa_setup_password_failed", actor=user, target=user, request=request
            )
            return _password_page(request, user, "That password is not right.", status=400)
        _start_setup(request, user)
        audit.record(action="auth.2fa_setup_started", actor=user, target=user, request=request)
        page = reverse("two-factor")
        return HttpResponseRedirect(f"{page}?{urlencode({'next': _next_url(request)})}")
    device = _setup_device(request, user)
    if device is None:
        error = ""
        if request.method == "POST":
            error = "Enter your password again before setting up the app."
        return _password_page(request, user, error, status=400 if error else 200)
    error, status = "", 200
    if request.method == "POST":
        checked = check_code(device=device, code=request.POST.get("code"), request=request)
        if checked is CodeCheck.VERIFIED:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            request.session.pop(_SESSION_KEY, None)
            audit.record(action="auth.2fa_enrolled", actor=user, target=user, request=request)
            verify_session(request, device)
            return HttpResponseRedirect(_next_url(request))
        error, status = _code_error(checked), 400
    secret = b32encode(device.bin_key).decode()
    context = {
        "setting_up": True,
        "reauth": False,
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "config_url": device.config_url,
        "required": required_by_role(user),
        "error": error,
        "next": _next_url(request),
    }
    return render(request, "frontend/two_factor.html", context, status=status)


def _code_error(checked: CodeCheck) -> str:
    if checked is CodeCheck.THROTTLED:
        return "Too many wrong codes: wait a little before the next try."
    return "That code did not match. Check the time on your phone and enter the current code."


@login_required
def two_factor_page(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)  # login_required
    device = confirmed_device(user)
    if device is None:
        return _setup(request, user)
    error = ""
    status = 200
    if request.method == "POST":
        checked = check_code(device=device, code=request.POST.get("code"), request=request)
        if checked is CodeCheck.VERIFIED:
            verify_session(request, device)
            return HttpResponseRedirect(_next_url(request))
        error, status = _code_error(checked), 400
    context = {"setting_up": False, "error": error, "next": _next_url(request)}
    return render(request, "frontend/two_factor.html", context, status=status)
