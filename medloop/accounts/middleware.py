"""The gate of the second factor for browser sessions and API requests made with a session:
see :mod:`medloop.accounts.second_factor`."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from medloop.accounts.second_factor import is_verified, needs_second_factor

OPEN_PATHS = ("/login/", "/logout/", "/account/two-factor/", "/static/", "/health/")


class RequireTwoFactorMiddleware:
    """Holds sessions that need a second factor at the two-factor page until a code has been
    entered (after django_otp's OTPMiddleware): pages redirect there, the API answers 403."""

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
