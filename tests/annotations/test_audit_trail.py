"""The audit trail: logins in it, filters, CSV, and a table that refuses changes even to raw SQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.models import AuditEvent
from annotations.services import audit
from annotations.services.audit_retention import AUDIT_TABLE

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the audit table's triggers exist on PostgreSQL only")


# --- logins ------------------------------------------------------------------------------------


def test_login_failed_login_and_logout_are_audited_without_the_password(client, make_user):
    alice = make_user("alice")
    failed = client.post(
        "/login/", {"username": "alice", "password": "wrong-secret-123"}, REMOTE_ADDR="10.9.8.7"
    )
    assert failed.status_code == 200
    [event] = events("auth.login_failed")
    assert event.detail == {"username": "alice"} and event.actor is None
    assert event.ip_address == "10.9.8.7"
    assert "wrong-secret-123" not in json.dumps(event.detail) + event.user_agent

    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    [login] = events("auth.login")
    assert login.actor == alice and login.actor_username == "alice"
    assert (login.object_type, login.object_id) == ("auth.User", str(alice.pk))

    assert client.post("/logout/").status_code == 302
    [logout] = events("auth.logout")
    assert logout.actor == alice


def test_token_logins_and_their_failures_are_audited(make_user):
    make_user("scripter")
    client = APIClient()
    bad = client.post("/api/auth/token/", {"username": "scripter", "password": "nope"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    assert events("auth.login_failed")[0].detail == {"username": "scripter"}
    good = client.post("/api/auth/token/", {"username": "scripter", "password": PASSWORD})
    assert good.status_code == 200 and good.json()["token"]
    [login] = events("auth.login")
    assert login.actor_username == "scripter" and login.detail == {"method": "token"}


# --- the API: filters, CSV, the global list ---------------------------------------------------


@pytest.fixture
def trail(project, member, monkeypatch):
    """Events of ``project`` three, two and one day ago, and one of another project; what
    setting the project up recorded (project.create, membership.add) is from today."""
    lead = member("lena", "lead")
    annotator = member("ann", "annotator")
    now = timezone.now()

    def at(days_ago: int, **kwargs: object) -> AuditEvent:
        with monkeypatch.context() as patch:
            patch.setattr(timezone, "now", lambda: now - timedelta(days=days_ago))
            return audit.record(**kwargs)  # type: ignore[arg-type]

    at(3, action="case.view", actor=annotator, project_id=project.pk, target=project)
    at(2, action="annotation.submit", actor=annotator, project_id=project.pk)
    at(1, action="project.export", actor=lead, project_id=project.pk)
    at(1, action="case.view", actor=lead, project_id=project.pk + 1000)
    return {"lead": lead, "annotator": annotator, "now": now}


def listed(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [e["action"] for e in response.json()["results"]]


def test_leads_filter_their_projects_trail_by_action_actor_dates_and_object(
    project, trail, api_for
):
    lead = api_for(trail["lead"])
    base = f"/api/projects/{project.pk}/audit-events/"
    now = trail["now"]
    d1, d2 = (now - timedelta(days=1)).date(), (now - timedelta(days=2)).date()
    # A date as `until` includes that whole day.
    assert listed(lead, f"{base}?until={d1}") == [
        "project.export",
        "annotation.submit",
        "case.view",
    ]
    assert listed(lead, base + "?action=case.view") == ["case.view"]
    assert listed(lead, base + "?action=annotation.*") == ["annotation.submit"]
    assert listed(lead, base + "?actor=ann") == ["annotation.submit", "case.view"]
    assert listed(lead, f"{base}?since={d2}&until={d1}") == ["project.export", "annotation.submit"]
    assert listed(lead, f"{base}?until={d2}") == ["annotation.submit", "case.view"]
    assert listed(lead, f"{base}?since={d2}&until={d2}") == ["annotation.submit"]
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    since = (now - timedelta(days=1, hours=1)).strftime(stamp)
    until = (now - timedelta(days=1) + timedelta(hours=1)).strftime(stamp)
    assert listed(lead, f"{base}?since={since}&until={until}") == ["project.export"]
    by_object = f"{base}?object_type=annotations.Project&object_id={project.pk}&until={d1}"
    assert listed(lead, by_object) == ["case.view"]


def test_a_bad_date_filter_is_refused_with_the_api_error_shape(project, trail, api_for):
    response = api_for(trail["lead"]).get(f"/api/projects/{project.pk}/audit-events/?since=soon")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid" and "since" in response.json()["message"]


def test_csv_export_is_filtered_formula_safe_and_itself_audited(project, trail, api_for):
    # A user agent is whatever the client sends: a spreadsheet must not run it as a formula.
    audit.record(
        action="case.view",
        actor=trail["annotator"],
        project_id=project.pk,
        request=RequestFactory().get("/", HTTP_USER_AGENT="=HYPERLINK(1)"),
    )
    response = api_for(trail["lead"]).get(
        f"/api/projects/{project.pk}/audit-events.csv?action=case.view"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["action"] for r in rows] == ["case.view", "case.view"]
    assert rows[0]["user_agent"] == "'=HYPERLINK(1)"
    assert {r["project_id"] for r in rows} == {str(project.pk)}
    [export] = events("audit.export")
    assert export.actor == trail["lead"] and export.detail == {"action": "case.view"}


def test_global_trail_with_logins_is_for_staff_only(project, trail, make_user, api_for, client):
    client.post("/login/", {"username": "ann", "password": "wrong"})
    staff = api_for(make_user("security-officer", is_staff=True))
    assert listed(staff, "/api/audit-events/?action=auth.*") == ["auth.login_failed"]
    assert len(listed(staff, "/api/audit-events/?action=case.view")) == 2
    assert listed(staff, f"/api/audit-events/?project={project.pk}&action=case.view") == [
        "case.view"
    ]
    csv_body = b"".join(staff.get("/api/audit-events.csv?action=auth.*").streaming_content)
    assert b"auth.login_failed" in csv_body and b'""username"": ""ann""' in csv_body
    assert api_for(trail["lead"]).get("/api/audit-events/").status_code == 403
    assert APIClient().get("/api/audit-events.csv").status_code == 401


# --- the table refuses changes in the database itself (PostgreSQL) ----------------------------


@pytest.fixture
def recorded(make_user) -> AuditEvent:
    return audit.record(action="case.view", actor=make_user("watcher"), detail={"n": 1})


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {AUDIT_TABLE} SET action = 'nothing.happened' WHERE id = %s",  # noqa: S608
        f"UPDATE {AUDIT_TABLE} SET actor_username = 'someone-else' WHERE id = %s",  # noqa: S608
        f"DELETE FROM {AUDIT_TABLE} WHERE id = %s",  # noqa: S608
        f"TRUNCATE {AUDIT_TABLE}",
    ],
    ids=["update-action", "update-actor", "delete", "truncate"],
)
def test_raw_sql_cannot_change_or_remove_audit_events(recorded, statement):
    require_postgresql()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # The fixture's row is in this test's transaction: check its foreign key now, or
        # TRUNCATE stops at the pending check before the trigger has its say.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(statement, [recorded.pk] if "%s" in statement else None)
    kept = AuditEvent.objects.get(pk=recorded.pk)
    assert (kept.action, kept.actor_username, kept.detail) == ("case.view", "watcher", {"n": 1})


def test_raw_sql_cannot_change_an_event_while_nulling_its_actor(recorded):
    require_postgresql()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"UPDATE {AUDIT_TABLE} SET actor_id = NULL, action = 'x' WHERE id = %s",  # noqa: S608
            [recorded.pk],
        )
    assert AuditEvent.objects.get(pk=recorded.pk).action == "case.view"


def test_deleting_a_user_keeps_their_events_with_the_name(recorded):
    recorded.actor.delete()
    kept = AuditEvent.objects.get(pk=recorded.pk)
    assert kept.actor is None and kept.actor_username == "watcher" and kept.action == "case.view"


def test_retention_command_removes_only_events_past_the_retention_period(recorded, settings):
    require_postgresql()
    settings.MEDLOOP_AUDIT_RETENTION_DAYS = 30
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AUDIT_TABLE} (created_at, actor_username, action, object_type,"  # noqa: S608
            " object_id, user_agent, detail) VALUES (%s, 'old', 'case.view', '', '', '', '{}')",
            [timezone.now() - timedelta(days=40)],
        )
    with pytest.raises(CommandError, match="at least 30 days"):
        call_command("prune_audit_events", "--older-than-days", "10")
    out = io.StringIO()
    call_command("prune_audit_events", "--older-than-days", "31", stdout=out)
    assert "Deleted 1 audit events" in out.getvalue()
    assert list(AuditEvent.objects.values_list("actor_username", flat=True)) == ["", "watcher"]
    assert events("audit.prune")[0].detail["deleted"] == 1
    # The guard is back once the command is done.
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {AUDIT_TABLE}")  # noqa: S608


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_with_audit_events_is_flushed_afterwards(make_user):
    """The flush after this test TRUNCATEs the audit table (tests/conftest.py lifts the guard
    around it); the statements it runs disable and re-enable the triggers in one go."""
    audit.record(action="case.view", actor=make_user("flushed"))
    statements = connection.ops.sql_flush(no_style(), [AUDIT_TABLE])
    if connection.vendor == "postgresql":
        assert "DISABLE TRIGGER" in statements[0] and "ENABLE TRIGGER" in statements[-1]
