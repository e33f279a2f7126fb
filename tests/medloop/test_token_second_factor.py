"""API tokens are no way around the second factor: a token of a user who must use one works
only when it was issued with a verified code, in whichever order the token, the requirement
and the enrolment came; tokens are revoked on password change and deactivation."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.services import projects
from tests.medloop.test_two_factor import PASSWORD, code_for

pytestmark = pytest.mark.django_db
LEADS_AND_ADMINS = override_settings(MEDLOOP_REQUIRE_2FA_FOR=["lead", "admin"])


def _token(username: str, code: str | None = None) -> tuple[int, dict]:
    body = {"username": username, "password": PASSWORD}
    if code:
        body["otp_token"] = code
    answer = APIClient().post("/api/auth/token/", body)
    return answer.status_code, answer.json()


def _with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _lead_reads(key: str, project) -> list[int]:
    """What a lead does with a token: the audit trail, an export, the review queue."""
    client = _with(key)
    return [
        client.get(f"/api/projects/{project.pk}/audit-events/").status_code,
        client.get(f"/api/projects/{project.pk}/exports/findings-csv/").status_code,
        client.get(f"/api/projects/{project.pk}/review-queue/").status_code,
    ]


def test_a_token_issued_before_the_requirement_is_refused_once_it_starts(project, member):
    member("lena", "lead")
    status, body = _token("lena")
    assert status == 200
    assert _lead_reads(body["token"], project) == [200, 200, 200]

    with LEADS_AND_ADMINS:
        refused = _with(body["token"]).get(f"/api/projects/{project.pk}/audit-events/")
        assert refused.status_code == 401
        assert "second factor" in refused.json()["message"]
        assert _lead_reads(body["token"], project) == [401, 401, 401]


@LEADS_AND_ADMINS
def test_a_token_issued_before_a_role_that_needs_a_second_factor_is_revoked(
    project, member, make_user
):
    annotator = member("ann", "annotator")
    status, body = _token("ann")
    assert status == 200 and _with(body["token"]).get("/api/projects/").status_code == 200

    projects.add_member(project=project, user=annotator, role="lead", added_by=None)

    assert not Token.objects.filter(key=body["token"]).exists()
    assert _lead_reads(body["token"], project) == [401, 401, 401]


def test_a_token_issued_before_enrolment_is_refused_and_one_issued_with_a_code_works(
    project, member
):
    lead = member("lena", "lead")
    _, before = _token("lena")
    device = TOTPDevice.objects.create(user=lead, name="phone", confirmed=True)

    assert _lead_reads(before["token"], project) == [401, 401, 401]
    status, refused = _token("lena")
    assert status == 403 and "otp_token" in refused["message"]

    status, issued = _token("lena", code_for(device))
    assert status == 200 and issued["token"] != before["token"]
    assert _lead_reads(issued["token"], project) == [200, 200, 200]


@LEADS_AND_ADMINS
def test_with_the_requirement_in_place_a_token_needs_an_app_and_a_code(project, member):
    lead = member("lena", "lead")
    status, body = _token("lena")
    assert status == 403 and "set up an authenticator app" in body["message"]

    device = TOTPDevice.objects.create(user=lead, name="phone", confirmed=True)
    status, issued = _token("lena", code_for(device))
    assert status == 200
    assert _lead_reads(issued["token"], project) == [200, 200, 200]


def test_a_password_change_or_deactivation_revokes_the_token(make_user):
    user = make_user("scripter")
    _, first = _token("scripter")
    user.set_password("another long passphrase")
    user.save()
    assert _with(first["token"]).get("/api/projects/").status_code == 401

    user.set_password(PASSWORD)
    user.save()
    _, second = _token("scripter")
    assert _with(second["token"]).get("/api/projects/").status_code == 200
    user.is_active = False
    user.save()
    assert not Token.objects.filter(user=user).exists()
    assert _with(second["token"]).get("/api/projects/").status_code == 401
