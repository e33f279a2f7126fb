"""Importing box labels from COCO files as CVAT ("COCO 1.0") and Label Studio ("COCO") export
them, and as MedLoop exports them: matching to ingested images, scaling, findings, skips, the
API, the import_labels command, and a round trip through MedLoop's own COCO export."""

from __future__ import annotations

import io
import json
from itertools import chain
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from active_learning.ml import synthetic
from annotations.dicom.deidentify import replacement_uid
from annotations.models import (
    Annotation,
    AnnotationRevision,
    AuditEvent,
    Box,
    Case,
    IngestBatch,
    Instance,
)
from annotations.services import annotate, batches, exports, imports, ingest, projects, queue
from annotations.services.errors import InvalidInput
from annotations.services.imports.matching import candidates, file_stem
from annotations.services.ingest import storage_path
from annotations.services.source_names import source_key
from tests.support.labels import submit_ground_truth

pytestmark = pytest.mark.django_db

FILES = [f"case_{i:05d}.dcm" for i in range(6)]
SIZE = 128  # the synthetic images' rows and columns (tests/conftest.py)
FINDINGS = ["nodule", "mass", "consolidation", "effusion", "pneumothorax", "cardiomegaly"]

# Label names as a CVAT task and a Label Studio labelling config would spell them.
CVAT_LABELS = {
    "nodule": "Nodule",
    "mass": "Mass",
    "consolidation": "consolidation",
    "effusion": "Pleural_Effusion",
    "pneumothorax": "PNEUMOTHORAX",
    "cardiomegaly": "Cardiomegaly",
}
LS_LABELS = {**CVAT_LABELS, "effusion": "Pleural effusion", "consolidation": "Consolidation"}


@pytest.fixture
def lead(member):
    return member("lena", "lead")


@pytest.fixture
def truth(synthetic_dir):
    """{file name: the synthetic manifest entry (ground truth boxes in 128-pixel images)}."""
    return {item["file"]: item for item in synthetic.load_manifest(synthetic_dir)}


@pytest.fixture
def ingested(project, synthetic_dir, lead):
    """The first six synthetic files ingested as one batch, as import_dicom does:
    {file name: its case}."""
    batch = batches.ingest_sources(
        project=project,
        sources=chain.from_iterable(batches.path_sources(synthetic_dir / n) for n in FILES),
        source=IngestBatch.Source.COMMAND,
        actor=lead,
    )
    keys = {source_key(project, name): name for name in FILES}
    return {keys[item["source_key"]]: Case.objects.get(pk=item["case_id"]) for item in batch.items}


def _bbox(box, sx, sy):
    return [box["x"] * sx, box["y"] * sy, box["width"] * sx, box["height"] * sy]


def cvat_coco(entries, width, height, labels=CVAT_LABELS):
    """``instances_default.json`` as CVAT's "COCO 1.0" export (Datumaro's COCO writer) has it:
    ids from 1, every image of the task (with or without shapes), ``file_name`` relative to the
    task's data (folders kept), coordinates rounded to 2 digits, ``attributes`` per shape.
    ``entries``: [(file_name, manifest entry)]; images resized to ``width`` x ``height``."""
    sx, sy = width / SIZE, height / SIZE
    names = list(dict.fromkeys(labels.values()))
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (file_name, item) in enumerate(entries, start=1):
        images.append(
            {
                "id": image_id,
                "width": width,
                "height": height,
                "file_name": file_name,
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            }
        )
        for box in item["boxes"]:
            bbox = [round(v, 2) for v in _bbox(box, sx, sy)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": names.index(labels[box["finding"]]) + 1,
                    "segmentation": [],
                    "area": bbox[2] * bbox[3],
                    "bbox": bbox,
                    "iscrowd": 0,
                    "attributes": {"occluded": False, "rotation": 0.0},
                }
            )
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },
        "categories": [
            {"id": n, "name": name, "supercategory": ""} for n, name in enumerate(names, start=1)
        ],
        "images": images,
        "annotations": annotations,
    }


