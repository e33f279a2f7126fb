"""The token look-up is compiled once per process (issue 20), and still read afresh on every
request: a change made in the database, even one that bypasses the models' signals, applies to
the very next request of a process that has just served the token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Membership
from medloop.accounts import authentication
from medloop.accounts.models import TokenGrant

pytestmark = pytest.mark.django_db
LEADS_AND_ADMINS = override_settings(MEDLOOP_REQUIRE_2FA_FOR=["lead", "admin"])


def _status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/projects/").status_code


def _served(make_user: Callable[..., Any], name: str) -> Token:
    """A token that has just been served (its compiled query run, with this very key)."""
    token = Token.objects.create(user=make_user(name))
    assert _status(token.key) == 200
    return token


@pytest.mark.both_backends
@pytest.mark.parametrize("roles", [[], ["lead"], ["lead", "admin", "reviewer"]])
def test_the_compiled_token_query_is_the_querysets_sql(roles: list[str]) -> None:
    for key in ("a" * 40, "0123456789abcdef0123456789abcdef01234567", "x"):
        values = {"key": key, "roles": roles} if roles else {"key": key}
        fresh = authentication._token_query(**values).query.sql_with_params()
        assert authentication._TOKEN.sql_with_params(**values) == fresh


@pytest.mark.both_backends
def test_the_facts_are_read_with_the_token_in_one_query(project, member) -> None:
    lead = member("lena", "lead")
    token = Token.objects.create(user=lead)
    TokenGrant.objects.create(token=token, second_factor=True)
    TOTPDevice.objects.create(user=lead, name="phone", confirmed=True)
    for required, in_role in ((["lead", "admin"], True), (["admin"], False), ([], False)):
        with override_settings(MEDLOOP_REQUIRE_2FA_FOR=required):
            with CaptureQueriesContext(connection) as queries:
                found = authentication.token_with_facts(token.key)
            assert len(queries) == 1
            assert found is not None and found.user == lead
            facts = (found.has_device, found.with_second_factor, found.role_needs_code)  # type: ignore[attr-defined]
            assert facts == (True, True, in_role)
    assert authentication.token_with_facts("f" * 40) is None


def test_a_token_deleted_in_the_database_stops_working_at_once(make_user) -> None:
    token = _served(make_user, "scripter")
    Token.objects.filter(pk=token.pk).delete()
    assert _status(token.key) == 401


def test_a_user_deactivated_without_signals_is_refused_at_once(make_user) -> None:
    token = _served(make_user, "scripter")
    # A queryset update sends no signal, so nothing revokes the token: the look-up must refuse.
    type(token.user).objects.filter(pk=token.user_id).update(is_active=False)
    assert Token.objects.filter(pk=token.pk).exists()
    assert _status(token.key) == 401
    type(token.user).objects.filter(pk=token.user_id).update(is_active=True)
    assert _status(token.key) == 200


@override_settings(MEDLOOP_TOKEN_MAX_AGE_DAYS=30)
def test_a_token_that_ages_past_the_limit_stops_working_at_once(make_user) -> None:
    token = _served(make_user, "scripter")
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(days=31))
    assert _status(token.key) == 401


def test_an_authenticator_app_set_up_elsewhere_applies_at_once(make_user) -> None:
    token = _served(make_user, "scripter")
    TOTPDevice.objects.bulk_create([TOTPDevice(user=token.user, name="phone", confirmed=True)])
    assert _status(token.key) == 401  # issued without a code
    TokenGrant.objects.bulk_create([TokenGrant(token=token, second_factor=True)])
    assert _status(token.key) == 200


@LEADS_AND_ADMINS
def test_a_role_that_needs_a_code_applies_at_once_even_without_signals(project, member) -> None:
    annotator = member("ann", "annotator")
    token = Token.objects.create(user=annotator)
    assert _status(token.key) == 200
    # bulk_create sends no post_save: the token is not revoked, the look-up must refuse it.
    Membership.objects.bulk_create([Membership(project=project, user=annotator, role="lead")])
    assert _status(token.key) == 401
    Membership.objects.filter(user=annotator, role="lead").delete()
    assert _status(token.key) == 200


@pytest.mark.parametrize("key", ["k" * 41, "abc\x00def"])
def test_a_key_no_token_can_have_is_refused_without_a_query(key: str) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert authentication.token_with_facts(key) is None
    assert len(queries) == 0
