"""Returned work comes first (issue 18, item 8): a case a reviewer returned is handed to its
annotator before the cases they already hold (the one the workspace prefetched), within the
lease limit."""

from __future__ import annotations

import pytest

from annotations.models import Annotation, AuditEvent, Case
from annotations.services import annotate, queue
from tests.annotations.test_queue import _submit

pytestmark = pytest.mark.django_db


def _return(case: Case, annotator, reviewer) -> None:
    submitted = _submit(case, annotator)
    annotate.review(
        annotation=submitted,
        reviewer=reviewer,
        accept=False,
        comment="Box too loose",
        expected_version=submitted.version,
    )


def test_returned_case_comes_before_the_prefetched_one(project, member, cases):
    alice, rita = member("alice", "annotator"), member("rita", "reviewer")
    first = queue.lease_next_case(project=project, annotator=alice)
    _return(first, alice, rita)
    # Alice had moved on: she works on one case and the workspace prefetched the one after.
    current = queue.lease_next_case(project=project, annotator=alice, exclude=[first.pk])
    prefetched = queue.lease_next_case(
        project=project, annotator=alice, exclude=[first.pk, current.pk]
    )
    assert len({first.pk, current.pk, prefetched.pk}) == 3
    _submit(current, alice)
    assert queue.lease_next_case(project=project, annotator=alice).pk == first.pk
    leases = AuditEvent.objects.filter(action="case.lease", object_id=str(first.pk))
    assert leases.count() == 2  # the first hand-out and this one
    # Asking again (a reload) keeps the returned case; the prefetch then gets the held one.
    assert queue.lease_next_case(project=project, annotator=alice).pk == first.pk
    assert leases.count() == 2
    after = queue.lease_next_case(project=project, annotator=alice, exclude=[first.pk])
    assert after.pk == prefetched.pk


def test_returned_case_waits_while_the_lease_limit_is_reached(project, member, cases):
    alice, rita = member("alice", "annotator"), member("rita", "reviewer")
    first = queue.lease_next_case(project=project, annotator=alice)
    _return(first, alice, rita)
    Case.objects.filter(pk=first.pk).update(leased_to=None, lease_expires_at=None)
    held = []
    for _ in range(queue.MAX_LEASES_PER_ANNOTATOR):
        held.append(
            queue.lease_next_case(
                project=project, annotator=alice, exclude=[first.pk, *(c.pk for c in held)]
            )
        )
    # Two cases held: the returned one cannot be added, the held ones are handed back instead.
    again = queue.lease_next_case(project=project, annotator=alice, exclude=[held[0].pk])
    assert again.pk == held[1].pk
    assert Case.objects.get(pk=first.pk).leased_to is None


def test_submit_answer_names_the_returned_work_waiting(project, member, cases, api_for):
    alice, rita = member("alice", "annotator"), member("rita", "reviewer")
    client = api_for(alice)

    def submit(leased: dict) -> dict:
        response = client.post(
            f"/api/cases/{leased['id']}/annotation/submit/",
            {"findings": {}},
            format="json",
            HTTP_IF_MATCH=leased["annotation"]["etag"],
        )
        assert response.status_code == 200, response.json()
        return response.json()

    first = submit(client.post(f"/api/projects/{project.pk}/next-case/").json())
    assert first["returned_waiting"] == []
    # Alice works on the next case while a reviewer returns the first.
    current = client.post(f"/api/projects/{project.pk}/next-case/").json()
    annotation = Annotation.objects.get(pk=first["id"])
    annotate.review(
        annotation=annotation,
        reviewer=rita,
        accept=False,
        comment="Again",
        expected_version=annotation.version,
    )
    assert submit(current)["returned_waiting"] == [first["case"]]
    again = client.post(f"/api/projects/{project.pk}/next-case/").json()
    assert again["id"] == first["case"] and again["annotation"]["status"] == "returned"
