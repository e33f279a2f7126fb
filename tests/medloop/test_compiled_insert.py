"""CompiledInsert (issue 20): what bulk_create stores, as one INSERT ... VALUES with its SQL kept,
never PostgreSQL's UNNEST of per-column arrays (more client CPU for a request's few rows)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from annotations.models import AuditEvent
from medloop.compiled_queries import CompiledInsert

pytestmark = [pytest.mark.both_backends, pytest.mark.django_db]

FIELDS = ("actor_id", "actor_username", "action", "project_id", "object_type", "object_id",
          "ip_address", "user_agent", "detail")  # fmt: skip


def _events(actor: Any, n: int, tag: str) -> list[AuditEvent]:
    return [
        AuditEvent(
            actor=actor if i % 2 == 0 else None,
            actor_username=actor.get_username() if i % 2 == 0 else "",
            action=f"{tag}.{i}",
            project_id=None if i == 1 else 40 + i,
            object_type="annotations.Case",
            object_id=str(i),
            ip_address=["127.0.0.1", "2001:db8::1", None][i % 3],
            user_agent='ü agent\' "quoted"',
            detail={"version": i, "parts": ["boxes", "report"], "text": "a\nb'c"} if i else {},
        )
        for i in range(n)
    ]


def _stored(tag: str) -> list[tuple[Any, ...]]:
    """The rows stored for events tagged ``tag``, the tag taken off their action."""
    rows = AuditEvent.objects.filter(action__startswith=f"{tag}.").order_by("action")
    return [(r[0], r[1], r[2].split(".", 1)[1], *r[3:]) for r in rows.values_list(*FIELDS)]


@pytest.mark.parametrize("n", [1, 2, 3, 20])
def test_it_stores_what_bulk_create_stores_and_sets_the_keys(make_user, n: int) -> None:
    actor = make_user("reader")
    compiled = CompiledInsert(AuditEvent)
    for attempt in range(2):  # the second run uses the kept SQL
        ours = _events(actor, n, f"ours{attempt}")
        with CaptureQueriesContext(connection) as queries:
            compiled.insert(ours)
        assert len(queries) == 1
        assert "UNNEST" not in queries[0]["sql"].upper()
        theirs = AuditEvent.objects.bulk_create(_events(actor, n, f"theirs{attempt}"))
        assert _stored(f"ours{attempt}") == _stored(f"theirs{attempt}")
        assert len(_stored(f"ours{attempt}")) == n
        for event in ours:
            assert event.pk is not None and not event._state.adding
            stored = AuditEvent.objects.get(pk=event.pk)
            assert (stored.action, stored.created_at) == (event.action, event.created_at)
        assert len({e.pk for e in ours} | {e.pk for e in theirs}) == 2 * n


def test_rows_already_saved_are_refused(make_user) -> None:
    event = _events(make_user("reader"), 1, "saved")[0]
    event.save()
    with pytest.raises(ValueError, match="new rows only"):
        CompiledInsert(AuditEvent).insert([event])


def test_a_failed_insert_leaves_the_transaction_marked_for_rollback(make_user) -> None:
    event = _events(make_user("reader"), 1, "bad")[0]
    event.action = "x" * 65  # longer than the column (PostgreSQL refuses it; SQLite stores it)
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    with transaction.atomic():
        with pytest.raises(Exception, match="too long"):
            CompiledInsert(AuditEvent).insert([event])
        assert transaction.get_rollback()  # the block rolls back, as after bulk_create's error
    assert not AuditEvent.objects.filter(action__startswith="x").exists()


def test_ignore_conflicts_inserts_once_and_leaves_the_transaction_usable(
    project, member, cases
) -> None:
    from annotations.models import Annotation

    reader = member("reader", "annotator")
    working_copy = CompiledInsert(Annotation, ignore_conflicts=True)
    first = Annotation(case=cases[0], annotator=reader)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            assert working_copy.insert([first]) == 1
        assert len(queries) == 1 and "SAVEPOINT" not in queries[0]["sql"].upper()
        assert first.pk is not None and not first._state.adding
        second = Annotation(case=cases[0], annotator=reader)  # another tab, the same copy
        assert working_copy.insert([second]) == 0
        assert second.pk is None
        # No error was raised: the transaction goes on.
        assert Annotation.objects.filter(case=cases[0], annotator=reader).count() == 1
        assert working_copy.insert([Annotation(case=cases[1], annotator=reader)]) == 1
    stored = Annotation.objects.get(pk=first.pk)
    assert (stored.version, stored.status, stored.findings) == (
        first.version,
        first.status,
        first.findings,
    )
    with pytest.raises(ValueError, match="one row"):
        working_copy.insert([Annotation(case=cases[2], annotator=reader)] * 2)
