"""The audit table refuses UPDATE and DELETE on SQLite too (the default database), by triggers
like PostgreSQL's (migration 0006): raw SQL through the application's connection cannot rewrite
the trail. The same one UPDATE is let through: Django nulling ``actor_id`` when a user account
is deleted, every other column unchanged. SQLite has no TRUNCATE (``DELETE FROM`` without a
WHERE fires the DELETE trigger for each row) and cannot disable a trigger: the retention
command drops and re-creates them inside its transaction (annotations.services.audit_retention,
which holds the same statements)."""

from django.db import migrations

TABLE = "annotations_auditevent"
# Every column but actor_id; IS compares NULLs as equal.
UNCHANGED = " AND ".join(
    f"NEW.{column} IS OLD.{column}"
    for column in (
        "id",
        "created_at",
        "actor_username",
        "action",
        "project_id",
        "object_type",
        "object_id",
        "ip_address",
        "user_agent",
        "detail",
    )
)
CREATE = [
    f"""
CREATE TRIGGER {TABLE}_append_only_update BEFORE UPDATE ON {TABLE}
FOR EACH ROW WHEN NOT (OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL AND {UNCHANGED})
BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END
""",
    f"""
CREATE TRIGGER {TABLE}_append_only_delete BEFORE DELETE ON {TABLE}
FOR EACH ROW
BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END
""",
]
DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only_delete",
]


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in [*DROP, *CREATE]:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in DROP:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0007_annotation_records_shown_suggestion"),
    ]

    operations = [migrations.RunPython(add_triggers, drop_triggers)]
