"""Exports of a project's labels: COCO, findings CSV, reports JSONL, DICOM SR (TID 1500), a
model version's label snapshot, the API and the export_labels command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import zipfile

import highdicom as hd
import pydicom
import pytest
from django.core.management import CommandError, call_command
from pycocotools.coco import COCO

from active_learning.ml import synthetic
from active_learning.models import ModelVersion
from active_learning.services import case_inputs
from annotations.models import Annotation, AuditEvent, Box, Instance
from annotations.services import annotate, exports, projects, queue
from annotations.services.errors import InvalidInput
from annotations.services.exports.labels import final_annotations
from annotations.services.ingest import storage_path
from tests.support.labels import submit_ground_truth
from tests.support.tools import dcmtk, missing_dcmtk, require

pytestmark = pytest.mark.django_db

LABELLED = 4


@pytest.fixture
def reader(member):
    return member("reader", "annotator")


@pytest.fixture
def lead(member):
    return member("lena", "lead", "reviewer")


@pytest.fixture
def labelled(project, cases, synthetic_dir, reader):
    """The first LABELLED cases submitted with their synthetic ground truth."""
    return submit_ground_truth(
        project=project,
        cases=cases,
        synthetic_dir=synthetic_dir,
        annotator=reader,
        count=LABELLED,
    )


def ground_truth(cases, synthetic_dir):
    """{case id: its synthetic manifest entry} (the ``cases`` fixture is in manifest order)."""
    manifest = synthetic.load_manifest(synthetic_dir)
    return {case.pk: item for case, item in zip(cases, manifest, strict=True)}


def export_bytes(project, format_name, **kwargs):
    out = io.BytesIO()
    exports.export_labels(project=project, format_name=format_name, out=out, **kwargs)
    return out.getvalue()


def read_and_submit(project, annotator, *, findings, report):
    """Lease the annotator's next case and submit it with ``findings`` and ``report``."""
    case = queue.lease_next_case(project=project, annotator=annotator)
    assert case is not None
    annotation = annotate.start_annotation(case=case, annotator=annotator)
    return annotate.submit(
        annotation=annotation,
        actor=annotator,
        expected_version=annotation.version,
        findings=findings,
        report=report,
    )


# --- COCO, CSV, JSONL ------------------------------------------------------------------------


def test_coco_export_loads_in_pycocotools_and_gives_back_every_box(project, labelled, tmp_path):
    path = tmp_path / "coco.json"
    path.write_bytes(export_bytes(project, "coco"))
    coco = COCO(str(path))

    boxes = Box.objects.filter(annotation__case__in=labelled)
    assert (
        len(coco.getImgIds()) == Instance.objects.filter(series__study__case__in=labelled).count()
    )
    assert len(coco.getAnnIds()) == boxes.count() > 0
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == project.finding_keys
    for box in boxes.select_related("instance"):
        [image] = [
            i for i in coco.loadImgs(coco.getImgIds()) if i["instance_id"] == box.instance_id
        ]
        assert image["file_name"] == f"{box.instance.sop_instance_uid}_1"
        assert (image["width"], image["height"]) == (box.instance.columns, box.instance.rows)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        got = {
            (tuple(a["bbox"]), coco.loadCats(a["category_id"])[0]["name"], a["case_id"])
            for a in anns
        }
        wanted = (box.x, box.y, box.width, box.height), box.finding, box.annotation.case_id
        assert wanted in got
        [ann] = [a for a in anns if tuple(a["bbox"]) == wanted[0]]
        assert ann["area"] == box.width * box.height and ann["iscrowd"] == 0
        assert ann["medloop_annotation_id"] == box.annotation_id