def label_studio_coco(entries, size):
    """``result.json`` as Label Studio's COCO export (label_studio_converter) has it: categories
    sorted by name with ids from 0, images and annotations numbered from 0, only tasks with
    regions, ``file_name`` the image's path under the export (``images/<8 hex>-<name>``) or, when
    it could not be copied, its upload URL; boxes from percentages, truncated to integers."""
    names = sorted(set(LS_LABELS.values()))
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for file_name, item in entries:
        if not item["boxes"]:
            continue
        image_id = len(images)
        images.append({"width": size, "height": size, "id": image_id, "file_name": file_name})
        for box in item["boxes"]:
            x, y, w, h = (
                int(box[k] / SIZE * 100 / 100 * size) for k in ("x", "y", "width", "height")
            )
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": image_id,
                    "category_id": names.index(LS_LABELS[box["finding"]]),
                    "segmentation": [],
                    "bbox": [x, y, w, h],
                    "ignore": 0,
                    "iscrowd": 0,
                    "area": w * h,
                }
            )
    return {
        "images": images,
        "categories": [{"id": n, "name": name} for n, name in enumerate(names)],
        "annotations": annotations,
        "info": {
            "year": 2025,
            "version": "1.0",
            "description": "",
            "contributor": "Label Studio",
            "url": "",
            "date_created": "2025-05-14 09:12:40.123456",
        },
    }


def cvat_file(truth, files=FILES, width=320, height=256, **kwargs):
    """A CVAT export of ``files`` as PNGs resized to ``width`` x ``height`` in a folder."""
    entries = [(f"chest/{Path(name).stem}.png", truth[name]) for name in files]
    return cvat_coco(entries, width, height, **kwargs)


def upload(client, project, document, **fields):
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    body = {"file": SimpleUploadedFile("instances_default.json", data, "application/json")}
    return client.post(
        f"/api/projects/{project.pk}/imports/coco/", {**body, **fields}, format="multipart"
    )


def boxes_of(annotation):
    return sorted(
        (b.instance_id, b.frame, b.finding, b.x, b.y, b.width, b.height, b.origin)
        for b in annotation.boxes.all()
    )


def expected_boxes(case, item):
    instance = Instance.objects.get(series__study__case=case)
    return sorted(
        (instance.pk, 1, b["finding"], b["x"], b["y"], b["width"], b["height"], "drawn")
        for b in item["boxes"]
    )


def written_counts():
    return (
        Annotation.objects.count(),
        Box.objects.count(),
        AnnotationRevision.objects.count(),
        AuditEvent.objects.filter(action__in=["labels.import", "annotation.submit"]).count(),
    )


# --- CVAT, through the API ---------------------------------------------------------------------


def test_cvat_coco_import_submits_one_scaled_annotation_per_case(
    project, ingested, truth, lead, api_for, django_capture_on_commit_callbacks
):
    held_out = ingested[FILES[1]]
    Case.objects.filter(pk=held_out.pk).update(is_validation=True)
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(api_for(lead), project, cvat_file(truth))

    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["dry_run"] is False and report["format"] == "coco"
    assert (report["images"], report["matched"], report["scaled_images"]) == (6, 6, 6)
    assert report["matched_by"] == {"source_name": 6, "sop_instance_uid": 0, "original_uid": 0}
    used = {b["finding"] for name in FILES for b in truth[name]["boxes"]}
    assert report["categories"] == {CVAT_LABELS[key]: key for key in sorted(used)}
    assert report["imported_cases"] == sorted(c.pk for c in ingested.values())
    assert report["boxes"] == sum(len(truth[n]["boxes"]) for n in FILES)
    assert report["cases_without_boxes"] == 1  # case_00003: a negative, every finding absent
    assert report["skipped"] == report["unmatched"] == []
    for name, case in ingested.items():
        annotation = Annotation.objects.get(case=case)
        assert (annotation.annotator, annotation.status) == (lead, "submitted")
        got = boxes_of(annotation)
        wanted = expected_boxes(case, truth[name])
        assert [g[:3] for g in got] == [w[:3] for w in wanted]
        assert [g[3:7] for g in got] == [pytest.approx(w[3:7], abs=0.01) for w in wanted]
        boxed = {b["finding"] for b in truth[name]["boxes"]}
        assert annotation.findings == {k: "present" if k in boxed else "absent" for k in FINDINGS}
        revision = AnnotationRevision.objects.get(annotation=annotation)
        assert revision.version == annotation.version and revision.submitted_by == lead
        assert revision.content == annotate.snapshot(annotation)
        assert Case.objects.get(pk=case.pk).state == Case.State.COMPLETE
    assert report["annotation_ids"] == sorted(
        Annotation.objects.filter(case__in=ingested.values()).values_list("pk", flat=True)
    )
    assert Case.objects.get(pk=held_out.pk).is_validation  # held-out cases are imported too
    [event] = AuditEvent.objects.filter(action="labels.import")
    assert (event.actor, event.project_id) == (lead, project.pk)
    assert event.detail["cases"] == 6 and event.detail["boxes"] == report["boxes"]
    assert event.detail["matched"] == 6 and event.detail["unmatched"] == 0
    assert AuditEvent.objects.filter(action="annotation.submit").count() == 6
    assert len(callbacks) >= 6  # the loop hears of each submission, as for a human's


