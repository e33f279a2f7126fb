"""Project-level endpoints: health check and API tokens."""

from __future__ import annotations

import sys
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.services import audit
from medloop import two_factor
from medloop.accounts.tokens import issue_token
from medloop.api_errors import RETRY_AFTER_SECONDS, UNAVAILABLE, unavailable_body
from medloop.lockout import lockout_message
from medloop.throttling import TokenRateThrottle


def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise (for load balancers)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok"})


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )
    otp_token = serializers.CharField(
        required=False,
        max_length=12,
        help_text="the current code of the user's authenticator app, when they have one",
    )


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class LockedOut(exceptions.APIException):
    status_code = 429
    default_code = "locked_out"


class TwoFactorRequired(exceptions.PermissionDenied):
    default_code = "two_factor_required"


@extend_schema(
    tags=["auth"], request=TokenRequestSerializer, responses={200: TokenResponseSerializer}
)
class TokenView(APIView):
    """Exchange username and password (and, for accounts with a second factor, the current
    authenticator code as ``otp_token``) for an API token (for scripts). Failed logins count
    towards the lockout like the login page's; every outcome is audited."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenRateThrottle]

    def post(self, request: Request) -> Response:
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # The Django request, so that django-axes' lockout marks reach its middleware.
        http_request = request._request
        credentials = {
            "username": body.validated_data["username"],
            "password": body.validated_data["password"],
        }
        user = authenticate(http_request, **credentials)
        if user is None:
            if getattr(http_request, "axes_locked_out", False):
                raise LockedOut(lockout_message())
            raise exceptions.ValidationError(
                {"non_field_errors": ["Unable to log in with provided credentials."]}
            )
        second_factor = two_factor.needs_second_factor(user)
        if second_factor:
            self._check_second_factor(http_request, user, body.validated_data.get("otp_token"))
        reset = getattr(AxesProxyHandler.get_implementation(), "reset_user_attempts", None)
        if settings.AXES_ENABLED and settings.AXES_RESET_ON_SUCCESS and reset is not None:
            reset(http_request, {"username": credentials["username"]})
        token = issue_token(user, second_factor=second_factor)
        audit.record(
            action="auth.login",
            actor=user,
            target=user,
            request=http_request,
            detail={"method": "token"},
        )
        return Response({"token": token.key})

    @staticmethod
    def _check_second_factor(http_request: HttpRequest, user: Any, code: str | None) -> None:
        device = two_factor.confirmed_device(user)
        if device is None:
            raise TwoFactorRequired(
                "This account needs a second factor: set up an authenticator app at "
                "/account/two-factor/ first."
            )
        if not code:
            raise TwoFactorRequired(
                "This account has a second factor: send the current code as otp_token."
            )
        if not device.verify_token(code.strip()):
            audit.record(action="auth.2fa_failed", actor=user, target=user, request=http_request)
            raise TwoFactorRequired("The second-factor code did not match.")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "not_found", "message": f"No API endpoint at {request.path}."}, status=404
        )
    return defaults.page_not_found(request, exception)


def favicon(request: HttpRequest) -> HttpResponse:
    """MedLoop's icon, for pages that name none (Django admin). A temporary redirect: the icon's
    static address may change (a hashed file name) without browsers keeping a stale one."""
    return HttpResponseRedirect(static("frontend/favicon.svg"))


DEFAULT_REFUSAL = "Your roles do not allow this page."


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403: JSON under /api/; elsewhere a page that says why (the refusal's own message, which
    names the role needed) and links back home and to the page the user came from."""
    reason = str(exception) or DEFAULT_REFUSAL
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "permission_denied", "message": reason}, status=403)
    referer = request.headers.get("Referer", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    back = referer if safe and referer != request.build_absolute_uri() else ""
    return render(request, "frontend/403.html", {"reason": reason, "back": back}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """500, or 503 when the database went away (restart, failover): try again shortly."""
    if isinstance(sys.exc_info()[1], UNAVAILABLE):
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(unavailable_body(), status=503)
        else:
            response = HttpResponse(
                "MedLoop's database is unavailable right now; try again in a moment.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "server_error", "message": "Internal error; it has been logged."},
            status=500,
        )
    return defaults.server_error(request)
