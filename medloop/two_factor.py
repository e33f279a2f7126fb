"""The second factor (TOTP through django-otp): who needs it, and the gate for those who do.

A user needs it when they hold a role listed in MEDLOOP_REQUIRE_2FA_FOR in any project
(superusers hold every role), or when they have set up an authenticator app themselves. Until
their session is verified with a code, such a user gets only the two-factor page (to set the
app up, or to enter a code), the login and logout pages: other pages redirect there, and the
API answers 403 ``two_factor_required``. API tokens for them are issued only with a code
(``otp_token``, see medloop.views.TokenView)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from annotations.models import Membership

OPEN_PATHS = ("/login/", "/logout/", "/account/two-factor/", "/static/", "/health/")


def required_by_role(user: Any) -> bool:
    """True when the user holds a role that MEDLOOP_REQUIRE_2FA_FOR names."""
    roles = set(settings.MEDLOOP_REQUIRE_2FA_FOR)
    if not roles or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=roles).exists()


def confirmed_device(user: Any) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they have set one up."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def needs_second_factor(user: Any) -> bool:
    """True when this user must enter a code before using MedLoop."""
    if not user.is_authenticated:
        return False
    return required_by_role(user) or confirmed_device(user) is not None


def is_verified(request: HttpRequest) -> bool:
    verified = getattr(request.user, "is_verified", None)
    return bool(verified and verified())


class RequireTwoFactorMiddleware:
    """Holds browser sessions that need a second factor at the two-factor page until a code
    has been entered (after django_otp's OTPMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            not request.path.startswith(OPEN_PATHS)
            and request.user.is_authenticated
            and not is_verified(request)
            and needs_second_factor(request.user)
        ):
            return self.refusal(request)
        return self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse:
        page = reverse("two-factor")
        if request.path.startswith("/api/"):
            return JsonResponse(
                {
                    "error": "two_factor_required",
                    "message": f"Enter a code from your authenticator app at {page} first.",
                    "setup_url": page,
                },
                status=403,
            )
        return HttpResponseRedirect(f"{page}?{urlencode({'next': request.get_full_path()})}")
