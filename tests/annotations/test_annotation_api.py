"""Annotating through the API: ETag / If-Match, validation, submit, review, audit."""

from __future__ import annotations

import pytest

from annotations.models import Annotation, AnnotationRevision, AuditEvent, Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(member):
    return member("alice", "annotator")


@pytest.fixture
def leased(project, alice, cases, api_for):
    client = api_for(alice)
    response = client.post(f"/api/projects/{project.pk}/next-case/")
    assert response.status_code == 200, response.content
    return client, response.json()


def _open_annotation(client, case_id):
    response = client.get(f"/api/cases/{case_id}/annotation/")
    assert response.status_code == 200
    return response.json(), response["ETag"]


def _box(case, **overrides):
    instance = case["series"][0]["instances"][0]
    box = {
        "instance_id": instance["id"],
        "x": 10,
        "y": 12,
        "width": 30,
        "height": 20,
        "finding": "nodule",
    }
    box.update(overrides)
    return box


def test_next_case_gives_the_case_with_clinical_context_and_images(leased):
    _, case = leased
    assert case["leased_to"] == "alice"
    assert case["indication"]
    assert case["series"][0]["instances"][0]["rows"] == 128
    assert all({"code", "value", "unit", "out_of_range"} <= set(lab) for lab in case["lab_results"])


def test_write_without_if_match_is_refused_with_428(leased):
    client, case = leased
    _open_annotation(client, case["id"])
    response = client.put(
        f"/api/cases/{case['id']}/annotation/", {"findings": {"nodule": "present"}}, format="json"
    )
    assert response.status_code == 428
    assert "If-Match" in response.json()["message"]


