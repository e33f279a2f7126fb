"""Double reading: agreement of two independent reads, the adjudication queue, final labels."""

from __future__ import annotations

import math

import pytest

from active_learning.services.case_inputs import training_annotations
from annotations.models import Annotation, AuditEvent, Case, DoubleRead
from annotations.services import annotate, double_reading
from annotations.services.errors import Conflict, InvalidInput, NotAllowed
from annotations.services.exports.labels import final_annotations

ALL_ABSENT = {
    "nodule": "absent",
    "mass": "absent",
    "consolidation": "absent",
    "effusion": "absent",
    "pneumothorax": "absent",
    "cardiomegaly": "absent",
}


def _instance(case: Case):
    return case.study.series.first().instances.first()


def _box(case: Case, finding: str, x: float, y: float, w: float = 20, h: float = 20):
    return annotate.BoxInput(_instance(case).pk, x, y, w, h, finding)


def _read(case: Case, user, *, findings=None, boxes=(), report="No acute findings."):
    annotation = annotate.start_annotation(case=case, annotator=user)
    return annotate.submit(
        annotation=annotation,
        actor=user,
        expected_version=annotation.version,
        findings={**ALL_ABSENT, **(findings or {})},
        report={"findings": report, "impression": ""},
        boxes=list(boxes),
    )


@pytest.fixture
def readers(member):
    return member("alice", "annotator"), member("bob", "annotator")


@pytest.fixture
def double_case(cases) -> Case:
    Case.objects.filter(pk=cases[0].pk).update(required_reads=2)
    cases[0].refresh_from_db()
    return cases[0]


def _disagreeing_reads(case, alice, bob):
    """Hand-checked: nodule boxes (10,10) and (60,60) by Alice; Bob's (12,12) matches the first
    (IoU 324/476 = 0.68), his effusion box matches nothing: 1 match of 2 + 2 boxes -> F1 0.5."""
    a = _read(
        case,
        alice,
        findings={"nodule": "present"},
        boxes=[_box(case, "nodule", 10, 10), _box(case, "nodule", 60, 60)],
        report="Two nodules in the right upper lobe.",
    )
    b = _read(
        case,
        bob,
        findings={"nodule": "present", "effusion": "present"},
        boxes=[_box(case, "nodule", 12, 12), _box(case, "effusion", 80, 80)],
        report="Right upper lobe nodule. Small left effusion.",
    )
    return a, b


def test_disagreeing_reads_go_to_adjudication_with_hand_checked_figures(double_case, readers):
    alice, bob = readers
    _disagreeing_reads(double_case, alice, bob)
    row = DoubleRead.objects.get(case=double_case)
    assert row.status == DoubleRead.Status.PENDING
    assert row.box_f1 == pytest.approx(0.5)
    assert row.findings_differing == ["effusion"]
    assert row.detail["per_class"] == {
        "effusion": {"matched": 0, "boxes_a": 0, "boxes_b": 1},
        "nodule": {"matched": 1, "boxes_a": 2, "boxes_b": 1},
    }
    assert any("effusion" in reason for reason in row.reasons)
    assert any("box F1 0.50" in reason for reason in row.reasons)
    assert 0 < row.report_rouge_l < 1
    double_case.refresh_from_db()
    assert double_case.state == Case.State.COMPLETE
    # No final label yet: neither trained on nor exported.
    assert not training_annotations(double_case.project).filter(case=double_case).exists()
    assert not final_annotations(double_case.project).filter(case=double_case).exists()


def test_agreeing_reads_need_no_adjudication_and_count_as_labels(double_case, readers):
    alice, bob = readers
    _read(double_case, alice, findings={"mass": "present"}, boxes=[_box(double_case, "mass", 5, 5)])
    _read(double_case, bob, findings={"mass": "present"}, boxes=[_box(double_case, "mass", 6, 5)])
    row = DoubleRead.objects.get(case=double_case)
    assert (row.status, row.box_f1, row.findings_differing) == ("agreed", 1.0, [])
    assert training_annotations(double_case.project).filter(case=double_case).count() == 1


def test_single_read_cases_are_not_compared(cases, readers):
    _read(cases[1], readers[0])
    assert not DoubleRead.objects.exists()


def test_report_threshold_sends_different_reports_to_adjudication(double_case, readers):
    project = double_case.project
    project.adjudication_report_rouge = 0.9
    project.save()
    _read(double_case, readers[0], report="Heart size normal. Lungs clear.")
    _read(double_case, readers[1], report="Cardiomegaly is not seen; lungs are clear.")
    row = DoubleRead.objects.get(case=double_case)
    assert row.status == DoubleRead.Status.PENDING
    assert row.reasons and row.reasons[0].startswith("report ROUGE-L")


