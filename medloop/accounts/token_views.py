"""``POST /api/auth/token/``: an API token (for scripts) for a username and password, and for
an account with a second factor its current code. Failed logins count towards the lockout like
the login page's (:mod:`medloop.accounts.lockout`); every outcome is audited; the token is
issued by :mod:`medloop.accounts.tokens`."""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.services import audit
from medloop.accounts.lockout import lockout_message
from medloop.accounts.second_factor import (
    CodeCheck,
    check_code,
    confirmed_device,
    needs_second_factor,
)
from medloop.accounts.tokens import issue_token
from medloop.throttling import TokenRateThrottle


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
        second_factor = needs_second_factor(user)
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
        device = confirmed_device(user)
        if device is None:
            raise TwoFactorRequired(
                "This account needs a second factor: set up an authenticator app at "
                "/account/two-factor/ first."
            )
        if not code:
            raise TwoFactorRequired(
                "This account has a second factor: send the current code as otp_token."
            )
        checked = check_code(device=device, code=code, request=http_request)
        if checked is CodeCheck.THROTTLED:
            raise TwoFactorRequired(
                "Too many wrong second-factor codes: wait a little before the next try."
            )
        if checked is not CodeCheck.VERIFIED:
            raise TwoFactorRequired("The second-factor code did not match.")