def test_stale_write_is_refused_with_412_and_nothing_is_overwritten(leased):
    client, case = leased
    _, etag = _open_annotation(client, case["id"])
    first = client.put(
        f"/api/cases/{case['id']}/annotation/",
        {"findings": {"nodule": "present"}},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert first.status_code == 200
    assert first["ETag"] != etag
    stale = client.put(
        f"/api/cases/{case['id']}/annotation/",
        {"findings": {"nodule": "absent"}},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert stale.status_code == 412
    assert stale.json()["error"] == "precondition_failed"
    assert Annotation.objects.get().findings == {"nodule": "present"}


def test_draft_saves_findings_report_and_boxes_and_reads_back(leased):
    client, case = leased
    _, etag = _open_annotation(client, case["id"])
    body = {
        "findings": {"nodule": "present", "effusion": "uncertain"},
        "report": {"findings": "A 1 cm nodule.", "impression": "Nodule."},
        "boxes": [_box(case), _box(case, finding="mass", origin="suggested_edited")],
    }
    saved = client.put(
        f"/api/cases/{case['id']}/annotation/", body, format="json", HTTP_IF_MATCH=etag
    )
    assert saved.status_code == 200, saved.content
    again, _ = _open_annotation(client, case["id"])
    assert again["findings"] == body["findings"]
    assert again["report"] == body["report"]
    assert [(b["finding"], b["origin"]) for b in again["boxes"]] == [
        ("nodule", "drawn"),
        ("mass", "suggested_edited"),
    ]
    assert again["status"] == "draft"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"findings": {"fracture": "present"}}, "Unknown finding 'fracture'"),
        ({"findings": {"nodule": "maybe"}}, "must be one of"),
        ({"report": {"conclusion": "x"}}, "Unknown report section 'conclusion'"),
        (
            {
                "boxes": [
                    {
                        "instance_id": 999999,
                        "x": 1,
                        "y": 1,
                        "width": 2,
                        "height": 2,
                        "finding": "nodule",
                    }
                ]
            },
            "not part of this case",
        ),
        ({"boxes": "nope"}, "boxes"),
        (
            {
                "boxes": [
                    {
                        "instance_id": 1,
                        "x": "NaN",
                        "y": 1,
                        "width": 2,
                        "height": 2,
                        "finding": "nodule",
                    }
                ]
            },
            "x",
        ),
    ],
)
def test_invalid_annotation_is_refused_with_a_message_naming_the_fault(leased, body, needle):
    client, case = leased
    _, etag = _open_annotation(client, case["id"])
    response = client.put(
        f"/api/cases/{case['id']}/annotation/", body, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 400
    assert needle in response.json()["message"]
    assert Annotation.objects.get().version == 1


def test_box_outside_the_image_is_refused(leased):
    client, case = leased
    _, etag = _open_annotation(client, case["id"])
    response = client.put(
        f"/api/cases/{case['id']}/annotation/",
        {"boxes": [_box(case, x=120, width=30)]},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert response.status_code == 400
    assert "outside the 128x128 image" in response.json()["message"]


def test_submit_freezes_a_revision_completes_the_case_and_locks_the_draft(leased):
    client, case = leased
    _, etag = _open_annotation(client, case["id"])
    saved = client.put(
        f"/api/cases/{case['id']}/annotation/",
        {"boxes": [_box(case)], "findings": {"nodule": "present"}},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    submitted = client.post(
        f"/api/cases/{case['id']}/annotation/submit/", HTTP_IF_MATCH=saved["ETag"]
    )
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "submitted"
    revision = AnnotationRevision.objects.get()
    assert revision.content["findings"] == {"nodule": "present"}
    assert len(revision.content["boxes"]) == 1
    stored_case = Case.objects.get(pk=case["id"])
    assert stored_case.state == Case.State.COMPLETE
    assert stored_case.leased_to is None
    late = client.put(
        f"/api/cases/{case['id']}/annotation/",
        {"findings": {}},
        format="json",
        HTTP_IF_MATCH=submitted["ETag"],
    )
    assert late.status_code == 409


def test_reviewer_returns_with_comment_then_accepts_resubmission(leased, member, api_for):
    client, case = leased
    _, etag = _open_annotation(client, case["id"])
    submitted = client.post(f"/api/cases/{case['id']}/annotation/submit/", HTTP_IF_MATCH=etag)
    reviewer = api_for(member("rita", "reviewer"))
    annotation_id = submitted.json()["id"]
    queue_page = reviewer.get(f"/api/projects/{case['project']}/review-queue/").json()
    assert [a["id"] for a in queue_page["results"]] == [annotation_id]
    no_comment = reviewer.post(
        f"/api/annotations/{annotation_id}/review/",
        {"decision": "return"},
        format="json",
        HTTP_IF_MATCH=submitted["ETag"],
    )
    assert no_comment.status_code == 400
    returned = reviewer.post(
        f"/api/annotations/{annotation_id}/review/",
        {"decision": "return", "comment": "Add the effusion"},
        format="json",
        HTTP_IF_MATCH=submitted["ETag"],
    )
    assert returned.status_code == 200
    assert returned.json()["status"] == "returned"
    again = client.post(f"/api/projects/{case['project']}/next-case/").json()
    assert again["id"] == case["id"]
    resubmitted = client.post(
        f"/api/cases/{case['id']}/annotation/submit/", HTTP_IF_MATCH=returned["ETag"]
    )
    assert resubmitted.status_code == 200
    accepted = reviewer.post(
        f"/api/annotations/{annotation_id}/review/",
        {"decision": "accept"},
        format="json",
        HTTP_IF_MATCH=resubmitted["ETag"],
    )
    assert accepted.json()["status"] == "accepted"
    assert AnnotationRevision.objects.filter(annotation_id=annotation_id).count() == 2


def test_every_case_view_is_audited_with_who_and_from_where(leased):
    client, case = leased
    client.get(f"/api/cases/{case['id']}/", REMOTE_ADDR="10.1.2.3")
    event = AuditEvent.objects.filter(action="case.view", object_id=str(case["id"])).first()
    assert event.actor_username == "alice"
    assert event.ip_address == "10.1.2.3"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_skip_needs_a_reason_and_frees_the_case(leased):
    client, case = leased
    assert client.post(f"/api/cases/{case['id']}/skip/", {}, format="json").status_code == 400
    assert (
        client.post(
            f"/api/cases/{case['id']}/skip/", {"reason": "motion blur"}, format="json"
        ).status_code
        == 204
    )
    assert Case.objects.get(pk=case["id"]).leased_to is None
    nxt = client.post(f"/api/projects/{case['project']}/next-case/")
    assert nxt.json()["id"] != case["id"]


@pytest.mark.parametrize(
    "if_match",
    ["*", '"annotation-0-v1"', "garbage", '"annotation-1-v99999999999999999999999"'],
)
def test_if_match_of_another_version_wildcard_or_garbage_is_a_failed_precondition(leased, if_match):
    client, case = leased
    _open_annotation(client, case["id"])
    response = client.put(
        f"/api/cases/{case['id']}/annotation/",
        {"findings": {"nodule": "present"}},
        format="json",
        HTTP_IF_MATCH=if_match,
    )
    assert response.status_code == 412
    assert Annotation.objects.get().findings == {}


def test_next_case_carries_the_working_copy_and_submit_takes_final_content(leased):
    client, case = leased
    annotation = case["annotation"]
    assert annotation["status"] == "draft" and annotation["etag"]
    body = {
        "findings": {"mass": "present"},
        "report": {"impression": "Mass."},
        "boxes": [_box(case, finding="mass")],
    }
    submitted = client.post(
        f"/api/cases/{case['id']}/annotation/submit/",
        body,
        format="json",
        HTTP_IF_MATCH=annotation["etag"],
    )
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["version"] == annotation["version"] + 1
    revision = AnnotationRevision.objects.get()
    assert revision.content["findings"] == {"mass": "present"}
    assert [b["finding"] for b in revision.content["boxes"]] == ["mass"]


def test_submit_with_invalid_content_changes_nothing(leased):
    client, case = leased
    etag = case["annotation"]["etag"]
    bad = client.post(
        f"/api/cases/{case['id']}/annotation/submit/",
        {"findings": {"mass": "definitely"}},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert bad.status_code == 400
    stored = Annotation.objects.get()
    assert (stored.status, stored.version, stored.findings) == ("draft", 1, {})
    assert not AnnotationRevision.objects.exists()


def test_next_case_with_exclude_leases_a_second_case_and_bad_exclude_is_400(leased):
    client, case = leased
    url = f"/api/projects/{case['project']}/next-case/"
    ahead = client.post(f"{url}?exclude={case['id']}")
    assert ahead.status_code == 200 and ahead.json()["id"] != case["id"]
    assert client.post(f"{url}?exclude=abc").status_code == 400
    assert client.post(f"{url}?exclude=99999999999999999999999").status_code == 400
    third = client.post(f"{url}?exclude={case['id']},{ahead.json()['id']}")
    assert third.status_code == 409
