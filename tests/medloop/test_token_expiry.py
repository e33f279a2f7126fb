"""API tokens expire after MEDLOOP_TOKEN_MAX_AGE_DAYS; the token endpoint then issues a new one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@override_settings(MEDLOOP_TOKEN_MAX_AGE_DAYS=30)
def test_an_old_token_is_refused_and_the_endpoint_issues_a_new_one(make_user):
    user = make_user("scripter")
    old = Token.objects.create(user=user)
    assert _client(old.key).get("/api/projects/").status_code == 200
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=31))

    refused = _client(old.key).get("/api/projects/")
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]

    issued = APIClient().post(
        "/api/auth/token/", {"username": "scripter", "password": "correct horse battery"}
    )
    assert issued.status_code == 200
    new_key = issued.json()["token"]
    assert new_key != old.key
    assert not Token.objects.filter(key=old.key).exists()
    assert _client(new_key).get("/api/projects/").status_code == 200


@override_settings(MEDLOOP_TOKEN_MAX_AGE_DAYS=0)
def test_a_zero_lifetime_means_tokens_never_expire(make_user):
    token = Token.objects.create(user=make_user("scripter"))
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(days=3650))
    assert _client(token.key).get("/api/projects/").status_code == 200
