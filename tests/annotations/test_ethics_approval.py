"""Ethics approval (issue 17, section 3): without a current approval a project that needs one is
read-only for everyone but admins (no ingest, no annotation, no training) and the refusal names
the approval that lapsed; leads are warned on the dashboard 30 days before expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.utils import timezone

from active_learning.ml import synthetic
from active_learning.models import RetrainingCycle
from annotations.models import AuditEvent, Case, Project
from annotations.services import annotate, ethics, ingest, projects, queue
from tests.conftest import ingest_synthetic

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def _first_file(directory) -> bytes:
    return (directory / synthetic.load_manifest(directory)[0]["file"]).read_bytes()


def _approve(project: Project, *, days_left: int, reference: str = "EC-2026-041"):
    today = timezone.localdate()
    return ethics.record_approval(
        project=project,
        committee="Cantonal Ethics Committee",
        reference=reference,
        approved_on=today - timedelta(days=400),
        expires_on=today + timedelta(days=days_left),
        scope="Retrospective chest radiographs of adults, with lab values",
        actor=None,
        document=b"%PDF-1.4 approval letter",
        document_name="approval.pdf",
    )


@pytest.fixture
def expired(project, cases) -> Project:
    """The fixture's project with its cases, now needing an approval whose term ended
    yesterday."""
    _approve(project, days_left=-1)
    Project.objects.filter(pk=project.pk).update(requires_ethics_approval=True)
    project.refresh_from_db()
    return project


def test_an_expired_approval_blocks_ingest_and_annotation(
    expired, cases, member, api_for, synthetic_dir
):
    lead = member("lena", "lead")
    annotator = member("ann", "annotator")
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()

    # Annotation: the queue hands nothing out, with the refusal naming the approval.
    answer = api_for(annotator).post(f"/api/projects/{expired.pk}/next-case/")
    assert answer.status_code == 403
    body = answer.json()
    assert body["error"] == "ethics_approval_required"
    assert "EC-2026-041" in body["message"] and yesterday in body["message"]
    assert "Cantonal Ethics Committee" in body["message"]
    assert body["expired_on"] == yesterday

    # Ingest: an upload by a lead is refused whole, before anything is stored.
    dicom = _first_file(synthetic_dir)
    before = Case.objects.filter(project=expired).count()
    upload = api_for(lead).post(
        f"/api/projects/{expired.pk}/uploads/",
        {"files": [SimpleUploadedFile("x.dcm", dicom)]},
        format="multipart",
    )
    assert upload.status_code == 403
    assert upload.json()["error"] == "ethics_approval_required"
    assert "no images or clinical data may be imported" in upload.json()["message"]
    # The listener, the command and a PACS pull ingest without a user: refused too.
    with pytest.raises(ethics.EthicsApprovalRequired, match="EC-2026-041"):
        ingest.ingest_dicom_bytes(project=expired, data=dicom, source_name="C-STORE 1")
    assert Case.objects.filter(project=expired).count() == before
    assert not expired.ingest_batches.exists()

    # Clinical context is ingest too.
    clinical = api_for(lead).post(
        f"/api/projects/{expired.pk}/clinical-imports/",
        {"file": SimpleUploadedFile("c.json", b"[]")},
        format="multipart",
    )
    assert clinical.status_code == 403


def test_work_in_progress_stops_when_the_approval_lapses(project, cases, member, api_for):
    annotator = member("ann", "annotator")
    approval = _approve(project, days_left=10)
    Project.objects.filter(pk=project.pk).update(requires_ethics_approval=True)
    project.refresh_from_db()
    case = queue.lease_next_case(project=project, annotator=annotator)
    draft = annotate.start_annotation(case=case, annotator=annotator)
    client = api_for(annotator)

    # The committee withdraws it in the middle of the annotation: the next save is refused.
    ethics.revoke_approval(approval=approval, reason="suspended pending audit", actor=None)
    saved = client.put(
        f"/api/cases/{case.pk}/annotation/",
        {"findings": {"nodule": "present"}},
        format="json",
        HTTP_IF_MATCH=draft.etag,
    )
    assert saved.status_code == 403
    assert "revoked" in saved.json()["message"]
    assert "suspended pending audit" in saved.json()["message"]
    submitted = client.post(
        f"/api/cases/{case.pk}/annotation/submit/", {}, format="json", HTTP_IF_MATCH=draft.etag
    )
    assert submitted.status_code == 403
    # Reading stays allowed: the project is read-only, not closed.
    assert client.get(f"/api/cases/{case.pk}/").status_code == 200

    # A new approval makes it writable again.
    _approve(project, days_left=365, reference="EC-2026-099")
    assert (
        client.put(
            f"/api/cases/{case.pk}/annotation/",
            {"findings": {"nodule": "present"}},
            format="json",
            HTTP_IF_MATCH=draft.etag,
        ).status_code
        == 200
    )


def test_no_training_without_a_current_approval(expired, member, api_for):
    owner = member("mo", "model_owner")
    answer = api_for(owner).post(f"/api/projects/{expired.pk}/cycles/")
    assert answer.status_code == 403
    assert "no model may be trained" in answer.json()["message"]
    assert not RetrainingCycle.objects.filter(project=expired).exists()


def test_a_cycle_queued_before_the_approval_lapsed_fails_naming_it(project, cases):
    from active_learning.services import cycles

    _approve(project, days_left=5)
    Project.objects.filter(pk=project.pk).update(requires_ethics_approval=True)
    project.refresh_from_db()
    cycle = cycles.trigger_cycle(project=project)
    project.ethics_approvals.update(expires_on=timezone.localdate() - timedelta(days=1))
    assert cycles.run_training(cycle.pk, owner="test") is False
    cycle.refresh_from_db()
    assert cycle.status == RetrainingCycle.Status.FAILED
    assert "EC-2026-041" in cycle.error


def test_admins_may_still_work_in_a_read_only_project(expired, synthetic_dir, make_user):
    admin = make_user("root", is_superuser=True)
    result = ingest.ingest_dicom_bytes(
        project=expired,
        data=_first_file(synthetic_dir),
        source_name="x",
        actor=admin,
    )
    assert result.instance.pk


def test_a_project_without_any_approval_is_read_only_and_says_so(cases, member, make_user):
    owner = make_user("creator")
    strict = projects.create_project(name="Strict", created_by=owner, requires_ethics_approval=True)
    annotator = make_user("a2")
    projects.add_member(project=strict, user=annotator, role="annotator", added_by=None)
    with pytest.raises(ethics.EthicsApprovalRequired, match="no ethics approval recorded"):
        queue.lease_next_case(project=strict, annotator=annotator)


def test_new_projects_take_the_rule_from_the_setting(make_user):
    owner = make_user("o")
    assert not projects.create_project(name="A", created_by=owner).requires_ethics_approval
    with override_settings(MEDLOOP_REQUIRE_ETHICS_APPROVAL=True):
        assert projects.create_project(name="B", created_by=owner).requires_ethics_approval


def test_leads_see_a_warning_on_the_dashboard_30_days_before_expiry(project, member):
    lead = member("lena", "lead")
    Project.objects.filter(pk=project.pk).update(requires_ethics_approval=True)
    approval = _approve(project, days_left=45)
    client = Client()
    assert client.login(username="lena", password=PASSWORD)
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="ethics-notice"' not in page

    type(approval).objects.filter(pk=approval.pk).update(
        expires_on=timezone.localdate() + timedelta(days=30)
    )
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="ethics-notice"' in page
    expiry = (timezone.localdate() + timedelta(days=30)).isoformat()
    assert f"Ethics approval EC-2026-041 (Cantonal Ethics Committee) expires on {expiry}" in page
    assert "in 30 days" in page
    assert lead.username  # the warning is for the project's lead

    type(approval).objects.filter(pk=approval.pk).update(
        expires_on=timezone.localdate() - timedelta(days=2)
    )
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert "read-only" in page and 'role="alert"' in page


def test_a_lead_records_an_approval_with_its_document(project, member, api_for):
    lead = member("lena", "lead")
    Project.objects.filter(pk=project.pk).update(requires_ethics_approval=True)
    client = api_for(lead)
    assert client.get(f"/api/projects/{project.pk}/ethics/").json()["read_only"] is True
    letter = b"%PDF-1.4\nThe committee approves study EC-7.\n"
    today = timezone.localdate()
    answer = client.post(
        f"/api/projects/{project.pk}/ethics/approvals/",
        {
            "committee": "Hospital Research Ethics Board",
            "reference": "EC-7",
            "approved_on": (today - timedelta(days=3)).isoformat(),
            "expires_on": (today + timedelta(days=700)).isoformat(),
            "scope": "Adults; chest radiographs; laboratory values",
            "document": SimpleUploadedFile("approval letter.pdf", letter),
        },
        format="multipart",
    )
    assert answer.status_code == 201, answer.json()
    recorded = answer.json()
    assert recorded["document_name"] == "approval letter.pdf"
    state = client.get(f"/api/projects/{project.pk}/ethics/").json()
    assert state["read_only"] is False and state["current"]["reference"] == "EC-7"
    document = client.get(f"/api/ethics-approvals/{recorded['id']}/document/")
    assert document.status_code == 200
    assert b"".join(document.streaming_content) == letter
    actions = set(AuditEvent.objects.filter(project_id=project.pk).values_list("action", flat=True))
    assert {"ethics.approval.record", "ethics.document.view"} <= actions


def test_an_approval_cannot_expire_before_it_was_given(project):
    with pytest.raises(Exception, match="cannot expire before"):
        ethics.record_approval(
            project=project,
            committee="C",
            reference="R",
            approved_on="2026-05-01",
            expires_on="2026-04-01",
            scope="s",
            actor=None,
        )


def test_only_admins_switch_the_rule_off(project, member, api_for):
    lead = member("lena", "lead")
    answer = api_for(lead).patch(
        f"/api/projects/{project.pk}/ethics/", {"requires_ethics_approval": False}, format="json"
    )
    assert answer.status_code == 403


def test_the_demo_project_has_a_current_approval(settings, tmp_path):
    from medloop.platform import demo

    settings.VAR_DIR = tmp_path
    settings.MEDLOOP_REQUIRE_ETHICS_APPROVAL = True
    summary = demo.seed_demo(count=2, size=64)
    assert summary.project.requires_ethics_approval
    state = ethics.status_of(summary.project)
    assert not state.read_only and state.current is not None
    assert summary.cases_total == 2
    # Seeding again (every `make run`) keeps the one approval.
    demo.seed_demo(count=2, size=64)
    assert summary.project.ethics_approvals.count() == 1


def test_cases_ingested_before_keep_being_readable(expired, cases, member, api_for):
    reviewer = member("rev", "reviewer")
    assert api_for(reviewer).get(f"/api/projects/{expired.pk}/cases/").status_code == 200


def test_ingest_synthetic_helper_still_works_for_fixtures(project, synthetic_dir):
    # Fixtures' projects need no approval (MEDLOOP_REQUIRE_ETHICS_APPROVAL is off in tests).
    assert len(ingest_synthetic(project, synthetic_dir, count=1)) == 1
