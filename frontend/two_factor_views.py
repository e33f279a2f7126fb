"""The two-factor page: set up an authenticator app (TOTP), then enter its codes.

A user without a confirmed app sees a new secret (as text and as an otpauth:// link) and
confirms it with a first code; a user with one enters a code. A correct code verifies the
session (django_otp.login). Each outcome is an audit event."""

from __future__ import annotations

from base64 import b32encode
from typing import cast

import django_otp
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_totp.models import TOTPDevice

from annotations.services import audit
from medloop import two_factor


def _pending_device(user: object) -> TOTPDevice:
    """The user's unconfirmed app being set up (made on first visit, reused until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    return device


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


@login_required
def two_factor_page(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)  # login_required
    device = two_factor.confirmed_device(user)
    setting_up = device is None
    if device is None:
        device = _pending_device(user)
    error = ""
    status = 200
    if request.method == "POST":
        code = request.POST.get("code", "").strip().replace(" ", "")
        allowed, _ = device.verify_is_allowed()
        if allowed and code.isdigit() and device.verify_token(code):
            if setting_up:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                audit.record(action="auth.2fa_enrolled", actor=user, target=user, request=request)
            django_otp.login(request, device)
            audit.record(action="auth.2fa_verified", actor=user, target=user, request=request)
            return HttpResponseRedirect(_next_url(request))
        audit.record(action="auth.2fa_failed", actor=user, target=user, request=request)
        error = (
            "That code did not match. Check the time on your phone and enter the current code."
            if allowed
            else "Too many wrong codes: wait a little before the next try."
        )
        status = 400
    secret = b32encode(device.bin_key).decode()
    context = {
        "setting_up": setting_up,
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "config_url": device.config_url if setting_up else "",
        "required": two_factor.required_by_role(user),
        "error": error,
        "next": _next_url(request),
    }
    return render(request, "frontend/two_factor.html", context, status=status)
