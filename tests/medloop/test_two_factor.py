"""The optional second factor (TOTP): required for the roles MEDLOOP_REQUIRE_2FA_FOR names,
set up and verified with real codes computed from the device's key."""

from __future__ import annotations

import re
from base64 import b32decode

import pytest
from django.test import Client, override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from annotations.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
LEADS_AND_ADMINS = override_settings(MEDLOOP_REQUIRE_2FA_FOR=["lead", "admin"])


def code_for(device: TOTPDevice) -> str:
    """The code an authenticator app shows now for this device's key."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def actions() -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith="auth.2fa").values_list("action", flat=True)
    )


@LEADS_AND_ADMINS
def test_a_lead_sets_up_an_app_and_gets_nothing_else_until_verified(
    client, project, member, advance_clock
):
    client.force_login(member("lena", "lead"))
    dashboard = f"/projects/{project.pk}/dashboard/"
    sent = client.get(dashboard)
    assert sent.status_code == 302 and sent.url.startswith("/account/two-factor/?next=")
    api = client.get(f"/api/projects/{project.pk}/audit-events/")
    assert api.status_code == 403 and api.json()["error"] == "two_factor_required"
    assert client.get("/").status_code == 302

    asked = client.get(sent.url)
    assert asked.status_code == 200 and b'name="password"' in asked.content
    assert b"totp-secret" not in asked.content
    reauth = client.post("/account/two-factor/", {"password": PASSWORD, "next": dashboard})
    assert reauth.status_code == 302
    setup = client.get(reauth.url)
    assert setup.status_code == 200 and b"authenticator app" in setup.content
    shown = re.search(rb'id="totp-secret">([A-Z2-7 ]+)<', setup.content).group(1)
    device = TOTPDevice.objects.get(user__username="lena", confirmed=False)
    assert b32decode(shown.replace(b" ", b"")) == device.bin_key
    assert b"otpauth://totp/MedLoop%3Alena?secret=" in setup.content

    wrong = client.post("/account/two-factor/", {"code": "000000", "next": dashboard})
    assert wrong.status_code == 400 and b"did not match" in wrong.content
    # django-otp throttles codes: one second after one wrong code, doubling after each.
    hurried = client.post("/account/two-factor/", {"code": code_for(device), "next": dashboard})
    assert hurried.status_code == 400 and b"wait a little" in hurried.content
    advance_clock(1.1)
    right = client.post("/account/two-factor/", {"code": code_for(device), "next": dashboard})
    assert right.status_code == 302 and right.url == dashboard
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(dashboard).status_code == 200
    assert client.get(f"/api/projects/{project.pk}/audit-events/").status_code == 200
    assert actions() == [
        "auth.2fa_verified",
        "auth.2fa_enrolled",
        "auth.2fa_failed",
        "auth.2fa_failed",
        "auth.2fa_setup_started",
    ]


@LEADS_AND_ADMINS
def test_a_confirmed_app_is_asked_for_at_every_new_login(project, member):
    lead = member("lena", "lead")
    device = TOTPDevice.objects.create(user=lead, name="phone", confirmed=True)
    client = Client()
    assert client.post("/login/", {"username": "lena", "password": PASSWORD}).status_code == 302
    page = client.get("/account/two-factor/")
    assert b"Enter the six-digit code" in page.content and b"totp-secret" not in page.content
    assert client.get("/").status_code == 302
    assert client.post("/account/two-factor/", {"code": code_for(device)}).status_code == 302
    assert client.get("/").status_code == 200


@LEADS_AND_ADMINS
def test_annotators_and_superusers_without_the_roles_listed(client, project, member, make_user):
    client.force_login(member("ann", "annotator"))
    assert client.get("/").status_code == 200
    # A superuser holds every role, admin included.
    admin = Client()
    admin.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert admin.get("/admin/").status_code == 302


def test_without_the_setting_a_lead_goes_straight_in_and_may_opt_in(client, project, member):
    lead = member("lena", "lead")
    client.force_login(lead)
    assert client.get(f"/projects/{project.pk}/dashboard/").status_code == 200
    # Opting in: once an app is confirmed, the next session asks for its code.
    TOTPDevice.objects.create(user=lead, name="phone", confirmed=True)
    again = Client()
    again.force_login(lead)
    assert again.get(f"/projects/{project.pk}/dashboard/").status_code == 302


@LEADS_AND_ADMINS
def test_api_tokens_for_accounts_with_a_second_factor_need_its_code(project, member, advance_clock):
    lead = member("lena", "lead")
    client = APIClient()
    url = "/api/auth/token/"
    body = {"username": "lena", "password": PASSWORD}
    no_app = client.post(url, body)
    assert no_app.status_code == 403 and no_app.json()["error"] == "two_factor_required"
    device = TOTPDevice.objects.create(user=lead, name="phone", confirmed=True)
    assert client.post(url, body).json()["error"] == "two_factor_required"
    wrong = client.post(url, {**body, "otp_token": "123"})
    assert wrong.status_code == 403 and "did not match" in wrong.json()["message"]
    # Within the throttle after a wrong code even the right one is refused, saying so; a
    # second later not.
    refused = client.post(url, {**body, "otp_token": code_for(device)})
    assert refused.status_code == 403 and "Too many wrong" in refused.json()["message"]
    advance_clock(1.1)
    issued = client.post(url, {**body, "otp_token": code_for(device)})
    assert issued.status_code == 200 and issued.json()["token"]
    assert "auth.2fa_failed" in actions()


# --- setting an app up needs the password again (issue 15, Low) ----------------------------


def _start_setup(client: Client, password: str = PASSWORD):
    return client.post("/account/two-factor/", {"password": password})


@LEADS_AND_ADMINS
def test_a_session_alone_cannot_set_up_an_app(client, project, member):
    lead = member("lena", "lead")
    client.force_login(lead)
    page = client.get("/account/two-factor/")
    assert b"totp-secret" not in page.content and b'name="password"' in page.content
    assert not TOTPDevice.objects.filter(user=lead).exists()
    # Whoever holds the session makes up a device and posts its code: refused, nothing confirmed.
    guessed = TOTPDevice.objects.create(user=lead, name="attacker", confirmed=False)
    refused = client.post("/account/two-factor/", {"code": code_for(guessed)})
    assert refused.status_code == 400 and b"Enter your password again" in refused.content
    assert not TOTPDevice.objects.filter(user=lead, confirmed=True).exists()
    wrong = _start_setup(client, "not the password")
    assert wrong.status_code == 400 and b"That password is not right" in wrong.content
    assert "auth.2fa_setup_password_failed" in actions()
    assert client.get("/").status_code == 302


@LEADS_AND_ADMINS
def test_the_secret_is_new_after_the_password_and_confirmed_with_its_code(client, project, member):
    lead = member("lena", "lead")
    client.force_login(lead)
    seen_earlier = TOTPDevice.objects.create(user=lead, name="seen by someone", confirmed=False)
    assert _start_setup(client).status_code == 302
    # The unconfirmed secret someone may have seen before is gone; a fresh one is shown.
    assert not TOTPDevice.objects.filter(pk=seen_earlier.pk).exists()
    device = TOTPDevice.objects.get(user=lead, confirmed=False)
    shown = re.search(
        rb'id="totp-secret">([A-Z2-7 ]+)<', client.get("/account/two-factor/").content
    )
    assert b32decode(shown.group(1).replace(b" ", b"")) == device.bin_key
    assert client.post("/account/two-factor/", {"code": code_for(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed and client.get("/").status_code == 200


@LEADS_AND_ADMINS
def test_the_password_must_be_fresh_when_the_code_confirms_the_app(client, project, member):
    from medloop.accounts.two_factor_views import REAUTH_SECONDS

    lead = member("lena", "lead")
    client.force_login(lead)
    assert _start_setup(client).status_code == 302
    device = TOTPDevice.objects.get(user=lead, confirmed=False)
    session = client.session
    state = session["medloop_2fa_setup"]
    session["medloop_2fa_setup"] = {**state, "at": state["at"] - REAUTH_SECONDS - 1}
    session.save()
    stale = client.post("/account/two-factor/", {"code": code_for(device)})
    assert stale.status_code == 400 and b"Enter your password again" in stale.content
    device.refresh_from_db()
    assert not device.confirmed
    # Another session of the same user (password not re-entered there) cannot confirm it either.
    other = Client()
    other.force_login(lead)
    assert other.post("/account/two-factor/", {"code": code_for(device)}).status_code == 400
    device.refresh_from_db()
    assert not device.confirmed
