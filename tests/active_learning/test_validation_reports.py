"""Validation reports on the locked test set: figures with intervals, subgroups with counts and
the small flag, provenance that regenerates the same report, the JSON API and the PDF's text."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from django.test import Client, override_settings
from pypdf import PdfReader

from active_learning.ml.checkpoints import read_manifest
from active_learning.models import ModelVersion, ValidationReport
from active_learning.services import (
    comparisons,
    model_cards,
    report_documents,
    test_sets,
    validation_reports,
    versions,
)
from annotations.models import AuditEvent
from annotations.services.errors import InvalidInput
from tests.support.training import train_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_report_on_the_locked_test_set_regenerates_identically_and_prints(
    loop_project, member, api_for
):
    lead = member("boss2", "lead")
    test_sets.set_plan(
        project=loop_project, fraction=0.5, actor=lead, double_read=False, min_subgroup_cases=2
    )
    version = train_version(loop_project, auto_promote=False)
    # The card is written beside the weights when the version is registered.
    card_file = Path(version.weights_path) / model_cards.CARD_FILE
    assert "No validation report on the locked test set yet" in card_file.read_text()
    owner = member("owner2", "model_owner")
    owner_api, annotator_api = api_for(owner), api_for(member("someone", "annotator"))
    url = f"/api/projects/{loop_project.pk}/model-versions/{version.number}/validation-reports/"

    # Bad input is refused naming the field; an annotator may not ask.
    bad = owner_api.post(url, {"resamples": 10}, format="json")
    assert bad.status_code == 400 and "resamples" in bad.json()["message"]
    bad = owner_api.post(url, {"seed": "zero"}, format="json")
    assert bad.status_code == 400 and "seed" in bad.json()["message"]
    assert annotator_api.post(url, {}, format="json").status_code == 403
    missing = owner_api.post(url.replace(f"/{version.number}/", "/99/"), {}, format="json")
    assert missing.status_code == 404

    queued = owner_api.post(url, {"resamples": 1000, "seed": 7}, format="json")
    assert queued.status_code == 202, queued.content
    body = queued.json()
    assert body["status"] == "queued" and body["test_set_version"] == 1
    report = ValidationReport.objects.get(pk=body["id"])
    early = owner_api.get(f"/api/validation-reports/{report.pk}/pdf/")
    assert early.status_code == 409  # no PDF before the report is done

    report = validation_reports.run_report(report.pk)  # what the worker's task does
    assert report is not None and report.status == "succeeded" and report.progress == 100.0
    result = report.result
    locked = test_sets.latest_lock(loop_project)
    assert locked is not None
    assert result["cases"] == locked.labelled_count > 0
    provenance = result["provenance"]
    assert provenance["test_set"]["content_hash"] == locked.content_hash
    assert provenance["model"]["weights_sha256"] == version.weights_sha256
    assert sum(provenance["labels_per_annotator"].values()) == result["cases"]
    # Every figure carries its interval over 1,000 resamples (undefined ones say so).
    figures = result["figures"]
    assert figures and all(f["resamples"] == 1000 for f in figures.values())
    defined = {k: f for k, f in figures.items() if f["low"] is not None}
    assert defined and all(f["low"] <= f["value"] <= f["high"] for f in defined.values())
    drafts = {"reports.rouge_l_f_beta1.2", "reports.cider_d", "reports.bleu_4"}
    assert drafts <= set(figures)  # drafts scored
    # Subgroups: counts add up per attribute; those under 2 cases are flagged, not hidden.
    for attribute, groups in result["subgroups"].items():
        assert sum(g["cases"] for g in groups.values()) == result["cases"], attribute
        for group in groups.values():
            assert group["small"] == (group["cases"] < 2)
    assert set(result["subgroups"]) == {"sex", "age_band", "view_position", "manufacturer", "site"}
    # The site is the keyed code de-identification keeps, never unknown for named institutions.
    assert result["subgroups"]["site"] and all(
        re.fullmatch(r"S-[0-9A-F]{8}", site) for site in result["subgroups"]["site"]
    )
    assert AuditEvent.objects.filter(action="validation_report.read_cases").exists()

    # The same provenance gives the same report.
    assert validation_reports.regenerate(report) == result

    # JSON over the API for model owners and leads; not for annotators.
    got = api_for(lead).get(f"/api/validation-reports/{report.pk}/")
    assert got.status_code == 200 and got.json()["result"] == result
    assert annotator_api.get(f"/api/validation-reports/{report.pk}/").status_code == 403
    listed = owner_api.get(f"/api/projects/{loop_project.pk}/validation-reports/").json()
    assert [r["id"] for r in listed] == [report.pk]

    # The PDF holds the figures and the provenance.
    response = owner_api.get(f"/api/validation-reports/{report.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = _pdf_text(response.content)
    assert locked.content_hash in text.replace("\n", "")
    name, figure = sorted(defined.items())[0]
    assert name in text
    assert report_documents.interval_text(figure) in text

    # The model card: the sections, the test set's hash, the checklist items left to the team.
    card = owner_api.get(f"/api/validation-reports/{report.pk}/model-card/")
    assert card.status_code == 200 and card["Content-Type"].startswith("text/markdown")
    markdown = card.content.decode()
    for section in ("## Intended use", "## Training data", "## Evaluation data", "## Metrics",
                    "## Subgroups", "## Caveats", "## Reporting checklists"):  # fmt: skip
        assert section in markdown
    assert locked.content_hash in markdown and "| TRIPOD+AI | 12f |" in markdown
    assert "_To be written by the study team._" in markdown
    # ... and written again beside the weights, and exported with them; the checksum holds.
    assert card_file.read_text() == markdown
    export_url = f"/api/projects/{loop_project.pk}/model-versions/{version.number}/export/"
    exported = owner_api.get(export_url)
    assert exported.status_code == 200 and exported["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        names = {name.split("/", 1)[1]: name for name in archive.namelist()}
        assert archive.read(names[model_cards.CARD_FILE]).decode() == markdown
        manifest = json.loads(archive.read(names["manifest.json"]))
        assert set(manifest["files"]) | {"manifest.json", model_cards.CARD_FILE} == set(names)
    assert read_manifest(version.weights_path)["checksum"] == version.weights_sha256
    assert api_for(lead).get(export_url).status_code == 403
    assert AuditEvent.objects.filter(action="model_version.export").count() == 1

    # The pages: the project's verification page asks for a report; the report's page shows it.
    pages = Client()
    pages.force_login(owner)
    page = pages.get(f"/projects/{loop_project.pk}/verification/")
    assert page.status_code == 200 and locked.content_hash in page.content.decode()
    refused = pages.post(f"/projects/{loop_project.pk}/verification/", {"version": "99"})
    assert refused.status_code == 400 and "Choose one of" in refused.content.decode()
    shown = pages.get(f"/projects/{loop_project.pk}/verification/reports/{report.pk}/")
    assert shown.status_code == 200 and name in shown.content.decode()
    outsider = Client()
    outsider.force_login(member("reader2", "annotator"))
    assert outsider.get(f"/projects/{loop_project.pk}/verification/").status_code == 403

    # A second version on the same locked test set, compared with the first: paired
    # differences of every figure and DeLong per finding.
    second = train_version(loop_project)
    asked = pages.post(f"/projects/{loop_project.pk}/verification/", {"version": second.number})
    assert asked.status_code == 302
    other = ValidationReport.objects.exclude(pk=report.pk).get()
    assert other.test_set_id == report.test_set_id  # nothing changed: the same lock
    other = validation_reports.run_report(other.pk)
    assert other is not None and other.status == "succeeded"
    pair = f"/api/validation-reports/{other.pk}/compare/{report.pk}/"
    assert owner_api.get(pair).status_code == 404  # not asked for yet
    assert api_for(lead).post(pair).status_code == 403  # a lead reads, a model owner asks
    started = owner_api.post(pair)
    assert started.status_code == 202, started.content
    assert started.json()["status"] == "queued" and started.json()["result"] == {}
    comparison_url = f"/api/version-comparisons/{started.json()['id']}/"
    assert owner_api.post(pair).json()["id"] == started.json()["id"]  # under way: the same one
    done = comparisons.run_comparison(started.json()["id"])  # what the worker's task does
    assert done is not None and done.status == "succeeded" and done.progress == 100.0
    polled = api_for(lead).get(comparison_url)
    assert polled.status_code == 200 and polled.json()["status"] == "succeeded"
    assert owner_api.get(pair).json()["id"] == started.json()["id"]
    comparison = polled.json()["result"]
    assert comparison["a"]["version"] == second.number and comparison["b"]["version"] == 1
    assert {"reports.bleu_4", "reports.cider_d"} <= set(comparison["differences"])
    for figure_name, difference in comparison["differences"].items():
        a, b = other.result["figures"][figure_name], report.result["figures"][figure_name]
        if a["value"] is not None and b["value"] is not None:
            assert difference["difference"]["value"] == pytest.approx(a["value"] - b["value"])
    assert set(comparison["delong"]) == set(result["classes"])
    assert annotator_api.get(comparison_url).status_code == 403
    assert AuditEvent.objects.filter(action="version_comparison.request").count() == 1
    # The Models page's way in: verification page, report page, the comparison's page.
    assert (
        f"/projects/{loop_project.pk}/verification/"
        in pages.get(f"/projects/{loop_project.pk}/models/").content.decode()
    )
    report_page = pages.get(f"/projects/{loop_project.pk}/verification/reports/{other.pk}/")
    page_url = f"/projects/{loop_project.pk}/verification/comparisons/{done.pk}/"
    assert page_url in report_page.content.decode()
    shown = pages.get(page_url).content.decode()
    assert "DeLong" in shown and "reports.bleu_4" in shown
    # A report against itself: every difference is zero.
    same_started = owner_api.post(f"/api/validation-reports/{report.pk}/compare/{report.pk}/")
    same = comparisons.run_comparison(same_started.json()["id"])
    assert same is not None
    differences = same.result["differences"]
    assert all(d["difference"]["value"] in (0.0, None) for d in differences.values())
    # The page's button starts a comparison and shows its progress.
    page_started = pages.post(
        f"/projects/{loop_project.pk}/verification/reports/{report.pk}/compare/{other.pk}/"
    )
    assert page_started.status_code == 302
    waiting = pages.get(page_started["Location"]).content.decode()
    assert 'id="comparison-progress"' in waiting and "queued" in waiting


def test_a_report_is_refused_without_a_plan_labels_or_with_bad_settings(project, cases, member):
    # A registered version (its files are not read before the report runs).
    version = ModelVersion.objects.create(
        project=project, number=1, weights_path="/nowhere", weights_sha256="0" * 64
    )
    with pytest.raises(InvalidInput, match="no test set plan"):
        validation_reports.request_report(version=version, actor=None)
    test_sets.set_plan(project=project, fraction=0.5, actor=member("boss", "lead"))
    with pytest.raises(InvalidInput, match="no labelled case yet"):
        validation_reports.request_report(version=version, actor=None)
    for fields, message in (
        ({"confidence": 1.5}, "confidence must lie"),
        ({"resamples": 999}, "resamples must be a whole number from 1000"),
        ({"seed": -1}, "seed"),
    ):
        with pytest.raises(InvalidInput, match=message):
            validation_reports.request_report(version=version, actor=None, **fields)
    assert not ValidationReport.objects.exists()


def test_external_validation_uses_another_projects_locked_test_set(
    loop_project, member, api_for, synthetic_dir
):
    from annotations.services import projects
    from tests.conftest import ingest_synthetic
    from tests.support.labels import submit_ground_truth

    version = train_version(loop_project, auto_promote=False)
    owner = member("owner3", "model_owner")
    # A second site's project with the same findings; its cases are labelled there.
    site_b = projects.create_project(
        name="Site B", created_by=owner, validation_fraction=0.0,
        label_schema=loop_project.label_schema,
    )  # fmt: skip
    for role in ("lead", "model_owner"):
        projects.add_member(project=site_b, user=owner, role=role, added_by=None)
    reader = member("reader3", "annotator")
    projects.add_member(project=site_b, user=reader, role="annotator", added_by=None)
    cases_b = ingest_synthetic(site_b, synthetic_dir)
    test_sets.set_plan(project=site_b, fraction=0.5, actor=owner, double_read=False)
    submit_ground_truth(project=site_b, cases=cases_b, synthetic_dir=synthetic_dir,
                        annotator=reader, count=len(cases_b))  # fmt: skip

    url = f"/api/projects/{loop_project.pk}/model-versions/{version.number}/validation-reports/"
    owner_api = api_for(owner)
    outsider = api_for(member("owner4", "model_owner"))  # not a member of site B
    assert outsider.post(url, {"source_project": site_b.pk}, format="json").status_code == 404
    queued = owner_api.post(url, {"source_project": site_b.pk, "resamples": 1000}, format="json")
    assert queued.status_code == 202, queued.content
    report = validation_reports.run_report(queued.json()["id"])
    assert report is not None and report.status == "succeeded", report and report.error
    assert report.project_id == loop_project.pk and report.test_set.project_id == site_b.pk
    assert report.result["external"] is True
    assert report.result["source_project"] == {"id": site_b.pk, "name": "Site B"}
    assert report.result["cases"] == report.test_set.labelled_count > 0
    text = _pdf_text(owner_api.get(f"/api/validation-reports/{report.pk}/pdf/").content)
    assert "External validation" in text and "Site B" in text