def test_adjudication_makes_the_final_label_for_training_and_export(double_case, readers, member):
    alice, bob = readers
    reviewer = member("rita", "reviewer")
    _, b = _disagreeing_reads(double_case, alice, bob)
    row = DoubleRead.objects.get(case=double_case)
    final = double_reading.adjudicate(
        double_read=row,
        adjudicator=reviewer,
        findings={**ALL_ABSENT, "nodule": "present"},
        report={"findings": "One right upper lobe nodule.", "impression": "Nodule."},
        boxes=[_box(double_case, "nodule", 11, 11)],
    )
    row.refresh_from_db()
    assert row.status == DoubleRead.Status.ADJUDICATED
    assert row.final_annotation_id == final.pk and row.adjudicated_by == reviewer
    assert final.status == Annotation.Status.ACCEPTED and final.is_adjudication
    revision = final.revisions.get()
    assert revision.content["adjudication"]["reads"] == [row.read_a_id, row.read_b_id]
    assert [(b.finding, b.x) for b in final.boxes.all()] == [("nodule", 11)]
    project = double_case.project
    assert training_annotations(project).get(case=double_case).pk == final.pk
    assert final_annotations(project).get(case=double_case).pk == final.pk
    assert AuditEvent.objects.filter(action="case.adjudicate", object_id=str(double_case.pk))
    # A later review of one read does not displace the final label.
    annotate.review(annotation=b, reviewer=reviewer, accept=True, expected_version=b.version)
    assert final_annotations(project).get(case=double_case).pk == final.pk
    with pytest.raises(Conflict):
        double_reading.adjudicate(double_read=row, adjudicator=reviewer, use=b.pk)


def test_adjudication_rules(double_case, readers, member):
    alice, bob = readers
    reviewer = member("rita", "reviewer")
    a, _ = _disagreeing_reads(double_case, alice, bob)
    row = DoubleRead.objects.get(case=double_case)
    with pytest.raises(NotAllowed):
        double_reading.adjudicate(double_read=row, adjudicator=alice, use=a.pk)
    with pytest.raises(InvalidInput, match="one of the two reads"):
        double_reading.adjudicate(double_read=row, adjudicator=reviewer, use=a.pk + 1000)
    with pytest.raises(InvalidInput, match="missing: report, boxes"):
        double_reading.adjudicate(double_read=row, adjudicator=reviewer, findings=ALL_ABSENT)
    with pytest.raises(InvalidInput, match="Unknown finding"):
        double_reading.adjudicate(
            double_read=row,
            adjudicator=reviewer,
            findings={"tumour": "present"},
            report={},
            boxes=[],
        )
    row.refresh_from_db()
    assert row.status == DoubleRead.Status.PENDING
    assert not Annotation.objects.filter(annotator=reviewer).exists()


def test_returned_read_reopens_the_comparison(double_case, readers, member):
    alice, bob = readers
    reviewer = member("rita", "reviewer")
    _, b = _disagreeing_reads(double_case, alice, bob)
    b.refresh_from_db()
    annotate.review(
        annotation=b,
        reviewer=reviewer,
        accept=False,
        comment="Effusion is not there; please re-read.",
        expected_version=b.version,
    )
    assert not DoubleRead.objects.filter(case=double_case).exists()
    b.refresh_from_db()
    annotate.submit(
        annotation=b,
        actor=bob,
        expected_version=b.version,
        findings={**ALL_ABSENT, "nodule": "present"},
        boxes=[_box(double_case, "nodule", 12, 12), _box(double_case, "nodule", 61, 60)],
    )
    row = DoubleRead.objects.get(case=double_case)
    assert row.status == DoubleRead.Status.AGREED and row.box_f1 == 1.0


