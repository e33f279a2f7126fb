"""API tokens: issued (with or without a verified second factor), refused when expired or
when their user now needs a second factor they were not issued with, revoked on password
change, deactivation, and when a second factor becomes required."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from medloop.accounts.models import TokenGrant


def token_expired(token: Token) -> bool:
    days = settings.MEDLOOP_TOKEN_MAX_AGE_DAYS
    return days > 0 and token.created < timezone.now() - timedelta(days=days)


def issued_with_second_factor(token: Token) -> bool:
    grant = TokenGrant.objects.filter(token=token).first()
    return bool(grant and grant.second_factor)


@transaction.atomic
def issue_token(user: Any, *, second_factor: bool) -> Token:
    """The user's token: the current one while it is valid and was issued at least as strongly
    (a code was verified for it when one is verified now); else a new one."""
    token = Token.objects.select_for_update().filter(user=user).first()
    strong_enough = token is not None and (issued_with_second_factor(token) or not second_factor)
    if token is not None and strong_enough and not token_expired(token):
        return token
    if token is not None:
        token.delete()
    token = Token.objects.create(user=user)
    TokenGrant.objects.create(token=token, second_factor=second_factor)
    return token


def revoke_tokens(user: Any, *, unless_second_factor: bool = False) -> int:
    """Delete the user's tokens (those issued with a second factor stay when
    ``unless_second_factor``); returns how many were deleted."""
    tokens = Token.objects.filter(user=user)
    if unless_second_factor:
        tokens = tokens.exclude(grant__second_factor=True)
    count = tokens.count()
    tokens.delete()
    return count
