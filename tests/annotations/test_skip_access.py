"""Skipping grants no lasting access (issue 15, finding 6): an untouched draft is dropped on
skip, a skipped case's clinical data is refused, and PUT .../lease/ neither re-leases a skipped
case nor goes past the lease cap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Annotation, AuditEvent, Case, Instance
from annotations.services import annotate, queue
from annotations.services.errors import Conflict

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(member):
    return member("ann", "annotator")


def _next(client, project, exclude=()):
    query = f"?exclude={','.join(str(pk) for pk in exclude)}" if exclude else ""
    response = client.post(f"/api/projects/{project.pk}/next-case/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _case_id(body) -> int:
    return int(body["id"] if "id" in body else body["case"]["id"])


def _skip(client, case_id):
    response = client.post(f"/api/cases/{case_id}/skip/", {"reason": "poor image"}, format="json")
    assert response.status_code == 204, response.content


def test_skipping_drops_the_untouched_draft_and_the_case_is_no_longer_readable(
    project, cases, reader, api_for
):
    client = api_for(reader)
    case_id = _case_id(_next(client, project))
    assert client.get(f"/api/cases/{case_id}/").status_code == 200
    assert Annotation.objects.filter(case_id=case_id, annotator=reader).exists()

    _skip(client, case_id)
    assert not Annotation.objects.filter(case_id=case_id, annotator=reader).exists()
    assert AuditEvent.objects.filter(action="annotation.discard", actor=reader).count() == 1
    assert client.get(f"/api/cases/{case_id}/").status_code == 403
    instance = Instance.objects.filter(series__study__case__pk=case_id).first()
    assert client.get(f"/api/instances/{instance.pk}/render.png").status_code == 403
    assert client.put(f"/api/cases/{case_id}/lease/").status_code == 403
    assert Case.objects.get(pk=case_id).leased_to_id is None


def test_a_skipped_draft_with_work_is_kept_but_grants_no_access(project, cases, reader, api_for):
    client = api_for(reader)
    case_id = _case_id(_next(client, project))
    annotation = Annotation.objects.get(case_id=case_id, annotator=reader)
    finding = project.finding_keys[0]
    annotate.save_draft(
        annotation=annotation, actor=reader, expected_version=1, findings={finding: "present"}
    )
    _skip(client, case_id)
    kept = Annotation.objects.get(pk=annotation.pk)
    assert kept.findings == {finding: "present"}
    assert client.get(f"/api/cases/{case_id}/").status_code == 403
    assert client.put(f"/api/cases/{case_id}/lease/").status_code == 403


def test_the_lease_service_refuses_a_skipped_case(project, cases, reader):
    case = queue.lease_next_case(project=project, annotator=reader)
    assert case is not None
    queue.release_lease(case=case, annotator=reader, skip_reason="artefact")
    with pytest.raises(Conflict, match="skipped"):
        queue.renew_lease(case=case, annotator=reader)
    assert Case.objects.get(pk=case.pk).leased_to_id is None


def test_renewing_a_lease_never_goes_past_the_lease_cap(project, cases, reader, api_for):
    client = api_for(reader)
    first = _case_id(_next(client, project))
    # The first lease runs out while its draft stays: the annotator works on two others.
    Case.objects.filter(pk=first).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    second = _case_id(_next(client, project, exclude=[first]))
    third = _case_id(_next(client, project, exclude=[first, second]))
    assert len({first, second, third}) == 3

    response = client.put(f"/api/cases/{first}/lease/")
    assert response.status_code == 409
    assert "already hold 2 cases" in response.json()["message"]
    assert Case.objects.get(pk=first).lease_expires_at < timezone.now()
    # Renewing one already held is fine.
    assert client.put(f"/api/cases/{second}/lease/").status_code == 200


def test_an_expired_lease_without_a_draft_grants_no_access(project, cases, reader, api_for):
    client = api_for(reader)
    case_id = _case_id(_next(client, project))
    Annotation.objects.filter(case_id=case_id, annotator=reader).delete()
    assert client.get(f"/api/cases/{case_id}/").status_code == 200  # the lease still runs
    Case.objects.filter(pk=case_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(f"/api/cases/{case_id}/").status_code == 403