def test_images_named_by_de_identified_uid_match_and_unmatched_ones_are_listed(
    project, ingested, truth, lead, api_for
):
    case = ingested[FILES[0]]
    instance = Instance.objects.get(series__study__case=case)
    document = cvat_coco(
        [
            (f"{instance.sop_instance_uid}.png", truth[FILES[0]]),
            ("other/scan_0042.png", truth[FILES[1]]),
        ],
        SIZE,
        SIZE,
    )
    report = upload(api_for(lead), project, document).json()
    assert report["matched_by"]["sop_instance_uid"] == 1 and report["imported_cases"] == [case.pk]
    assert report["scaled_images"] == 0
    [unmatched] = report["unmatched"]
    assert unmatched["file_name"] == "other/scan_0042.png"
    assert "scan_0042" in unmatched["reason"]
    assert report["boxes_not_imported"] == len(truth[FILES[1]]["boxes"])


def test_a_file_none_of_whose_images_matches_is_refused(project, ingested, truth, lead, api_for):
    document = cvat_coco([("elsewhere/unknown.png", truth[FILES[0]])], SIZE, SIZE)
    response = upload(api_for(lead), project, document)
    assert response.status_code == 400
    assert "None of the 1 images" in response.json()["message"]
    assert response.json()["unmatched"][0]["file_name"] == "elsewhere/unknown.png"
    assert Annotation.objects.count() == 0


# --- Label Studio, through the command --------------------------------------------------------


def test_label_studio_coco_import_with_the_command(project, ingested, truth, lead, tmp_path):
    original_uid = truth[FILES[5]]["sop_instance_uid"]  # as the hospital's PACS knows it
    entries = [
        ("images/1a2b3c4d-case_00000.png", truth[FILES[0]]),
        ("/data/upload/3/5e6f7a8b-case_00001.png", truth[FILES[1]]),
        ("images/9c0d1e2f-case_00002.png", truth[FILES[2]]),
        ("images/0a1b2c3d-case_00003.png", truth[FILES[3]]),  # no regions: not in the export
        (r"images\3e4f5a6b-case_00004.png", truth[FILES[4]]),
        (f"images/7a8b9c0d-{original_uid}.png", truth[FILES[5]]),
    ]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(label_studio_coco(entries, 512)))
    out = io.StringIO()
    call_command("import_labels", str(project.pk), str(path), "--as", "lena", stdout=out)

    text = out.getvalue()
    assert "Matched 5 of 5 images (4 by source_name, 1 by original_uid)" in text
    assert "Pleural effusion -> effusion" in text
    assert "Imported 5 cases with 10 boxes (0 without boxes)" in text
    for name in FILES:
        annotation = Annotation.objects.filter(case=ingested[name]).first()
        if not truth[name]["boxes"]:
            assert annotation is None
            continue
        assert annotation is not None
        assert annotation.status == "submitted" and annotation.annotator == lead
        assert boxes_of(annotation) == expected_boxes(ingested[name], truth[name])  # 512 -> 128
    assert AuditEvent.objects.filter(action="labels.import").count() == 1


