"""What a locked-out login gets (django-axes' AXES_LOCKOUT_CALLABLE): the login page with a
clear message, or the API's JSON error shape; 429 with Retry-After either way."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def lockout_message() -> str:
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return (
        f"Too many failed logins for this username from your address: logging in is locked "
        f"for {minutes} minutes. Try again later, or ask an admin to unlock the account."
    )


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    message = lockout_message()
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": "locked_out", "message": message}, status=429)
    else:
        context = {
            "form": AuthenticationForm(request),
            "lockout_message": message,
            "next": request.POST.get("next", ""),
        }
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = retry_after
    return response
