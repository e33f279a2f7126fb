"""API token authentication with a lifetime: a token older than ``MEDLOOP_TOKEN_MAX_AGE_DAYS``
is refused (401), so a leaked token does not work for ever. ``POST /api/auth/token/`` then
issues a new one (the old one is deleted)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_expired(token: Token) -> bool:
    days = settings.MEDLOOP_TOKEN_MAX_AGE_DAYS
    return days > 0 and token.created < timezone.now() - timedelta(days=days)


def current_token(user: User) -> Token:
    """The user's token, a new one when there is none or it has expired."""
    token, created = Token.objects.get_or_create(user=user)
    if not created and token_expired(token):
        token.delete()
        token = Token.objects.create(user=user)
    return token


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                "This API token has expired; ask POST /api/auth/token/ for a new one."
            )
        return user, token
