"""The quarantine review API (issue 18, item 1): the list says why each image is held; a lead
releases or rejects many images in one call with a comment, all or none, each audited; bad
input is a 400 naming what was wrong; the upload report marks held images."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from annotations.models import AuditEvent, Instance
from annotations.services import ingest

pytestmark = pytest.mark.django_db


def held_copy(path: Path, **attributes: str) -> bytes:
    """The file with attributes that make ingest hold it (Burned In Annotation YES by default)."""
    dataset = pydicom.dcmread(path)
    for keyword, value in (attributes or {"BurnedInAnnotation": "YES"}).items():
        setattr(dataset, keyword, value)
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


@pytest.fixture
def held(project, synthetic_dir) -> list[Instance]:
    files = sorted(synthetic_dir.glob("*.dcm"))
    out = [
        ingest.ingest_dicom_bytes(project=project, data=held_copy(path)).instance
        for path in files[:2]
    ]
    out.append(
        ingest.ingest_dicom_bytes(
            project=project, data=held_copy(files[2], RecognizableVisualFeatures="YES")
        ).instance
    )
    assert all(i.quarantined for i in out)
    return out


@pytest.fixture
def lead(member, api_for):
    return api_for(member("lena", "lead"))


def test_list_says_why_each_image_is_held_and_which_case_it_belongs_to(project, held, lead):
    listed = lead.get(f"/api/projects/{project.pk}/quarantine/").json()
    assert [i["id"] for i in listed] == [i.pk for i in held]
    first, last = listed[0], listed[-1]
    assert first["quarantine_reason"].startswith("Burned In Annotation is YES")
    assert last["quarantine_reason"].startswith("Recognizable Visual Features is YES")
    assert first["case"] == held[0].series.study.case.pk
    assert first["modality"] and first["held_since"]


def test_bulk_release_shows_the_images_to_annotators_and_audits_each_with_the_comment(
    project, held, lead, member, api_for
):
    response = lead.post(
        f"/api/projects/{project.pk}/quarantine/decisions/",
        {"instances": [held[0].pk, held[1].pk], "decision": "release", "comment": "No text seen"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "decision": "release",
        "instances": [held[0].pk, held[1].pk],
        "still_held": 1,
    }
    assert list(Instance.objects.filter(quarantined=True)) == [held[2]]
    events = AuditEvent.objects.filter(action="instance.clear_quarantine").order_by("object_id")
    assert [e.object_id for e in events] == [str(held[0].pk), str(held[1].pk)]
    assert {e.detail["comment"] for e in events} == {"No text seen"}
    assert events[0].detail["reason"].startswith("Burned In Annotation")
    assert {e.actor_username for e in events} == {"lena"}
    reviewer = api_for(member("rita", "reviewer"))
    for image, visible in ((held[0], True), (held[2], False)):
        detail = reviewer.get(f"/api/cases/{image.series.study.case.pk}/").json()
        shown = [i["id"] for s in detail["series"] for i in s["instances"]]
        assert shown == ([image.pk] if visible else [])


def test_bulk_reject_keeps_the_images_hidden_and_off_the_list(project, held, lead, member, api_for):
    response = lead.post(
        f"/api/projects/{project.pk}/quarantine/decisions/",
        {"instances": [held[2].pk], "decision": "reject", "comment": "A face is visible"},
        format="json",
    )
    assert response.status_code == 200
    rejected = Instance.objects.get(pk=held[2].pk)
    assert rejected.quarantined and rejected.quarantine_rejected_at is not None
    listed = lead.get(f"/api/projects/{project.pk}/quarantine/").json()
    assert [i["id"] for i in listed] == [held[0].pk, held[1].pk]
    event = AuditEvent.objects.get(action="instance.reject_quarantine")
    assert event.detail["comment"] == "A face is visible" and event.detail["decision"] == "reject"
    reader = api_for(member("ann", "annotator"))
    assert reader.get(f"/api/instances/{held[2].pk}/file/").status_code == 403
    again = lead.post(
        f"/api/projects/{project.pk}/quarantine/decisions/",
        {"instances": [held[2].pk], "decision": "release", "comment": "changed my mind"},
        format="json",
    )
    assert again.status_code == 400 and str(held[2].pk) in again.json()["message"]
    one = lead.post(f"/api/instances/{held[2].pk}/clear-quarantine/")
    assert one.status_code == 409 and "rejected" in one.json()["message"]
    assert Instance.objects.get(pk=held[2].pk).quarantined


def test_the_queue_never_hands_out_a_case_whose_images_are_all_held_or_rejected(
    project, held, lead, member, api_for
):
    """A case of held images alone would open on an empty viewer: the queue passes it by until
    a lead releases one of its images; a case of rejected images alone is never handed out."""
    from annotations.services import queue

    annotator = member("ann", "annotator")
    assert queue.lease_next_case(project=project, annotator=annotator) is None
    reader = api_for(annotator)
    assert reader.post(f"/api/projects/{project.pk}/next-case/").status_code == 204
    lead.post(
        f"/api/projects/{project.pk}/quarantine/decisions/",
        {"instances": [held[2].pk], "decision": "reject", "comment": "A face is visible"},
        format="json",
    )
    assert queue.lease_next_case(project=project, annotator=annotator) is None
    lead.post(
        f"/api/projects/{project.pk}/quarantine/decisions/",
        {"instances": [held[1].pk], "decision": "release", "comment": "No text seen"},
        format="json",
    )
    leased = queue.lease_next_case(project=project, annotator=annotator)
    assert leased is not None and leased.pk == held[1].series.study.case.pk
    assert queue.lease_next_case(project=project, annotator=annotator, exclude=[leased.pk]) is None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"decision": "release", "comment": "x"}, "instances"),
        ({"instances": [], "decision": "release", "comment": "x"}, "instances"),
        ({"instances": ["one"], "decision": "release", "comment": "x"}, "instances"),
        ({"instances": [1], "decision": "destroy", "comment": "x"}, "decision"),
        ({"instances": [1], "decision": "reject"}, "comment"),
        ({"instances": [1], "decision": "reject", "comment": "   "}, "comment"),
        ({"instances": [1], "decision": "reject", "comment": "x" * 1001}, "comment"),
        ({"instances": [10**30], "decision": "reject", "comment": "x"}, "instances"),
        ({"instances": list(range(1, 502)), "decision": "reject", "comment": "x"}, "instances"),
    ],
)
def test_bad_decisions_answer_400_naming_the_field_and_change_nothing(
    project, held, lead, body, named
):
    response = lead.post(f"/api/projects/{project.pk}/quarantine/decisions/", body, format="json")
    assert response.status_code == 400
    assert named in str(response.json())
    assert Instance.objects.filter(quarantined=True, quarantine_rejected_at=None).count() == 3


def test_a_decision_naming_an_image_not_held_changes_nothing(project, held, cases, lead):
    free = Instance.objects.filter(quarantined=False).first()
    response = lead.post(
        f"/api/projects/{project.pk}/quarantine/decisions/",
        {"instances": [held[0].pk, free.pk], "decision": "release", "comment": "ok"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"instances: [{free.pk}]")
    assert Instance.objects.get(pk=held[0].pk).quarantined
    assert not AuditEvent.objects.filter(action="instance.clear_quarantine").exists()


def test_images_of_another_project_cannot_be_decided_from_this_one(
    project, held, make_user, api_for
):
    from annotations.services import projects

    boss = make_user("boss")
    other = projects.create_project(name="Other", created_by=boss)
    projects.add_member(project=other, user=boss, role="lead", added_by=None)
    response = api_for(boss).post(
        f"/api/projects/{other.pk}/quarantine/decisions/",
        {"instances": [held[0].pk], "decision": "release", "comment": "mine"},
        format="json",
    )
    assert response.status_code == 400
    assert Instance.objects.get(pk=held[0].pk).quarantined


def test_only_leads_and_admins_decide(project, held, member, api_for):
    for role in ("annotator", "reviewer", "model_owner"):
        client = api_for(member(f"u-{role}", role))
        response = client.post(
            f"/api/projects/{project.pk}/quarantine/decisions/",
            {"instances": [held[0].pk], "decision": "release", "comment": "x"},
            format="json",
        )
        assert response.status_code == 403, role


def test_upload_report_marks_held_images_with_the_reason(project, synthetic_dir, lead):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = sorted(synthetic_dir.glob("*.dcm"))
    response = lead.post(
        f"/api/projects/{project.pk}/uploads/",
        {
            "files": [
                SimpleUploadedFile("a.dcm", held_copy(files[0])),
                SimpleUploadedFile("b.dcm", files[1].read_bytes()),
            ]
        },
        format="multipart",
    )
    assert response.status_code in (200, 201), response.content
    items = response.json()["items"]
    assert items[0]["quarantined"] is True
    assert items[0]["held_reason"].startswith("Burned In Annotation is YES")
    assert items[1]["quarantined"] is False and "held_reason" not in items[1]


def test_list_is_capped_and_says_how_many_are_held_in_all(project, held, lead, monkeypatch):
    from annotations.api import quarantine_views

    monkeypatch.setattr(quarantine_views, "LIST_LIMIT", 2)
    response = lead.get(f"/api/projects/{project.pk}/quarantine/")
    assert [i["id"] for i in response.json()] == [held[0].pk, held[1].pk]
    assert response["X-Total-Count"] == "3"