def test_command_dry_run_map_and_refusals(project, ingested, truth, lead, member, tmp_path):
    path = tmp_path / "cvat.json"
    labels = {**CVAT_LABELS, "effusion": "Fluid"}
    path.write_text(json.dumps(cvat_file(truth, labels=labels)))
    out = io.StringIO()
    call_command(
        "import_labels",
        project.name,
        str(path),
        "--as",
        "lena",
        "--dry-run",
        "--map",
        "Fluid=effusion",
        stdout=out,
    )
    assert "Would import 6 cases" in out.getvalue() and "Dry run" in out.getvalue()
    assert "Fluid -> effusion" in out.getvalue()
    assert Annotation.objects.count() == 0
    with pytest.raises(CommandError, match="Fluid"):
        call_command("import_labels", str(project.pk), str(path), "--as", "lena")
    member("reader", "annotator")
    with pytest.raises(CommandError, match="not a lead or admin"):
        call_command("import_labels", str(project.pk), str(path), "--as", "reader")
    with pytest.raises(CommandError, match="No user"):
        call_command("import_labels", str(project.pk), str(path), "--as", "nobody")
    with pytest.raises(CommandError, match="--map takes"):
        call_command("import_labels", str(project.pk), str(path), "--as", "lena", "--map", "x")
    assert Annotation.objects.count() == 0


# --- dry run, categories, malformed files, permissions ----------------------------------------


def test_dry_run_reports_what_an_import_does_and_writes_nothing(
    project, ingested, truth, lead, api_for
):
    client = api_for(lead)
    before = written_counts()
    dry = upload(client, project, cvat_file(truth), dry_run="true")
    assert dry.status_code == 200
    assert written_counts() == before
    real = upload(client, project, cvat_file(truth))
    assert real.status_code == 201
    assert {**dry.json(), "dry_run": False, "annotation_ids": real.json()["annotation_ids"]} == (
        real.json()
    )


def test_unknown_category_is_refused_naming_it_and_nothing_is_written(
    project, ingested, truth, lead, api_for
):
    client = api_for(lead)
    labels = {**CVAT_LABELS, "cardiomegaly": "Aortic enlargement"}
    response = upload(client, project, cvat_file(truth, labels=labels))
    assert response.status_code == 400
    body = response.json()
    assert (
        "'Aortic enlargement'" in body["message"]
        and "effusion (Pleural effusion)" in body["message"]
    )
    assert body["unknown_categories"] == ["Aortic enlargement"]
    assert body["finding_keys"] == FINDINGS
    assert written_counts() == (0, 0, 0, 0)

    wrong_target = upload(
        client,
        project,
        cvat_file(truth, labels=labels),
        category_map=json.dumps({"Aortic enlargement": "aorta"}),
    )
    assert wrong_target.status_code == 400 and "'aorta'" in wrong_target.json()["message"]
    assert upload(client, project, cvat_file(truth), category_map="{").status_code == 400

    mapped = upload(
        client,
        project,
        cvat_file(truth, labels=labels),
        category_map=json.dumps({"Aortic enlargement": "Cardiomegaly"}),
    )
    assert mapped.status_code == 201
    assert mapped.json()["categories"]["Aortic enlargement"] == "cardiomegaly"
    assert Box.objects.filter(finding="cardiomegaly").count() == sum(
        b["finding"] == "cardiomegaly" for n in FILES for b in truth[n]["boxes"]
    )


def _valid() -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "case_00000.png", "width": 256, "height": 256}],
        "categories": [{"id": 1, "name": "Nodule"}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}],
    }


