"""On SQLite, the default database, the audit table refuses UPDATE and DELETE by trigger
(migration 0008), as PostgreSQL's does (0006); deleting a user still nulls their events' actor,
and the retention command still prunes. Checked on a fresh SQLite database migrated by
``manage.py migrate`` in a child process, whatever database this test run uses."""

from __future__ import annotations

from tests.support.sqlite_script import run_on_sqlite

SCRIPT = r"""
import json
from datetime import timedelta

import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

call_command("migrate", verbosity=0)
from annotations.models import AuditEvent
from annotations.services import audit
from annotations.services.audit_retention import prune_events

TABLE = AuditEvent._meta.db_table
user = get_user_model().objects.create_user(username="watcher", password="x" * 20)
event = audit.record(action="case.view", actor=user, detail={"n": 1})
out = {"vendor": connection.vendor}


def refused(sql, params):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError as exc:
        return str(exc)
    return None


out["update_action"] = refused(f"UPDATE {TABLE} SET action = 'nothing' WHERE id = %s", [event.pk])
out["update_name"] = refused(f"UPDATE {TABLE} SET actor_username = 'x' WHERE id = %s", [event.pk])
out["null_actor_and_more"] = refused(
    f"UPDATE {TABLE} SET actor_id = NULL, action = 'x' WHERE id = %s", [event.pk]
)
out["delete_one"] = refused(f"DELETE FROM {TABLE} WHERE id = %s", [event.pk])
out["delete_all"] = refused(f"DELETE FROM {TABLE}", [])
kept = AuditEvent.objects.get(pk=event.pk)
out["kept"] = [kept.action, kept.actor_username, kept.detail]
user.delete()
kept = AuditEvent.objects.get(pk=event.pk)
out["after_user_deleted"] = [kept.actor_id, kept.actor_username, kept.action]
with connection.cursor() as cursor:
    cursor.execute(
        f"INSERT INTO {TABLE} (created_at, actor_username, action, object_type, object_id,"
        " user_agent, detail) VALUES (%s, 'old', 'case.view', '', '', '', '{}')",
        [timezone.now() - timedelta(days=4000)],
    )
out["pruned"] = prune_events(older_than_days=3000)
out["left"] = sorted(AuditEvent.objects.values_list("action", flat=True))
out["delete_after_prune"] = refused(f"DELETE FROM {TABLE}", [])
print(json.dumps(out))
"""


def test_sqlite_audit_table_is_append_only_by_trigger(tmp_path):
    out = run_on_sqlite(SCRIPT, tmp_path, MEDLOOP_AUDIT_RETENTION_DAYS="30")
    assert out["vendor"] == "sqlite"
    for key in ("update_action", "update_name", "null_actor_and_more"):
        assert "append-only: UPDATE refused" in out[key], key
    for key in ("delete_one", "delete_all", "delete_after_prune"):
        assert "append-only: DELETE refused" in out[key], key
    assert out["kept"] == ["case.view", "watcher", {"n": 1}]
    # Django's SET_NULL on user deletion is the one update let through; the name stays.
    assert out["after_user_deleted"] == [None, "watcher", "case.view"]
    assert out["pruned"] == 1
    assert out["left"] == ["audit.prune", "case.view"]
