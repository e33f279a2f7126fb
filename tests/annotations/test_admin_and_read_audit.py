"""The admin cannot change clinical data or labels, and admin pages and report reads are on
the audit trail (issue 15, finding 7)."""

from __future__ import annotations

import pytest

from annotations.models import Annotation, AuditEvent, Case, Role
from annotations.services import annotate, projects, queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(project, cases, member):
    reader = member("ann", "annotator")
    case = queue.lease_next_case(project=project, annotator=reader)
    annotation = annotate.start_annotation(case=case, annotator=reader)
    section = project.report_section_keys[0]
    return annotate.submit(
        annotation=annotation,
        actor=reader,
        expected_version=annotation.version,
        findings={key: "absent" for key in project.finding_keys},
        report={section: "No acute findings."},
    )


def _events(action: str, **filters: str) -> int:
    return AuditEvent.objects.filter(action=action, **filters).count()


def test_an_admin_cannot_accept_or_rewrite_an_annotation(admin_client, admin_user, submitted):
    url = f"/admin/annotations/annotation/{submitted.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert _events("admin.view", object_id=str(submitted.pk), actor_username="admin") == 1

    before = Annotation.objects.get(pk=submitted.pk)
    section = next(iter(before.report))
    forged = admin_client.post(
        url,
        {
            "case": before.case_id,
            "annotator": before.annotator_id,
            "status": "accepted",
            "version": before.version,
            "findings": "{}",
            "report": f'{{"{section}": "rewritten by admin"}}',
            "boxes-TOTAL_FORMS": "0",
            "boxes-INITIAL_FORMS": "0",
        },
    )
    assert forged.status_code == 403
    after = Annotation.objects.get(pk=submitted.pk)
    assert (after.status, after.version, after.report) == (
        before.status,
        before.version,
        before.report,
    )
    assert admin_client.post(
        f"/admin/annotations/annotation/{submitted.pk}/delete/"
    ).status_code in (403,)
    assert Annotation.objects.filter(pk=submitted.pk).exists()


def test_clinical_data_is_read_only_in_the_admin(admin_client, cases):
    case = cases[0]
    response = admin_client.post(
        f"/admin/annotations/case/{case.pk}/change/", {"priority": 99, "state": "complete"}
    )
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).priority != 99
    assert admin_client.get("/admin/annotations/patient/add/").status_code == 403
    listing = admin_client.get("/admin/annotations/case/")
    assert listing.status_code == 200
    assert _events("admin.list", actor_username="admin") == 1


def test_admin_changes_to_memberships_are_audited(admin_client, project, make_user):
    user = make_user("rita")
    membership = projects.add_member(project=project, user=user, role=Role.ANNOTATOR, added_by=None)
    response = admin_client.post(
        f"/admin/annotations/membership/{membership.pk}/change/",
        {"project": project.pk, "user": user.pk, "role": Role.REVIEWER},
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="admin.change")
    assert event.object_id == str(membership.pk) and event.project_id == project.pk
    assert event.actor_username == "admin"
    assert event.detail["change"] == [{"changed": {"fields": ["Role"]}}]


def test_reading_a_report_through_the_api_and_the_review_queue_is_audited(
    project, member, api_for, submitted
):
    reviewer = api_for(member("rev", "reviewer"))
    response = reviewer.get(f"/api/annotations/{submitted.pk}/")
    assert response.status_code == 200
    assert _events("annotation.view", object_id=str(submitted.pk), actor_username="rev") == 1

    queue_page = reviewer.get(f"/api/projects/{project.pk}/review-queue/")
    assert queue_page.status_code == 200
    assert [row["id"] for row in queue_page.json()["results"]] == [submitted.pk]
    event = AuditEvent.objects.get(action="annotation.review_queue")
    assert event.actor_username == "rev" and event.project_id == project.pk
    assert event.detail == {"annotation_ids": [submitted.pk]}