def _changed(path, value):
    document = _valid()
    *where, key = path
    target = document
    for step in where:
        target = target[step]
    target[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n", "not UTF-8 text"),
        (b"{'images': []}", "not JSON (line 1 column 2"),
        (b"[]", "must be a JSON object"),
        (b'{"images": []}', "no 'annotations' and no 'categories'"),
        (_changed(["images"], {}), "'images' in the COCO file must be a list"),
        (_changed(["annotations", 0, "bbox"], [1, 2, 3]), "annotation 7 on image 1"),
        (_changed(["annotations", 0, "bbox"], [1, 2, 3]), "bbox must be 4 numbers"),
        (_changed(["annotations", 0, "bbox"], [1, 2, "3", 4]), "bbox must be 4 numbers"),
        (_changed(["annotations", 0, "bbox"], [1, 2, 0, 4]), "must be positive, got [1, 2, 0, 4]"),
        (_changed(["annotations", 0, "bbox"], [250, 10, 20, 20]), "outside the 256x256 image"),
        (_changed(["annotations", 0, "image_id"], 9), "image_id 9 is not an image of the file"),
        (_changed(["annotations", 0, "category_id"], 4), "category_id 4 is not a category"),
        (_changed(["annotations", 0, "bbox"], None), "got null"),
        (_changed(["images", 0, "width"], 0), "width and height must be positive numbers"),
        (_changed(["images", 0, "file_name"], ""), "image 1: file_name is missing"),
        (_changed(["categories", 0, "id"], True), "categories[0]: id must be an integer"),
        (b'{"images": [], "annotations": [], "categories": []}', "lists no images"),
    ],
)
def test_malformed_files_are_refused_with_reasons(project, ingested, lead, api_for, data, message):
    response = upload(api_for(lead), project, data)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert message in response.json()["message"]
    assert written_counts() == (0, 0, 0, 0)


def test_every_problem_of_a_file_is_named():
    document = _valid()
    document["annotations"] += [
        {"id": 8, "image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 5]},
        {"id": 9, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 5]},
    ]
    with pytest.raises(InvalidInput) as refused:
        imports.parse_coco(json.dumps(document).encode())
    assert refused.value.message.startswith("The COCO file has 2 problems")
    problems = refused.value.detail["problems"]
    assert isinstance(problems, list)
    assert [p.split(":")[0] for p in problems] == [
        "annotation 8 on image 1 (case_00000.png)",
        "annotation 9",
    ]


def test_a_file_over_the_limit_is_refused_with_413(project, ingested, lead, api_for, settings):
    settings.MEDLOOP_MAX_LABEL_IMPORT_BYTES = 100
    response = upload(api_for(lead), project, json.dumps(_valid()).encode())
    assert response.status_code == 413


def test_only_leads_and_admins_of_the_project_import(
    project, ingested, truth, member, make_user, api_for
):
    document = cvat_file(truth)
    assert upload(api_for(member("ann", "annotator")), project, document).status_code == 403
    assert (
        upload(api_for(member("rev", "reviewer", "model_owner")), project, document).status_code
        == 403
    )
    outsider = make_user("outsider")
    projects.create_project(name="Other", created_by=outsider)
    assert upload(api_for(outsider), project, document).status_code == 404
    assert upload(api_for(member("adm", "admin")), project, document).status_code == 201


# --- skipped cases ----------------------------------------------------------------------------


def test_cases_with_a_human_label_or_held_by_a_reader_are_skipped(
    project, ingested, truth, lead, member, api_for
):
    reader, other = member("reader", "annotator"), member("otto", "annotator")
    read = queue.lease_next_case(project=project, annotator=reader)
    assert read is not None
    annotation = annotate.start_annotation(case=read, annotator=reader)
    annotate.submit(
        annotation=annotation,
        actor=reader,
        expected_version=annotation.version,
        findings={"nodule": "present"},
    )
    held = queue.lease_next_case(project=project, annotator=other)
    assert held is not None
    human = (annotation.version, annotation.findings, boxes_of(annotation))

    report = upload(api_for(lead), project, cvat_file(truth)).json()
    skipped = {s["case_id"]: s["reason"] for s in report["skipped"]}
    assert skipped == {
        read.pk: "already labelled (submitted by reader)",
        held.pk: "otto is reading it now (leased)",
    }
    assert len(report["imported_cases"]) == 4
    annotation.refresh_from_db()
    assert (annotation.version, annotation.findings, boxes_of(annotation)) == human
    assert not Annotation.objects.filter(case__in=[read, held], annotator=lead).exists()

    again = upload(api_for(lead), project, cvat_file(truth)).json()
    assert again["imported_cases"] == []
    assert sum("submitted by lena" in s["reason"] for s in again["skipped"]) == 4


