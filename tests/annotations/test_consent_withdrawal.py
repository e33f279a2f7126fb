"""Consent and withdrawal (issue 17, section 2): a withdrawal in the middle of an annotation
takes the case out of the queue, the exports and the next label snapshot at once; the model
version trained on the patient's labels is flagged; the purge deletes the files; the data-use
report lists who viewed the patient's data."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from pypdf import PdfReader

from active_learning.ml import synthetic
from active_learning.models import ModelVersion
from active_learning.services import withdrawals
from annotations.models import AuditEvent, Case, Consent, Patient
from annotations.services import annotate, consent, exports, projects, queue
from annotations.services.exports.labels import current_labels
from annotations.services.ingest import storage_path
from tests.support.labels import submit_ground_truth

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(project, cases, member, synthetic_dir):
    """Case ``withdrawing`` needs two reads: the first reader submitted it (a label a model
    version was trained on), the second reader is annotating it when the patient withdraws."""
    first, second = member("first", "annotator"), member("second", "annotator")
    lead = member("lena", "lead")
    withdrawing = cases[0]
    Case.objects.filter(pk=withdrawing.pk).update(required_reads=2, priority=1.0)
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=first, count=2
    )
    snapshot = [
        list(pair)
        for pair in withdrawals.training_annotations(project).values_list("pk", "version")
    ]
    version = ModelVersion.objects.create(
        project=project, number=1, label_snapshot=snapshot, label_count=len(snapshot)
    )
    leased = queue.lease_next_case(project=project, annotator=second)
    assert leased.pk == withdrawing.pk
    draft = annotate.start_annotation(case=leased, annotator=second)
    source_id = synthetic.load_manifest(synthetic_dir)[0]["patient_id"]
    return {
        "case": withdrawing,
        "draft": draft,
        "version": version,
        "second": second,
        "lead": lead,
        "source_id": source_id,
    }


def test_a_withdrawal_mid_annotation_takes_effect_everywhere_at_once(
    project, cases, scene, api_for, settings
):
    case, draft, second = scene["case"], scene["draft"], scene["second"]
    workspace = api_for(second)
    assert workspace.get(f"/api/cases/{case.pk}/").status_code == 200  # viewed: audited
    assert any(label.case.pk == case.pk for label in current_labels(project).labels)

    answer = api_for(scene["lead"]).post(
        f"/api/projects/{project.pk}/consent/",
        {"patient_id": scene["source_id"], "status": "withdrawn", "date": "2026-12-01"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["cases"] == [case.pk] and answer.json()["leases_released"] == 1
    patient = Patient.objects.get(studies__case=case)
    assert patient.consent_status == Consent.WITHDRAWN and patient.consent_source == "lead"

    # The open workspace learns it on its next request.
    saved = workspace.put(
        f"/api/cases/{case.pk}/annotation/",
        {"findings": {"nodule": "present"}},
        format="json",
        HTTP_IF_MATCH=draft.etag,
    )
    assert saved.status_code == 410
    assert saved.json()["error"] == "consent_withdrawn"
    assert "withdrew consent" in saved.json()["message"]
    assert workspace.get(f"/api/cases/{case.pk}/").status_code == 410
    # Out of the queue, for everyone, with the lease released.
    case.refresh_from_db()
    assert case.leased_to_id is None
    other = api_for(projects_member(project, "third"))
    handed = other.post(f"/api/projects/{project.pk}/next-case/")
    assert handed.status_code in (200, 204)
    assert handed.status_code == 204 or handed.json()["id"] != case.pk
    # Out of the exports, and of the next snapshot; the version it trained is flagged.
    assert all(label.case.pk != case.pk for label in current_labels(project).labels)
    out = io.BytesIO()
    written = exports.export_labels(project=project, format_name="coco", out=out, version=1)
    assert all(label.case.pk != case.pk for label in written.labels)
    assert not withdrawals.training_annotations(project).filter(case=case).exists()
    listed = api_for(scene["lead"]).get(f"/api/projects/{project.pk}/model-versions/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    flagged = {row["number"]: row["trained_on_withdrawn_data"] for row in rows}
    assert flagged == {1: True}
    assert AuditEvent.objects.filter(
        action="model_version.trained_on_withdrawn_data", object_id=str(scene["version"].pk)
    ).exists()
    withdrawal_event = AuditEvent.objects.get(action="patient.withdraw")
    assert withdrawal_event.detail["pseudonym"] == patient.pseudonym
    assert scene["source_id"] not in str(withdrawal_event.detail)

    # The purge, after the retention, deletes the files and the clinical text.
    files = [storage_path(i.file_path) for i in case.study.series.first().instances.all()]
    assert all(f.exists() for f in files)
    settings.MEDLOOP_WITHDRAWAL_RETENTION_DAYS = 7
    assert consent.purge_due() == []  # within the retention
    assert consent.purge_due(now=timezone.now() + timedelta(days=8)) == [patient.pk]
    assert not any(f.exists() for f in files)
    assert not Case.objects.filter(pk=case.pk).exists()  # and its clinical text, labs, labels
    patient.refresh_from_db()
    assert patient.purged_at is not None
    purge_event = AuditEvent.objects.get(action="patient.purge")
    assert purge_event.detail["pseudonym"] == patient.pseudonym
    assert purge_event.detail["files_deleted"] == len(files)


def projects_member(project, username):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="x")
    projects.add_member(project=project, user=user, role="annotator", added_by=None)
    return user


def test_the_data_use_report_lists_a_viewer_from_the_audit_trail(project, scene, api_for):
    case = scene["case"]
    assert api_for(scene["second"]).get(f"/api/cases/{case.pk}/").status_code == 200
    consent.withdraw(patient=Patient.objects.get(studies__case=case), source="lead")
    report = api_for(scene["lead"]).post(
        f"/api/projects/{project.pk}/data-use-report/",
        {"patient_id": scene["source_id"]},
        format="json",
    )
    assert report.status_code == 200, report.json()
    body = report.json()
    viewers = {(row["user"], row["action"]) for row in body["viewed_by"]}
    assert ("second", "case.view") in viewers
    assert body["patient"]["withdrawn"] is True and body["patient"]["purged"] is False
    assert [c["case"] for c in body["cases"]] == [case.pk]
    assert body["cases"][0]["images"][0]["file_held"] is True
    assert [v["model_version"] for v in body["model_versions"]] == [1]
    # The identifier was hashed, never stored: the audit event names the pseudonym only.
    event = AuditEvent.objects.get(action="patient.data_use_report")
    assert scene["source_id"] not in str(event.detail)
    # The same report as PDF names the viewer too.
    document = api_for(scene["lead"]).post(
        f"/api/projects/{project.pk}/data-use-report/",
        {"pseudonym": body["patient"]["pseudonym"], "format": "pdf"},
        format="json",
    )
    assert document.status_code == 200 and document["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(document.content)).pages)
    assert "second" in text and "case.view" in text and body["patient"]["pseudonym"] in text


@override_settings(MEDLOOP_WITHDRAWAL_RETENTION_DAYS=0)
def test_retention_zero_purges_at_the_next_run(project, scene):
    patient = Patient.objects.get(studies__case=scene["case"])
    consent.withdraw(patient=patient, source="fhir")
    assert consent.purge_due() == [patient.pk]
    assert consent.purge_due() == []  # idempotent


def test_unknown_consent_is_labelled_only_where_the_project_allows(project, cases, member):
    annotator = member("ann", "annotator")
    assert queue.lease_next_case(project=project, annotator=annotator) is not None
    type(project).objects.filter(pk=project.pk).update(label_unknown_consent=False)
    project.refresh_from_db()
    other = member("ann2", "annotator")
    assert queue.lease_next_case(project=project, annotator=other) is None
    patient = Patient.objects.get(studies__case=cases[5])
    consent.set_consent(patient=patient, status="consented", source="csv", actor=None)
    assert queue.lease_next_case(project=project, annotator=other).pk == cases[5].pk
    event = AuditEvent.objects.filter(action="patient.consent").latest("id")
    assert event.detail["status"] == "consented" and event.detail["source"] == "csv"


def test_a_withdrawal_is_final(project, cases):
    patient = Patient.objects.get(studies__case=cases[1])
    consent.withdraw(patient=patient, source="lead")
    with pytest.raises(Exception, match="withdrawal is final"):
        consent.set_consent(patient=patient, status="consented", source="lead")


def test_a_clinical_csv_records_consent_and_withdrawal(project, cases, synthetic_dir):
    from annotations.services.clinical_import import import_clinical_context

    manifest = synthetic.load_manifest(synthetic_dir)
    csv = (
        "patient_id,consent,consent_date\n"
        f"{manifest[2]['patient_id']},consented,2024-01-10\n"
        f"{manifest[3]['patient_id']},withdrawn,2024-02-01\n"
        f"{manifest[4]['patient_id']},maybe,\n"
    )
    batch = import_clinical_context(project=project, data=csv.encode(), file_name="c.csv")
    assert [line["status"] for line in batch.items].count("refused") == 1
    consented = Patient.objects.get(studies__case=cases[2])
    withdrawn = Patient.objects.get(studies__case=cases[3])
    assert (consented.consent_status, consented.consent_source) == ("consented", "csv")
    assert consented.consent_date < date(2024, 1, 10)  # shifted like the patient's images
    assert withdrawn.consent_status == "withdrawn" and withdrawn.withdrawn_at is not None


def test_the_data_protection_officer_sees_consent_and_reports_and_nothing_else(
    project, scene, api_for, member
):
    """The officer lists every patient's consent and asks for a patient's report (JSON and
    PDF), but may not open the case, its images or labels, label, export or train."""
    case = scene["case"]
    officer = api_for(member("olga", "dpo"))
    consent.withdraw(patient=Patient.objects.get(studies__case=case), source="lead")
    listed = officer.get(f"/api/projects/{project.pk}/consent/?status=withdrawn")
    assert listed.status_code == 200, listed.json()
    patient = Patient.objects.get(studies__case=case)
    assert [
        (row["pseudonym"], row["consent_status"], row["case_count"]) for row in listed.json()
    ] == [(patient.pseudonym, "withdrawn", 1)]
    assert officer.get(f"/api/projects/{project.pk}/consent/?status=maybe").status_code == 400
    report = officer.post(
        f"/api/projects/{project.pk}/data-use-report/",
        {"patient_id": scene["source_id"]},
        format="json",
    )
    assert report.status_code == 200 and report.json()["patient"]["withdrawn"] is True
    document = officer.post(
        f"/api/projects/{project.pk}/data-use-report/",
        {"pseudonym": patient.pseudonym, "format": "pdf"},
        format="json",
    )
    assert document.status_code == 200 and document["Content-Type"] == "application/pdf"
    image = case.study.series.first().instances.first()
    refused = [
        officer.get(f"/api/cases/{case.pk}/"),
        officer.get(f"/api/instances/{image.pk}/file/"),
        officer.get(f"/api/instances/{image.pk}/thumbnail.png"),
        officer.get(f"/api/cases/{case.pk}/suggestions/"),
        officer.get(f"/api/projects/{project.pk}/cases/"),
        officer.post(f"/api/projects/{project.pk}/next-case/"),
        officer.get(f"/api/projects/{project.pk}/exports/coco/"),
        officer.post(f"/api/projects/{project.pk}/cycles/"),
        officer.post(
            f"/api/projects/{project.pk}/consent/",
            {"pseudonym": patient.pseudonym, "status": "consented"},
            format="json",
        ),
    ]
    assert [answer.status_code for answer in refused] == [403] * len(refused)
    assert AuditEvent.objects.filter(action="patient.consent_list").exists()


def test_after_the_purge_nothing_of_the_patient_remains_but_the_withdrawal_and_the_trail(
    project, scene, api_for, settings, tmp_path
):
    """Every stored copy of the patient's data, on disk, in the cache and in the database, is
    gone after the purge; the Patient row (the withdrawal record) and the audit trail, which
    names the patient by pseudonym only, remain, and the data-use report still tells who viewed
    the data and which versions learnt from it."""
    from django.apps import apps
    from django.core.cache import cache
    from django.core.management import call_command

    from active_learning.models import ImageFeatures, Suggestion
    from active_learning.services import explanations
    from annotations.models import Annotation, Instance, Series, Study
    from annotations.series_stacks import CACHE_PREFIX

    settings.MODELS_DIR = tmp_path / "models"
    marker = "PURGEMARKER7731"
    case, draft, second, version = scene["case"], scene["draft"], scene["second"], scene["version"]
    reader = api_for(second)
    # The reader's report draft and the clinical text hold the marker.
    annotate.save_draft(
        annotation=draft,
        actor=second,
        expected_version=draft.version,
        report={section: f"{marker} seen" for section in project.report_section_keys},
        findings={"nodule": "present"},
    )
    Case.objects.filter(pk=case.pk).update(indication=f"cough {marker}", history=marker)
    # What reading leaves behind: renderings, thumbnails, the slice headers, suggestions with
    # their embedding, image features and an explanation overlay.
    series = case.study.series.first()
    images = list(series.instances.all())
    assert reader.get(f"/api/cases/{case.pk}/").status_code == 200
    assert reader.get(f"/api/instances/{images[0].pk}/thumbnail.png").status_code == 200
    assert reader.get(f"/api/instances/{images[0].pk}/render.png").status_code == 200
    assert reader.get(f"/api/cases/{case.pk}/series/{series.pk}/stack/").status_code == 200
    assert cache.get(CACHE_PREFIX + images[0].sha256) is not None
    Suggestion.objects.create(
        case=case,
        model_version=version,
        report_draft={"impression": marker},
        finding_probabilities={"nodule": 0.7},
        embedding=[0.1, 0.2],
    )
    ImageFeatures.objects.create(case=case, vector=[0.3, 0.4])
    overlay = explanations._cache_path(version, case, "nodule")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.write_bytes(b"png")
    renders = settings.STORAGE_DIR / "renders"
    assert any(p.is_file() for p in renders.rglob("*"))
    study = case.study
    uids = [study.study_instance_uid, series.series_instance_uid] + [
        i.sop_instance_uid for i in images
    ]
    files = [storage_path(i.file_path) for i in images]
    ids = {
        Case: {case.pk},
        Study: {study.pk},
        Series: {series.pk},
        Instance: {i.pk for i in images},
        Annotation: set(Annotation.objects.filter(case=case).values_list("pk", flat=True)),
    }
    patient = Patient.objects.get(studies__case=case)
    # Verification's frozen copies: a locked test set holding the case's reference label and a
    # validation report holding its reference report and draft, beside another case's.
    from active_learning.models import LockedTestSet, ValidationReport

    other = {"case_id": case.pk + 10_000, "study_uid": "2.25.1", "label": {"report": {"x": "kept"}}}
    locked = LockedTestSet.objects.create(
        project=project,
        version=1,
        content_hash="0" * 64,
        content={
            "cases": [
                {
                    "case_id": case.pk,
                    "study_uid": study.study_instance_uid,
                    "label": {"report": {"impression": marker}},
                },
                other,
            ]
        },
        case_count=2,
        labelled_count=2,
        reason="test",
    )
    report = ValidationReport.objects.create(
        project=project,
        model_version=version,
        test_set=locked,
        status="succeeded",
        result={
            "outcomes": {
                "case_ids": [case.pk, other["case_id"]],
                "report_texts": {"references": [marker, "kept"], "drafts": [marker, "kept"]},
            }
        },
    )

    settings.MEDLOOP_WITHDRAWAL_RETENTION_DAYS = 0
    consent.withdraw(patient=patient, source="lead")
    assert consent.purge_due() == [patient.pk]

    # Files: the images, every rendering and thumbnail, the overlay.
    assert not any(f.exists() for f in files)
    assert not any(p.is_file() for p in renders.rglob("*"))
    assert not overlay.exists()
    assert cache.get(CACHE_PREFIX + images[0].sha256) is None
    # Rows: nothing refers to the patient's studies, series, images, cases or labels.
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and field.related_model in ids:
                left = model._default_manager.filter(
                    **{f"{field.attname}__in": ids[field.related_model]}
                )
                assert not left.exists(), f"{model.__name__}.{field.name} still refers to them"
    for model, pks in ids.items():
        assert not model.objects.filter(pk__in=pks).exists(), model.__name__
    # Every row of the database, as dumpdata writes it: no marker, no UID of the patient's.
    dump = io.StringIO()
    call_command("dumpdata", exclude=["annotations.auditevent"], stdout=dump)
    for needle in [marker, *uids]:
        assert needle not in dump.getvalue(), needle
    # Verification's copies are redacted, other cases kept, and they say what was taken out.
    locked.refresh_from_db()
    report.refresh_from_db()
    assert locked.content["cases"] == [
        {"case_id": case.pk, "label": None, "redacted": True},
        other,
    ] and locked.content["redacted_cases"] == [case.pk]
    assert report.result["outcomes"]["report_texts"] == {
        "references": [None, "kept"],
        "drafts": [None, "kept"],
    } and report.result["redacted_cases"] == [case.pk]
    for batch in type(project).objects.get(pk=project.pk).ingest_batches.all():
        assert not [line for line in batch.items if line.get("case_id") == case.pk]
    # The withdrawal record and the pseudonymous trail remain.
    patient.refresh_from_db()
    assert patient.consent_status == "withdrawn" and patient.purged_at is not None
    assert patient.sex == ""
    trail = AuditEvent.objects.filter(project_id=project.pk)
    assert trail.filter(action="case.view", object_id=str(case.pk)).exists()
    assert not [e for e in trail if marker in str(e.detail) or scene["source_id"] in str(e.detail)]
    purge = trail.get(action="patient.purge")
    assert purge.detail["pseudonym"] == patient.pseudonym
    assert purge.detail["cases"] == [case.pk] and purge.detail["files_deleted"] == len(files)
    # The version stays flagged, and the report still names the viewer and the version.
    assert withdrawals.withdrawn_labels_per_version(project) == {
        version.pk: len(ids[Annotation] & {pk for pk, _ in version.label_snapshot})
    }
    body = api_for(scene["lead"]).post(
        f"/api/projects/{project.pk}/data-use-report/",
        {"pseudonym": patient.pseudonym},
        format="json",
    )
    assert body.status_code == 200, body.json()
    report = body.json()
    assert report["patient"]["purged"] is True and report["cases"] == []
    assert report["deleted_by_purge"]["cases"] == [case.pk]
    assert ("second", "case.view") in {(r["user"], r["action"]) for r in report["viewed_by"]}
    assert [v["model_version"] for v in report["model_versions"]] == [1]


def test_the_data_use_page_lists_consent_and_downloads_a_patients_report(project, scene, member):
    """The officer's page (a plain form, no script): every patient's consent, and the report
    of a patient named by the hospital's patient ID as a PDF download; a form naming nobody is
    a 400 that says so; an annotator is refused."""
    from django.test import Client

    officer = Client()
    officer.force_login(member("olga", "dpo"))
    patient = Patient.objects.get(studies__case=scene["case"])
    consent.withdraw(patient=patient, source="lead")
    page = officer.get(f"/projects/{project.pk}/data-use/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-patient="{patient.pseudonym}"' in html and "withdrawn" in html
    home = officer.get("/").content.decode()
    assert f"/projects/{project.pk}/data-use/" in home
    document = officer.post(
        f"/projects/{project.pk}/data-use/", {"patient_id": scene["source_id"], "format": "pdf"}
    )
    assert document.status_code == 200 and document["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(document.content)).pages)
    assert patient.pseudonym in text
    assert scene["source_id"] not in str(list(AuditEvent.objects.values_list("detail", flat=True)))
    nobody = officer.post(f"/projects/{project.pk}/data-use/", {"format": "json"})
    assert nobody.status_code == 400 and "Name the patient" in nobody.content.decode()
    unknown = officer.post(
        f"/projects/{project.pk}/data-use/", {"pseudonym": "NOSUCH", "format": "json"}
    )
    assert unknown.status_code == 400 and "No patient" in unknown.content.decode()
    reader = Client()
    reader.force_login(scene["second"])
    assert reader.get(f"/projects/{project.pk}/data-use/").status_code == 403
