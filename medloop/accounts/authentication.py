"""API token authentication. A token is refused (401) when it is older than
``MEDLOOP_TOKEN_MAX_AGE_DAYS`` (a leaked token does not work for ever), and when its user must
use a second factor but the token was not issued with a verified code: a token issued before the
requirement started (a role granted, MEDLOOP_REQUIRE_2FA_FOR changed, an authenticator app set
up) is no way around it. ``POST /api/auth/token/`` issues a new one."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from medloop import two_factor
from medloop.accounts.tokens import issued_with_second_factor, token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                "This API token has expired; ask POST /api/auth/token/ for a new one."
            )
        if two_factor.needs_second_factor(user) and not issued_with_second_factor(token):
            raise exceptions.AuthenticationFailed(
                "This account needs a second factor and this API token was issued without "
                "one; ask POST /api/auth/token/ with otp_token for a new one."
            )
        return user, token