def test_a_case_with_a_quarantined_image_is_skipped(project, ingested, truth, lead, api_for):
    case = ingested[FILES[2]]
    Instance.objects.filter(series__study__case=case).update(quarantined=True)
    report = upload(api_for(lead), project, cvat_file(truth)).json()
    [skipped] = report["skipped"]
    assert skipped["case_id"] == case.pk and "quarantine" in skipped["reason"]
    assert skipped["file_names"] == ["chest/case_00002.png"]


# --- round trip through MedLoop's own export ---------------------------------------------------


def test_our_coco_export_imports_into_a_fresh_project_with_the_same_boxes(
    project, cases, synthetic_dir, member, make_user
):
    reader = member("reader", "annotator")
    labelled = submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=reader, count=4
    )
    out = io.BytesIO()
    exports.export_labels(project=project, format_name="coco", out=out)
    exported = out.getvalue()

    # The same project: every case is matched by its de-identified UID and already labelled.
    lead = member("lena", "lead")
    same = imports.import_coco(project=project, data=exported, actor=lead)
    assert same.matched_by["sop_instance_uid"] == same.matched == 4
    assert same.imported_cases == [] and len(same.skipped) == 4

    # A fresh project that ingested the first one's (de-identified) images: to it, the
    # exported UIDs are original UIDs.
    copy = projects.create_project(
        name="Copy", created_by=make_user("copier"), validation_fraction=0.0
    )
    projects.add_member(project=copy, user=lead, role="lead", added_by=None)
    for instance in Instance.objects.filter(series__study__case__in=labelled):
        ingest.ingest_dicom_path(project=copy, path=storage_path(instance.file_path))
    report = imports.import_coco(project=copy, data=exported, actor=lead)
    assert report.matched_by["original_uid"] == report.matched == 4
    assert len(report.imported_cases) == 4 and report.scaled_images == 0

    def boxes(project_boxes, uid_of):
        return sorted(
            (uid_of(b.instance.sop_instance_uid), b.frame, b.finding, b.x, b.y, b.width, b.height)
            for b in project_boxes.select_related("instance")
        )

    original = Box.objects.filter(annotation__case__in=labelled)
    imported = Box.objects.filter(annotation__case__project=copy)
    secret = copy.pseudonym_secret
    assert boxes(imported, str) == boxes(original, lambda uid: replacement_uid(secret, uid))
    assert imported.count() == original.count() > 0


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("case_00001.png", "case_00001"),
        ("chest/left/case_00001.PNG", "case_00001"),
        (r"C:\exports\images\case_00001.jpg", "case_00001"),
        ("images/1a2b3c4d-case_00001.png", "1a2b3c4d-case_00001"),
        ("/data/upload/3/1a2b3c4d-case%2000001.png", "1a2b3c4d-case 00001"),
        ("/data/local-files/?d=scans/case_00001.png", "case_00001"),
        ("1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.1"),
        ("1.2.826.0.1.3680043.8.498.1.dcm.png", "1.2.826.0.1.3680043.8.498.1"),
    ],
)
def test_file_stems(name, stem):
    assert file_stem(name) == stem


def test_candidates_try_the_upload_prefix_and_the_frame_suffix():
    found = [(c.rule, c.name, c.frame) for c in candidates("images/1a2b3c4d-2.25.123_2.png")]
    assert found == [
        ("source_name", "1a2b3c4d-2.25.123_2", None),
        ("source_name", "2.25.123_2", None),
        ("sop_instance_uid", "2.25.123", 2),
        ("original_uid", "2.25.123", 2),
    ]
