"""The case queue: order, leases, skips, double reading, and no double hand-out under load."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.ml import synthetic
from annotations.models import Annotation, Case
from annotations.services import annotate, queue
from annotations.services.errors import Conflict
from tests.conftest import ingest_synthetic
from tests.support.concurrency import run_concurrently

CLIENTS = 20


@pytest.fixture(scope="session")
def many_synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic-many")
    synthetic.generate_dataset(seed=3, count=60, out_dir=out, size=64)
    return out


def _submit(case: Case, user) -> Annotation:
    annotation = annotate.start_annotation(case=case, annotator=user)
    return annotate.submit(annotation=annotation, actor=user, expected_version=annotation.version)


def test_queue_serves_higher_priority_first_then_fifo(project, member, cases):
    reader = member("reader", "annotator")
    Case.objects.filter(pk=cases[5].pk).update(priority=0.9)
    first = queue.lease_next_case(project=project, annotator=reader)
    assert first.pk == cases[5].pk
    _submit(first, reader)
    second = queue.lease_next_case(project=project, annotator=reader)
    assert second.pk == min(c.pk for c in cases if c.pk != cases[5].pk)


def test_asking_again_returns_the_case_already_held_and_renews_it(project, member, cases):
    reader = member("reader", "annotator")
    first = queue.lease_next_case(project=project, annotator=reader)
    again = queue.lease_next_case(project=project, annotator=reader)
    assert again.pk == first.pk
    assert again.lease_expires_at >= first.lease_expires_at


def test_leased_case_is_not_offered_to_another_annotator_until_it_expires(project, member, cases):
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    held = queue.lease_next_case(project=project, annotator=alice)
    other = queue.lease_next_case(project=project, annotator=bob)
    assert other.pk != held.pk
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    assert queue.release_expired_leases(now=later) == 2
    queue.release_lease(case=other, annotator=bob, skip_reason="not my field")
    assert queue.lease_next_case(project=project, annotator=bob, now=later).pk == held.pk


def test_renewing_a_lease_held_by_someone_else_is_a_conflict(project, member, cases):
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    held = queue.lease_next_case(project=project, annotator=alice)
    with pytest.raises(Conflict):
        queue.renew_lease(case=held, annotator=bob)


def test_skipped_case_is_not_offered_to_the_same_annotator_again(project, member, cases):
    reader = member("reader", "annotator")
    first = queue.lease_next_case(project=project, annotator=reader)
    queue.release_lease(case=first, annotator=reader, skip_reason="image cut off")
    seen = set()
    while (case := queue.lease_next_case(project=project, annotator=reader)) is not None:
        seen.add(case.pk)
        _submit(case, reader)
    assert first.pk not in seen
    assert len(seen) == len(cases) - 1
    assert Case.objects.get(pk=first.pk).skips.get().reason == "image cut off"


def test_double_read_case_goes_to_two_different_readers_and_completes_after_both(
    project, member, cases
):
    Case.objects.filter(project=project).update(required_reads=2)
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    case = queue.lease_next_case(project=project, annotator=alice)
    _submit(case, alice)
    case.refresh_from_db()
    assert case.state == Case.State.OPEN
    assert queue.lease_next_case(project=project, annotator=alice).pk != case.pk
    assert queue.lease_next_case(project=project, annotator=bob).pk == case.pk
    _submit(case, bob)
    case.refresh_from_db()
    assert case.state == Case.State.COMPLETE


def test_returned_work_comes_back_to_its_annotator_first_and_to_nobody_else(project, member, cases):
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    reviewer = member("rita", "reviewer")
    case = queue.lease_next_case(project=project, annotator=alice)
    submitted = _submit(case, alice)
    annotate.review(
        annotation=submitted,
        reviewer=reviewer,
        accept=False,
        comment="Box too loose",
        expected_version=submitted.version,
    )
    served_to_bob = set()
    while (c := queue.lease_next_case(project=project, annotator=bob)) is not None:
        served_to_bob.add(c.pk)
        _submit(c, bob)
    assert case.pk not in served_to_bob
    assert queue.lease_next_case(project=project, annotator=alice).pk == case.pk


@pytest.mark.both_backends
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_annotators_are_never_handed_the_same_case(
    project, member, many_synthetic_dir
):
    cases = ingest_synthetic(project, many_synthetic_dir)
    readers = [member(f"reader{i}", "annotator") for i in range(CLIENTS)]
    handed: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        reader = readers[index]
        while (case := queue.lease_next_case(project=project, annotator=reader)) is not None:
            with lock:
                handed.append((case.pk, reader.pk))
            _submit(case, reader)

    errors = run_concurrently(CLIENTS, work)
    assert errors == []
    case_ids = [case_id for case_id, _ in handed]
    assert len(case_ids) == len(set(case_ids)), "a case was handed to two annotators"
    assert sorted(case_ids) == sorted(c.pk for c in cases)
    assert len({reader for _, reader in handed}) > 1
    assert not Case.objects.filter(state=Case.State.OPEN).exists()


@pytest.mark.both_backends
@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_requests_lease_twenty_distinct_cases(
    project, member, many_synthetic_dir
):
    ingest_synthetic(project, many_synthetic_dir)
    readers = [member(f"reader{i}", "annotator") for i in range(CLIENTS)]
    leased: dict[int, int] = {}
    lock = threading.Lock()

    def work(index: int) -> None:
        case = queue.lease_next_case(project=project, annotator=readers[index])
        assert case is not None
        with lock:
            leased[readers[index].pk] = case.pk

    assert run_concurrently(CLIENTS, work) == []
    assert len(leased) == CLIENTS
    assert len(set(leased.values())) == CLIENTS
    holders = dict(Case.objects.filter(leased_to__isnull=False).values_list("pk", "leased_to"))
    assert holders == {case: reader for reader, case in leased.items()}


def test_workspace_can_hold_the_next_case_for_prefetch_but_no_more(project, member, cases):
    reader = member("reader", "annotator")
    current = queue.lease_next_case(project=project, annotator=reader)
    ahead = queue.lease_next_case(project=project, annotator=reader, exclude=[current.pk])
    assert ahead.pk != current.pk
    assert queue.lease_next_case(project=project, annotator=reader).pk == current.pk
    with pytest.raises(Conflict):
        queue.lease_next_case(project=project, annotator=reader, exclude=[current.pk, ahead.pk])
    _submit(current, reader)
    assert queue.lease_next_case(project=project, annotator=reader).pk == ahead.pk
