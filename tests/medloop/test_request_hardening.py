"""Findings of the outside probe (issue 15, Low) about how the API answers requests: throttling
keyed by an address a client cannot forge, bad input answered 400 (never 500), a capped page
size, and no caching of API responses."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from annotations.models import Instance
from medloop.throttling import client_address

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture
def low_rates():
    rates = {"anon": "2/min", "user": "3/min", "token": "2/min"}
    cache.clear()
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        yield
    cache.clear()


# --- throttling and X-Forwarded-For -----------------------------------------------------------


def test_a_forged_x_forwarded_for_does_not_reset_the_token_exchange_count(low_rates, make_user):
    make_user("scripter")
    body = {"username": "scripter", "password": PASSWORD}
    statuses = [
        APIClient(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")
        .post("/api/auth/token/", body)
        .status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 429, 429]


def test_x_forwarded_for_is_read_only_from_configured_proxies():
    meta = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.7"}
    with override_settings(MEDLOOP_TRUSTED_PROXIES=[]):
        assert client_address(meta) == "10.0.0.5"
    with override_settings(MEDLOOP_TRUSTED_PROXIES=["10.0.0.0/24"]):
        # The proxy appended the address it saw; what the client wrote on the left is not used.
        assert client_address(meta) == "198.51.100.7"
        assert client_address({**meta, "REMOTE_ADDR": "192.0.2.1"}) == "192.0.2.1"
        assert client_address({**meta, "HTTP_X_FORWARDED_FOR": "nonsense"}) == "10.0.0.5"
    with override_settings(MEDLOOP_TRUSTED_PROXIES=["10.0.0.5", "198.51.100.0/24"]):
        # Two proxies in a row: the first address no trusted proxy wrote is the client.
        assert client_address(meta) == "1.2.3.4"


def test_behind_a_configured_proxy_each_client_is_counted_apart(low_rates, make_user):
    make_user("scripter")
    body = {"username": "scripter", "password": PASSWORD}

    def via_proxy(client_ip: str) -> int:
        client = APIClient(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=client_ip)
        return client.post("/api/auth/token/", body).status_code

    with override_settings(MEDLOOP_TRUSTED_PROXIES=["10.0.0.5"]):
        assert [via_proxy("198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert via_proxy("198.51.100.2") == 200


# --- bad input is a 400 -----------------------------------------------------------------------


def test_deeply_nested_json_is_a_400(project, member, api_for):
    lead = api_for(member("lena", "lead"))
    body = "[" * 50_000 + "]" * 50_000
    response = lead.patch(f"/api/projects/{project.pk}/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert "nested too deeply" in response.json()["message"]
    deep = json.dumps({"description": json.loads("[" * 100 + "]" * 100)})
    too_deep = lead.patch(f"/api/projects/{project.pk}/", deep, content_type="application/json")
    assert too_deep.status_code == 400 and "nested too deeply" in too_deep.json()["message"]
    fine = lead.patch(f"/api/projects/{project.pk}/", {"description": "ok"}, format="json")
    assert fine.status_code == 200


def test_audit_dates_at_the_end_of_the_calendar_are_answered_not_a_500(project, member, api_for):
    lead = api_for(member("lena", "lead"))
    base = f"/api/projects/{project.pk}/audit-events/"
    assert lead.get(f"{base}?until=9999-12-31").status_code == 200
    assert lead.get(f"{base}?since=9999-12-31").json()["results"] == []
    csv_url = f"/api/projects/{project.pk}/audit-events.csv?until=9999-12-31"
    assert lead.get(csv_url).status_code == 200
    beyond = lead.get(f"{base}?until=9999-12-31T23:00:00-05:00")
    assert beyond.status_code == 400 and "years 1-9999" in beyond.json()["message"]
    assert lead.get(f"{base}?until=0001-01-01T00:00:00%2B05:00").status_code == 400


def test_unicode_digits_in_frame_exclude_and_version_are_a_400(cases, member, api_for):
    lead = api_for(member("lena", "lead", "annotator"))
    case = cases[0]
    instance = Instance.objects.filter(series__study__case=case).first()
    render = f"/api/instances/{instance.pk}/render.png"
    assert lead.get(f"{render}?frame=0").status_code == 200
    for bad in ("²", "٣", "9" * 40):
        response = lead.get(render, {"frame": bad})
        assert response.status_code == 400, bad
        assert "frame must be" in response.json()["message"]
    next_case = f"/api/projects/{case.project_id}/next-case/"
    response = lead.post(next_case + "?exclude=%C2%B2")
    assert response.status_code == 400 and "exclude" in response.json()["message"]
    explain = f"/api/cases/{case.pk}/explanation/"
    for bad in ("²", "9" * 30):
        response = lead.get(explain, {"finding": "effusion", "version": bad})
        assert response.status_code == 400, bad
        assert "version must be" in response.json()["message"]


# --- page size --------------------------------------------------------------------------------


def test_a_huge_limit_is_clamped_to_the_documented_maximum(cases, member, api_for):
    lead = api_for(member("lena", "lead"))
    url = f"/api/projects/{cases[0].project_id}/cases/"
    assert settings.MEDLOOP_API_MAX_PAGE == 500
    with override_settings(MEDLOOP_API_MAX_PAGE=5):
        page = lead.get(url, {"limit": 100_000_000})
        assert page.status_code == 200
        assert page.json()["count"] == 12 and len(page.json()["results"]) == 5
        assert "limit=5" in page.json()["next"]
        assert len(lead.get(url, {"limit": 3}).json()["results"]) == 3
    assert len(lead.get(url, {"limit": 100_000_000}).json()["results"]) == 12
    far = lead.get(url, {"offset": 10**30})
    assert far.status_code == 200 and far.json()["results"] == []
    schema = lead.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    limit = next(
        p
        for p in schema["paths"]["/api/projects/{project_pk}/cases/"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 500 and "at most 500" in limit["description"]


# --- caching ----------------------------------------------------------------------------------


def test_api_responses_with_clinical_data_are_not_stored_by_caches(cases, member, api_for):
    lead = api_for(member("lena", "lead", "annotator"))
    case = cases[0]
    leased = lead.post(f"/api/projects/{case.project_id}/next-case/")
    assert leased.status_code == 200
    annotation = leased.json()["annotation"]["id"]
    for url in (
        f"/api/cases/{case.pk}/",
        f"/api/annotations/{annotation}/",
        f"/api/projects/{case.project_id}/audit-events/",
        f"/api/projects/{case.project_id}/audit-events.csv",
        "/api/projects/",
        "/api/cases/999999/",
    ):
        response = lead.get(url)
        assert response.status_code in (200, 404), url
        assert response["Cache-Control"] == "no-store", url
    # Rendered pixels keep their own, private, caching (only the user's browser keeps them).
    instance = Instance.objects.filter(series__study__case=case).first()
    assert lead.get(f"/api/instances/{instance.pk}/render.png")["Cache-Control"].startswith(
        "private"
    )
