"""Retention of the audit trail: the one sanctioned way to remove audit events.

On PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE by trigger (migration 0006).
Removing events past the retention period lifts the guard inside one transaction, as the
table's owner: other sessions never see it lifted (ALTER TABLE holds an exclusive lock until
commit), and a failure rolls the lift back with everything else."""

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
    """The SQL that disables (or re-enables) the audit table's guard triggers."""
    verb = "ENABLE" if enable else "DISABLE"
    return [f"ALTER TABLE {AUDIT_TABLE} {verb} TRIGGER {name}" for name in GUARD_TRIGGERS]


@contextmanager
def guard_lifted(using: str = "default") -> Iterator[None]:
    """Run the body in a transaction in which the audit guard triggers are disabled (PostgreSQL;
    elsewhere just a transaction). Needs a role that owns the audit table."""
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
        yield
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for statement in guard_statements(enable=True):
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
