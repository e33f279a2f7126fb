"""The audit table refuses UPDATE, DELETE and TRUNCATE in PostgreSQL itself, so not even raw SQL
through the application's connection can rewrite the trail (the model refuses it in Python
already). One UPDATE is let through: Django nulling ``actor_id`` when a user account is deleted
(``on_delete=SET_NULL``), with every other column unchanged; ``actor_username`` keeps the name.

A role that owns the table can still ``ALTER TABLE ... DISABLE TRIGGER``; that is how the
retention command (``prune_audit_events``) and the tests' database flush work, inside one
transaction. For separation of duties run the application as a role that does not own the
tables (README, "Security"). SQLite has no such triggers: the model's guard is all there is."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION medloop_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'annotations_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
ROW_TRIGGER = """
CREATE TRIGGER annotations_auditevent_append_only
    BEFORE UPDATE OR DELETE ON annotations_auditevent
    FOR EACH ROW EXECUTE FUNCTION medloop_audit_append_only()
"""
TRUNCATE_TRIGGER = """
CREATE TRIGGER annotations_auditevent_no_truncate
    BEFORE TRUNCATE ON annotations_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION medloop_audit_append_only()
"""
DROP = [
    "DROP TRIGGER IF EXISTS annotations_auditevent_no_truncate ON annotations_auditevent",
    "DROP TRIGGER IF EXISTS annotations_auditevent_append_only ON annotations_auditevent",
    "DROP FUNCTION IF EXISTS medloop_audit_append_only()",
]


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # params=None: plain statements, so psycopg leaves the function body's % alone.
    for statement in [*DROP, FUNCTION, ROW_TRIGGER, TRUNCATE_TRIGGER]:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in DROP:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0005_double_read_adjudication"),
    ]

    operations = [migrations.RunPython(add_triggers, drop_triggers)]