def test_findings_csv_has_one_row_per_case_and_a_column_per_finding(
    project, cases, labelled, synthetic_dir
):
    rows = list(csv.DictReader(io.StringIO(export_bytes(project, "findings-csv").decode())))
    truth = ground_truth(cases, synthetic_dir)
    assert [int(r["case_id"]) for r in rows] == sorted(c.pk for c in labelled)
    for row in rows:
        case = next(c for c in labelled if c.pk == int(row["case_id"]))
        assert row["accession_pseudonym"] == case.study.accession_pseudonym != ""
        assert row["patient_pseudonym"] == case.study.patient.pseudonym
        assert (row["annotator"], row["status"]) == ("reader", "submitted")
        for key, present in truth[case.pk]["findings"].items():
            assert row[key] == ("present" if present else "absent")
    assert set(rows[0]) >= set(project.finding_keys)


def test_findings_csv_cells_never_start_a_spreadsheet_formula(project, cases, make_user):
    project_member = make_user("=HYPERLINK(1)")
    projects.add_member(project=project, user=project_member, role="annotator", added_by=None)
    read_and_submit(project, project_member, findings={"nodule": "present"}, report={})
    rows = list(csv.DictReader(io.StringIO(export_bytes(project, "findings-csv").decode())))
    assert [r["annotator"] for r in rows] == ["'=HYPERLINK(1)"]


def test_reports_jsonl_has_one_line_per_case_with_its_sections(
    project, cases, labelled, synthetic_dir
):
    lines = export_bytes(project, "reports-jsonl").decode().splitlines()
    truth = ground_truth(cases, synthetic_dir)
    assert len(lines) == LABELLED
    for line in map(json.loads, lines):
        assert line["sections"] == truth[line["case_id"]]["report"]
        assert (line["annotator"], line["status"]) == ("reader", "submitted")
        assert line["version"] == Annotation.objects.get(pk=line["annotation_id"]).version


def test_final_label_is_the_accepted_read_even_when_another_was_submitted_later(
    project, cases, member, lead
):
    first, second = member("first", "annotator"), member("second", "annotator")
    type(cases[0]).objects.filter(pk=cases[0].pk).update(required_reads=2)
    report = {"findings": "Clear lungs.", "impression": "Normal."}
    accepted = read_and_submit(project, first, findings={"nodule": "absent"}, report=report)
    annotate.review(
        annotation=accepted, reviewer=lead, accept=True, expected_version=accepted.version
    )
    # The two reads agree on the findings (a disagreement would wait for adjudication).
    later = read_and_submit(
        project, second, findings={"nodule": "absent"}, report={"findings": "Lungs clear."}
    )
    assert later.case_id == accepted.case_id

    [row] = list(csv.DictReader(io.StringIO(export_bytes(project, "findings-csv").decode())))
    assert (row["annotator"], row["status"], row["nodule"]) == ("first", "accepted", "absent")


def test_a_project_without_labels_exports_empty_files(project, cases):
    assert json.loads(export_bytes(project, "coco"))["annotations"] == []
    assert export_bytes(project, "reports-jsonl") == b""
    assert export_bytes(project, "findings-csv").decode().startswith("case_id,")
    assert zipfile.ZipFile(io.BytesIO(export_bytes(project, "sr-zip"))).namelist() == []


# --- DICOM SR -------------------------------------------------------------------------------


