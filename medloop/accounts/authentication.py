"""API token authentication. A token is refused (401) when it is older than
``MEDLOOP_TOKEN_MAX_AGE_DAYS`` (a leaked token does not work for ever), and when its user must
use a second factor but the token was not issued with a verified code: a token issued before the
requirement started (a role granted, MEDLOOP_REQUIRE_2FA_FOR changed, an authenticator app set
up) is no way around it. ``POST /api/auth/token/`` issues a new one.

Every request reads the token, its user and what the second-factor rule needs (a confirmed
authenticator app, the token's grant, a role that requires a code) in one query: nothing is
cached between requests, so a revoked token, a deactivated user or a new requirement applies to
the very next request (tests/medloop/test_token_lookup.py). The query is compiled once per
process (:mod:`medloop.compiled_queries`); building and compiling it afresh was most of the
authentication's Python time (bench/request_profile.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from annotations.models import Membership
from medloop.accounts.models import TokenGrant
from medloop.accounts.second_factor import needs_code
from medloop.accounts.tokens import token_expired
from medloop.compiled_queries import CompiledQuery


def _token_query(*, key: str, roles: list[str] | None = None) -> QuerySet[Token]:
    """The token ``key`` with its user and the second-factor facts (``role_needs_code`` only
    when ``roles`` is given)."""
    facts: dict[str, Exists] = {
        "has_device": Exists(TOTPDevice.objects.filter(user=OuterRef("user"), confirmed=True)),
        "with_second_factor": Exists(
            TokenGrant.objects.filter(token=OuterRef("pk"), second_factor=True)
        ),
    }
    if roles is not None:
        facts["role_needs_code"] = Exists(
            Membership.objects.filter(user=OuterRef("user"), role__in=roles)
        )
    return Token.objects.select_related("user").annotate(**facts).filter(key=key)[:1]


# Compiled once per shape (the number of roles MEDLOOP_REQUIRE_2FA_FOR names is part of it).
_TOKEN = CompiledQuery(_token_query)
# The longest key a Token holds: a longer one (or one the database cannot take) is no token.
KEY_LENGTH = Token._meta.get_field("key").max_length or 40


def token_with_facts(key: str) -> Token | None:
    """The token with its user, annotated with ``has_device`` (a confirmed authenticator app),
    ``with_second_factor`` (issued with a verified code) and ``role_needs_code`` (holds a role
    MEDLOOP_REQUIRE_2FA_FOR names; False when it names none): one query, read afresh on every
    call."""
    if not key or len(key) > KEY_LENGTH or "\x00" in key:
        return None
    roles = list(settings.MEDLOOP_REQUIRE_2FA_FOR)
    found = _TOKEN.fetch(key=key, roles=roles) if roles else _TOKEN.fetch(key=key)
    token: Token | None = found[0] if found else None
    if token is not None and not roles:
        token.role_needs_code = False  # type: ignore[attr-defined]
    return token


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        token = token_with_facts(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                "This API token has expired; ask POST /api/auth/token/ for a new one."
            )
        # The second-factor rule, from the facts read with the token.
        needed = needs_code(
            user,
            has_device=token.has_device,  # type: ignore[attr-defined]
            in_required_role=token.role_needs_code,  # type: ignore[attr-defined]
        )
        if needed and not token.with_second_factor:  # type: ignore[attr-defined]
            raise exceptions.AuthenticationFailed(
                "This account needs a second factor and this API token was issued without "
                "one; ask POST /api/auth/token/ with otp_token for a new one."
            )
        return user, token
