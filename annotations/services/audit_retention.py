"""Retention of the audit trail: the one sanctioned way to remove audit events.

On PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE by trigger (migration 0006),
on SQLite UPDATE and DELETE (migration 0008). Removing events past the retention period lifts
the guard inside one transaction, as the table's owner: other sessions never see it lifted
(PostgreSQL's ALTER TABLE holds an exclusive lock until commit; SQLite's write transaction
excludes every other writer), and a failure rolls the lift back with everything else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from annotations.models import AuditEvent
from annotations.services import audit
from annotations.services.errors import InvalidInput

AUDIT_TABLE = AuditEvent._meta.db_table
GUARD_TRIGGERS = ("annotations_auditevent_append_only", "annotations_auditevent_no_truncate")


def guard_statements(enable: bool) -> list[str]:
    """The SQL that disables (or re-enables) the audit table's guard triggers (PostgreSQL)."""
    verb = "ENABLE" if enable else "DISABLE"
    return [f"ALTER TABLE {AUDIT_TABLE} {verb} TRIGGER {name}" for name in GUARD_TRIGGERS]


# SQLite cannot disable a trigger: the guard is dropped and created again, in one transaction
# (SQLite's DDL is transactional). The same statements as migration 0008.
_SQLITE_UNCHANGED = " AND ".join(
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
SQLITE_GUARD = [
    f"CREATE TRIGGER {AUDIT_TABLE}_append_only_update BEFORE UPDATE ON {AUDIT_TABLE} "
    f"FOR EACH ROW WHEN NOT (OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL AND "
    f"{_SQLITE_UNCHANGED}) "
    f"BEGIN SELECT RAISE(ABORT, '{AUDIT_TABLE} is append-only: UPDATE refused'); END",
    f"CREATE TRIGGER {AUDIT_TABLE}_append_only_delete BEFORE DELETE ON {AUDIT_TABLE} "
    f"FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{AUDIT_TABLE} is append-only: DELETE refused'); END",
]


def sqlite_guard_statements(enable: bool) -> list[str]:
    """The SQL that removes (or puts back) the audit table's guard triggers (SQLite)."""
    if enable:
        return list(SQLITE_GUARD)
    return [
        f"DROP TRIGGER IF EXISTS {AUDIT_TABLE}_append_only_update",
        f"DROP TRIGGER IF EXISTS {AUDIT_TABLE}_append_only_delete",
    ]


@contextmanager
def guard_lifted(using: str = "default") -> Iterator[None]:
    """Run the body in a transaction in which the audit guard triggers are disabled (PostgreSQL)
    or removed (SQLite). Needs a role that owns the audit table."""
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # ALTER TABLE refuses while deferred foreign-key checks of rows written in
                # this transaction are pending: run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for statement in guard_statements(enable=False):
                    cursor.execute(statement)
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        elif connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                for statement in sqlite_guard_statements(enable=False):
                    cursor.execute(statement)
        yield
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for statement in guard_statements(enable=True):
                    cursor.execute(statement)
        elif connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                for statement in sqlite_guard_statements(enable=True):
                    cursor.execute(statement)


def prune_events(*, older_than_days: int) -> int:
    """Delete audit events older than ``older_than_days`` (at least MEDLOOP_AUDIT_RETENTION_DAYS,
    six years by default: HIPAA's retention for security documentation). Records the pruning
    itself as ``audit.prune``; returns how many events were deleted."""
    minimum = int(settings.MEDLOOP_AUDIT_RETENTION_DAYS)
    if older_than_days < minimum:
        raise InvalidInput(
            f"Audit events are kept at least {minimum} days (MEDLOOP_AUDIT_RETENTION_DAYS)."
        )
    cutoff = timezone.now() - timedelta(days=older_than_days)
    with guard_lifted():
        deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
    audit.record(action="audit.prune", detail={"before": cutoff.isoformat(), "deleted": deleted})
    return deleted