def test_sr_zip_holds_a_tid1500_report_per_case_that_pydicom_and_dsrdump_read(
    project, cases, labelled, synthetic_dir, tmp_path
):
    require(missing_dcmtk("dsrdump"), "reading SR exports with dsrdump")
    archive = zipfile.ZipFile(io.BytesIO(export_bytes(project, "sr-zip")))
    assert sorted(archive.namelist()) == sorted(f"case-{c.pk}.dcm" for c in labelled)
    archive.extractall(tmp_path)
    manifest = ground_truth(cases, synthetic_dir)
    names = {f["key"]: f["name"] for f in project.label_schema["findings"]}

    for case in labelled:
        path = tmp_path / f"case-{case.pk}.dcm"
        sr = pydicom.dcmread(path)
        source = pydicom.dcmread(
            storage_path(case_inputs.first_instance(case).file_path), stop_before_pixels=True
        )
        truth = manifest[case.pk]
        assert sr.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
        assert sr.StudyInstanceUID == source.StudyInstanceUID == case.study.study_instance_uid
        assert (sr.PatientID, str(sr.PatientName)) == (source.PatientID, str(source.PatientName))
        written = path.read_bytes().decode("latin-1")
        assert truth["patient_id"] not in written and truth["study_instance_uid"] not in written

        report = hd.sr.MeasurementReport.from_sequence(hd.sr.srread(path).content)
        regions = []
        for group in report.get_planar_roi_measurement_groups():
            assert group.roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
            corners = group.roi.value
            assert len(corners) == 5 and (corners[0] == corners[-1]).all()  # closed
            image = group.roi.ContentSequence[0].ReferencedSOPSequence[0]
            assert image.ReferencedSOPInstanceUID == source.SOPInstanceUID
            (left, top), (right, bottom) = corners.min(axis=0), corners.max(axis=0)
            regions.append((group.finding_type.value, left, top, right - left, bottom - top))
        wanted = [(b["finding"], b["x"], b["y"], b["width"], b["height"]) for b in truth["boxes"]]
        assert sorted(regions) == sorted(wanted)

        # +Pl: long texts in full
        dump = subprocess.run(
            [dcmtk("dsrdump"), "+Pl", str(path)], capture_output=True, text=True, timeout=60
        )
        assert dump.returncode == 0, dump.stderr
        for box in truth["boxes"]:
            assert names[box["finding"]] in dump.stdout
        for key in truth["findings"]:
            assert names[key] in dump.stdout
        for text in truth["report"].values():
            assert text in dump.stdout


def test_sr_keeps_report_text_outside_the_source_images_character_set(
    project, cases, reader, tmp_path
):
    require(missing_dcmtk("dsrdump"), "reading SR exports with dsrdump")
    text = "Erguss rechts, Größe 3 cm → Kontrolle in 6 Wochen. 肺结节"
    annotation = read_and_submit(
        project, reader, findings={"effusion": "present"}, report={"impression": text}
    )
    archive = zipfile.ZipFile(io.BytesIO(export_bytes(project, "sr-zip")))
    path = tmp_path / "case.dcm"
    path.write_bytes(archive.read(f"case-{annotation.case_id}.dcm"))

    evaluations = pydicom.dcmread(path).ContentSequence[-1]
    assert evaluations.ConceptNameCodeSequence[0].CodeMeaning == "Qualitative Evaluations"
    assert [item.TextValue for item in evaluations.ContentSequence] == [text]
    dump = subprocess.run([dcmtk("dsrdump"), str(path)], capture_output=True, timeout=60)
    assert dump.returncode == 0, dump.stderr


# --- Model version snapshots ----------------------------------------------------------------


def test_snapshot_export_keeps_the_labels_a_version_was_trained_on_after_later_edits(
    project, labelled, reader, lead
):
    snapshot = [list(p) for p in final_annotations(project).values_list("pk", "version")]
    ModelVersion.objects.create(project=project, number=1, label_snapshot=snapshot)
    before = json.loads(export_bytes(project, "coco", version=1))
    old_report = export_bytes(project, "reports-jsonl", version=1)

    edited = Annotation.objects.get(case=labelled[0])
    annotate.review(
        annotation=edited,
        reviewer=lead,
        accept=False,
        comment="Redo",
        expected_version=edited.version,
    )
    queue.lease_next_case(project=project, annotator=reader)
    edited.refresh_from_db()
    annotate.submit(
        annotation=edited,
        actor=reader,
        expected_version=edited.version,
        findings={"nodule": "uncertain"},
        report={"findings": "Rewritten.", "impression": "Changed."},
        boxes=[],
    )

    assert json.loads(export_bytes(project, "coco", version=1)) == before
    assert export_bytes(project, "reports-jsonl", version=1) == old_report
    now = [json.loads(line) for line in export_bytes(project, "reports-jsonl").splitlines()]
    assert {"findings": "Rewritten.", "impression": "Changed."} in [n["sections"] for n in now]
    assert json.loads(export_bytes(project, "coco"))["annotations"] != before["annotations"]