def test_project_agreement_kappa_matches_a_hand_computation(project, cases, member):
    """Four double-read cases; nodule calls (A, B): (p, p), (p, a), (a, a), (a, a).
    Observed 3/4; expected 2/4 * 1/4 + 2/4 * 3/4 = 1/2; kappa (3/4 - 1/2) / (1/2) = 0.5."""
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    calls = [("present", "present"), ("present", "absent"), ("absent", "absent")]
    calls.append(("absent", "absent"))
    Case.objects.filter(pk__in=[c.pk for c in cases[:4]]).update(required_reads=2)
    for case, (call_a, call_b) in zip(cases[:4], calls, strict=True):
        case.refresh_from_db()
        _read(case, alice, findings={"nodule": call_a})
        _read(case, bob, findings={"nodule": call_b})
    figures = double_reading.project_agreement(project)
    assert figures["cases"] == 4 and figures["double_read_cases"] == 4
    assert figures["status_counts"] == {"agreed": 3, "pending": 1, "adjudicated": 0}
    nodule = figures["kappa_per_finding"]["nodule"]
    assert nodule["kappa"] == pytest.approx(0.5)
    assert nodule["observed_agreement"] == pytest.approx(0.75) and nodule["cases"] == 4
    mass = figures["kappa_per_finding"]["mass"]
    assert mass["kappa"] is None and "absent" in mass["undefined"]
    assert figures["box_f1"] == 1.0  # no boxes from either reader: agreement
    assert figures["report_rouge_l"] == pytest.approx(1.0)
    assert not math.isnan(figures["report_edit_distance"])


# ----------------------------------------------------------------------------------------- API
def test_adjudication_api_lists_shows_and_resolves(double_case, readers, member, api_for):
    alice, bob = readers
    reviewer = member("rita", "reviewer")
    _, b = _disagreeing_reads(double_case, alice, bob)
    api = api_for(reviewer)
    project_id = double_case.project_id
    listed = api.get(f"/api/projects/{project_id}/adjudications/").json()
    assert listed["count"] == 1
    item = listed["results"][0]
    assert item["readers"] == ["alice", "bob"] and item["findings_differing"] == ["effusion"]
    detail = api.get(f"/api/adjudications/{item['id']}/").json()
    assert [len(r["boxes"]) for r in detail["reads"]] == [2, 2]
    assert detail["case_detail"]["series"][0]["instances"][0]["id"] == _instance(double_case).pk
    assert AuditEvent.objects.filter(
        action="case.view", actor=reviewer, object_id=str(double_case.pk)
    ).exists()
    assert api.get(f"/api/projects/{project_id}/adjudications/?status=nope").status_code == 400
    resolved = api.post(f"/api/adjudications/{item['id']}/resolve/", {"use": b.pk}, format="json")
    assert resolved.status_code == 200, resolved.content
    assert resolved.json()["is_adjudication"] is True
    assert sorted(x["finding"] for x in resolved.json()["boxes"]) == ["effusion", "nodule"]
    again = api.post(f"/api/adjudications/{item['id']}/resolve/", {"use": b.pk}, format="json")
    assert again.status_code == 409
    assert api.get(f"/api/projects/{project_id}/adjudications/").json()["count"] == 0
    done = api.get(f"/api/projects/{project_id}/adjudications/?status=adjudicated").json()
    assert done["results"][0]["adjudicated_by"] == "rita"
    agreement = api.get(f"/api/projects/{project_id}/agreement/").json()
    assert agreement["status_counts"]["adjudicated"] == 1
    assert agreement["box_f1"] == pytest.approx(0.5)


def test_adjudication_api_refuses_readers_annotators_and_outsiders(
    double_case, readers, member, make_user, api_for
):
    alice, bob = readers
    a, _ = _disagreeing_reads(double_case, alice, bob)
    row = DoubleRead.objects.get(case=double_case)
    lead_reader = member("lena", "lead", "annotator")
    url = f"/api/adjudications/{row.pk}/resolve/"
    assert api_for(alice).post(url, {"use": a.pk}, format="json").status_code == 403
    assert api_for(alice).get(f"/api/adjudications/{row.pk}/").status_code == 403
    outsider = make_user("olga")
    assert api_for(outsider).get(f"/api/adjudications/{row.pk}/").status_code == 404
    response = api_for(lead_reader).post(url, {"findings": ALL_ABSENT}, format="json")
    assert response.status_code == 400 and "missing" in response.json()["message"]
    row.refresh_from_db()
    assert row.status == DoubleRead.Status.PENDING


def test_adjudication_thresholds_are_project_settings_checked_on_change(project, member, api_for):
    lead = member("lena", "lead")
    url = f"/api/projects/{project.pk}/"
    ok = api_for(lead).patch(url, {"adjudication_box_f1": 0.6}, format="json")
    assert ok.status_code == 200 and ok.json()["adjudication_box_f1"] == 0.6
    bad = api_for(lead).patch(url, {"adjudication_report_rouge": 1.5}, format="json")
    assert bad.status_code == 400 and "adjudication_report_rouge" in bad.json()["message"]
    project.refresh_from_db()
    assert (project.adjudication_box_f1, project.adjudication_report_rouge) == (0.6, 0.0)
