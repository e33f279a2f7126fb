"""A lead imports DICOM files and a clinical CSV in the browser and reads the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from active_learning.ml import synthetic
from annotations.models import Case, Instance
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_lead_uploads_files_and_sees_a_line_per_file(
    page, live_server, project, member, synthetic_dir: Path, tmp_path: Path, artifacts_dir: Path
):
    member("lena", "lead")
    log_in(page, live_server, "lena")
    page.click("text=Import")
    files = [synthetic_dir / item["file"] for item in synthetic.load_manifest(synthetic_dir)[:3]]
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    page.set_input_files("#files", [*map(str, files), str(junk)])
    page.click("#upload-form button")
    page.wait_for_selector("#report tbody tr")
    status = page.text_content("#status")
    assert "3 stored" in status and "1 refused" in status
    rows = page.locator("#report tbody tr")
    assert rows.count() == 4
    assert page.locator("#report tr.refused").count() == 1
    assert "not a DICOM file" in page.text_content("#report tr.refused")
    page.screenshot(path=str(artifacts_dir / "upload-report.png"), full_page=True)
    assert Instance.objects.count() == 3

    manifest = synthetic.load_manifest(synthetic_dir)[0]
    csv = tmp_path / "context.csv"
    csv.write_text(
        "accession_number,indication\n"
        f"{manifest['accession_number']},Cough for three weeks\nNOPE,Unknown\n"
    )
    page.set_input_files("#clinical-file", str(csv))
    page.click("#clinical-form button")
    page.wait_for_function("document.querySelector('#status').textContent.includes('1 stored')")
    assert page.locator("#report tr.unmatched").count() == 1
    assert Case.objects.filter(indication="Cough for three weeks").count() == 1


def test_annotator_is_refused_the_import_page(page, live_server, project, member):
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    assert page.locator("text=Import").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.pk}/upload/")
    assert response.status == 403


def test_lead_imports_a_fhir_bundle_and_sees_each_resource_by_position(
    page, live_server, project, cases, member, synthetic_dir: Path, tmp_path: Path
):
    import json

    from annotations.models import LabResult
    from tests.annotations.ingest.test_fhir_import import _bundle

    member("lena", "lead")
    log_in(page, live_server, "lena")
    page.click("text=Import")
    item = synthetic.load_manifest(synthetic_dir)[4]
    bundle = tmp_path / "extract.json"
    bundle.write_text(json.dumps(_bundle(item)))
    page.set_input_files("#fhir-file", str(bundle))
    page.click("#fhir-form button")
    page.wait_for_selector("#report tbody tr")
    rows = page.locator("#report tbody tr")
    assert rows.count() == 7
    refused = page.text_content("#report tr.refused")
    assert "entry 3 (Observation)" in refused and "valueQuantity" in refused
    assert "6 stored" in page.text_content("#status")
    assert LabResult.objects.filter(case=cases[4], code="2276-4").exists()