def test_snapshot_pair_of_an_accepted_annotation_reads_its_submitted_revision(
    project, labelled, lead
):
    annotation = Annotation.objects.get(case=labelled[0])
    annotate.review(
        annotation=annotation, reviewer=lead, accept=True, expected_version=annotation.version
    )
    ModelVersion.objects.create(
        project=project,
        number=2,
        label_snapshot=[[annotation.pk, annotation.version], [999999, 3]],
    )
    lines = export_bytes(project, "reports-jsonl", version=2).splitlines()
    [line] = [json.loads(raw) for raw in lines]
    assert (line["annotation_id"], line["status"]) == (annotation.pk, "accepted")
    assert line["version"] == annotation.version - 1  # the revision accepting left unchanged


def test_unknown_format_or_version_is_refused(project, cases):
    with pytest.raises(exports.UnknownModelVersion):
        export_bytes(project, "coco", version=7)
    with pytest.raises(InvalidInput, match="coco"):
        export_bytes(project, "pdf")


# --- API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format_name", "content_type", "extension"),
    [
        ("coco", "application/json", "json"),
        ("findings-csv", "text/csv; charset=utf-8", "csv"),
        ("reports-jsonl", "application/x-ndjson", "jsonl"),
        ("sr-zip", "application/zip", "zip"),
        ("monai-detection", "application/json", "json"),
    ],
)
def test_api_export_answers_with_content_type_file_name_and_an_audit_event(
    project, labelled, lead, api_for, format_name, content_type, extension
):
    response = api_for(lead).get(f"/api/projects/{project.pk}/exports/{format_name}/")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == (
        f'attachment; filename="project-{project.pk}-labels-{format_name}.{extension}"'
    )
    assert b"".join(response.streaming_content)
    event = AuditEvent.objects.filter(action="project.export").get()
    assert (event.actor_username, event.project_id) == ("lena", project.pk)
    assert event.detail["format"] == format_name and event.detail["cases"] == LABELLED


def test_api_export_of_a_version_names_it_in_the_file_name(project, labelled, member, api_for):
    owner = member("mo", "model_owner")
    snapshot = [list(p) for p in final_annotations(project).values_list("pk", "version")][:2]
    ModelVersion.objects.create(project=project, number=3, label_snapshot=snapshot)
    response = api_for(owner).get(f"/api/projects/{project.pk}/exports/reports-jsonl/?version=3")
    assert response.status_code == 200
    assert 'filename="project-' in response["Content-Disposition"]
    assert "-model-v3-labels-reports-jsonl.jsonl" in response["Content-Disposition"]
    assert len(b"".join(response.streaming_content).splitlines()) == 2


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("exports/pdf/", 400, "coco"),
        ("exports/coco/?version=9", 404, "no model version 9"),
        ("exports/coco/?version=abc", 400, "version"),
        ("exports/coco/?version=-1", 400, "version"),
        ("exports/coco/?version=99999999999999999999999", 400, "version"),
    ],
)
def test_api_bad_format_or_version_answers_json_error(
    project, cases, lead, api_for, path, status, needle
):
    response = api_for(lead).get(f"/api/projects/{project.pk}/{path}")
    assert response.status_code == status
    assert needle in response.json()["message"]
    if status == 400 and "pdf" in path:
        assert response.json()["formats"] == sorted(exports.FORMATS)


# --- export_labels command ------------------------------------------------------------------


def test_export_labels_command_writes_the_file(project, labelled, tmp_path):
    out = tmp_path / "labels.csv"
    stdout = io.StringIO()
    call_command(
        "export_labels",
        str(project.pk),
        "--format",
        "findings-csv",
        "--out",
        str(out),
        stdout=stdout,
    )
    assert len(list(csv.DictReader(out.open()))) == LABELLED
    assert "4 cases" in stdout.getvalue()
    assert AuditEvent.objects.filter(action="project.export", actor=None).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "valid formats"),
        (["--format", "coco", "--version", "5"], "no model version 5"),
    ],
)
def test_export_labels_command_refuses_bad_input_naming_it(project, cases, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_labels", str(project.pk), *args, "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
