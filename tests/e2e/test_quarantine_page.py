"""The held-images page for leads (issue 18, item 1): the home page counts the held images and
links to the page; each image shows why it is held, a thumbnail and its full resolution on
demand; the lead releases some and rejects the rest in two decisions with comments, audited;
the import report says "held" for a held image instead of "stored, case N"."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from annotations.models import AuditEvent, Instance
from annotations.services import ingest, quarantine
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _held_copy(path: Path, keyword: str = "BurnedInAnnotation") -> bytes:
    dataset = pydicom.dcmread(path)
    setattr(dataset, keyword, "YES")
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def test_lead_reviews_held_images_and_releases_or_rejects_them_with_comments(
    page, live_server, project, member, synthetic_dir: Path, artifacts_dir: Path, frontend_built
):
    files = sorted(synthetic_dir.glob("*.dcm"))
    held = [
        ingest.ingest_dicom_bytes(project=project, data=_held_copy(files[0])).instance,
        ingest.ingest_dicom_bytes(project=project, data=_held_copy(files[1])).instance,
        ingest.ingest_dicom_bytes(
            project=project, data=_held_copy(files[2], "RecognizableVisualFeatures")
        ).instance,
    ]
    ingest.ingest_dicom_path(project=project, path=files[3])  # not held
    member("lena", "lead")
    log_in(page, live_server, "lena")
    count = page.locator(f"tr[data-project='{project.pk}'] a.held-images")
    assert count.inner_text() == "3 held images"
    count.click()
    page.wait_for_selector("#quarantine[data-state=ready]")
    assert page.inner_text("#summary") == "3 images are held for review."
    cards = page.locator("#held-list li.held")
    assert cards.count() == 3
    first = page.locator(f"li[data-instance='{held[0].pk}']")
    assert "Burned In Annotation is YES" in first.locator(".reason").inner_text()
    face = page.locator(f"li[data-instance='{held[2].pk}'] .reason").inner_text()
    assert "Recognizable Visual Features is YES" in face
    assert f"Case {held[0].series.study.case.pk}" in first.inner_text()
    page.wait_for_function(
        "[...document.querySelectorAll('#held-list img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    thumb_width = first.locator("img").evaluate("img => img.naturalWidth")
    assert 0 < thumb_width <= 256

    first.locator("text=Full resolution").click()
    page.wait_for_function(
        "document.querySelector('#full-view').open"
        " && document.querySelector('#full-image').naturalWidth > 0"
    )
    assert page.locator("#full-image").evaluate("img => img.naturalWidth") == held[0].columns
    page.screenshot(path=str(artifacts_dir / "quarantine-full-resolution.png"))
    page.click("#close-full")

    assert page.locator("#release").is_disabled()
    first.locator("input[type=checkbox]").check()
    page.locator(f"li[data-instance='{held[1].pk}'] input[type=checkbox]").check()
    assert page.inner_text("#release") == "Release 2 selected"
    page.click("#release")  # no comment yet: refused in the page, nothing sent
    assert "Write a comment first" in page.inner_text("#alert")
    assert Instance.objects.filter(quarantined=True).count() == 3
    page.fill("#comment", "Checked at full resolution: no text in the pixels")
    page.screenshot(path=str(artifacts_dir / "quarantine-page.png"), full_page=True)
    page.click("#release")
    page.wait_for_function("document.querySelectorAll('#held-list li.held').length === 1")
    assert page.inner_text("#summary") == "Released 2 images. 1 image is held for review."
    assert set(Instance.objects.filter(quarantined=True).values_list("pk", flat=True)) == {
        held[2].pk
    }
    released = AuditEvent.objects.filter(action="instance.clear_quarantine")
    assert {e.object_id for e in released} == {str(held[0].pk), str(held[1].pk)}
    assert {e.detail["comment"] for e in released} == {
        "Checked at full resolution: no text in the pixels"
    }

    # The remaining image's history: its audit trail, its thumbnail fetch among it.
    history = page.locator(f"li[data-instance='{held[2].pk}'] a.history").get_attribute("href")
    page.goto(f"{live_server.url}{history}")
    page.wait_for_selector("#audit[data-state=ready]")
    assert "instance.thumbnail" in page.locator("#events tbody td.action").all_inner_texts()
    assert page.input_value("#f-object-id") == str(held[2].pk)
    page.go_back()
    page.wait_for_selector("#quarantine[data-state=ready]")

    page.check("#select-all")
    page.fill("#comment", "The face is recognisable")
    page.click("#reject")
    page.wait_for_function("document.querySelectorAll('#held-list li.held').length === 0")
    assert page.inner_text("#summary") == "Rejected 1 image. No images are held for review."
    assert Instance.objects.get(pk=held[2].pk).quarantine_rejected_at is not None
    rejected = AuditEvent.objects.get(action="instance.reject_quarantine")
    assert rejected.detail["comment"] == "The face is recognisable"
    assert rejected.actor_username == "lena"

    page.goto(f"{live_server.url}/")
    assert page.locator(f"tr[data-project='{project.pk}'] a.held-images").inner_text() == (
        "0 held images"
    )


def test_import_report_rows_say_held_for_held_images(
    page, live_server, project, member, synthetic_dir: Path, tmp_path: Path
):
    files = sorted(synthetic_dir.glob("*.dcm"))
    held_file = tmp_path / "held.dcm"
    held_file.write_bytes(_held_copy(files[0]))
    member("lena", "lead")
    log_in(page, live_server, "lena")
    page.goto(f"{live_server.url}/projects/{project.pk}/upload/")
    page.set_input_files("#files", [str(held_file), str(files[1])])
    page.click("#upload-form button")
    page.wait_for_selector("#report tbody tr")
    assert "1 held for review" in page.text_content("#status")
    held_row = page.locator("#report tr.held")
    assert held_row.count() == 1
    cells = held_row.locator("td")
    assert cells.nth(1).inner_text() == "held for review"
    assert "Burned In Annotation is YES" in cells.nth(2).inner_text()
    assert "stored" not in held_row.inner_text()
    assert page.locator("#report tr.stored").count() == 1
    page.click("text=Review the held images")
    page.wait_for_selector("#quarantine[data-state=ready]")
    assert page.locator("#held-list li.held").count() == 1


def test_reviewer_is_refused_the_held_images_page_with_the_reason(
    page, live_server, project, member
):
    member("rita", "reviewer")
    log_in(page, live_server, "rita")
    assert page.locator("a.held-images").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.pk}/quarantine/")
    assert response.status == 403
    assert "needs the lead or admin role" in page.inner_text("main")


def test_more_held_images_than_the_list_holds_come_after_a_decision(
    page, live_server, project, member, synthetic_dir: Path, monkeypatch, frontend_built
):
    from annotations.api import quarantine_views

    monkeypatch.setattr(quarantine_views, "LIST_LIMIT", 2)
    files = sorted(synthetic_dir.glob("*.dcm"))
    held = [
        ingest.ingest_dicom_bytes(project=project, data=_held_copy(path)).instance
        for path in files[:3]
    ]
    member("lena", "lead")
    log_in(page, live_server, "lena")
    page.goto(f"{live_server.url}/projects/{project.pk}/quarantine/")
    page.wait_for_selector("#quarantine[data-state=ready]")
    assert page.inner_text("#summary") == (
        "3 images are held for review. The oldest 2 are shown; decide on them to see the rest."
    )
    page.check("#select-all")
    page.fill("#comment", "No text")
    page.click("#release")
    page.wait_for_function(
        "id => document.querySelector(`li[data-instance='${id}']`) !== null", arg=held[2].pk
    )
    assert page.inner_text("#summary") == "Released 2 images. 1 image is held for review."


def test_a_decision_on_images_another_lead_decided_meanwhile_changes_nothing_and_says_so(
    page, live_server, project, member, synthetic_dir: Path, frontend_built
):
    from annotations.services import quarantine

    files = sorted(synthetic_dir.glob("*.dcm"))
    held = [
        ingest.ingest_dicom_bytes(project=project, data=_held_copy(path)).instance
        for path in files[:2]
    ]
    member("lena", "lead")
    other = member("leo", "lead")
    log_in(page, live_server, "lena")
    page.goto(f"{live_server.url}/projects/{project.pk}/quarantine/")
    page.wait_for_selector("#quarantine[data-state=ready]")
    page.check("#select-all")
    page.fill("#comment", "No text")
    quarantine.decide_held_images(
        project=project,
        instance_ids=[held[0].pk],
        decision=quarantine.Decision.REJECT,
        comment="Name in the corner",
        actor=other,
    )
    page.click("#release")
    page.wait_for_selector("#alert:not([hidden])")
    assert f"[{held[0].pk}]" in page.inner_text("#alert")
    assert page.locator("#held-list li.held").count() == 1
    assert page.input_value("#comment") == "No text"
    assert Instance.objects.get(pk=held[1].pk).quarantined  # all or none: nothing released
    assert Instance.objects.get(pk=held[0].pk).quarantine_rejected_at is not None


def test_an_annotator_is_never_handed_a_case_whose_images_are_all_held_or_rejected(
    page, live_server, project, member, synthetic_dir: Path, frontend_built
):
    """Held or rejected images are hidden from annotators, so a case of them alone would open on
    an empty viewer: the workspace says nothing is left until a lead releases an image."""
    files = sorted(synthetic_dir.glob("*.dcm"))
    held = ingest.ingest_dicom_bytes(project=project, data=_held_copy(files[0])).instance
    rejected = ingest.ingest_dicom_bytes(project=project, data=_held_copy(files[1])).instance
    lead = member("lena", "lead")
    quarantine.decide_held_images(
        project=project,
        instance_ids=[rejected.pk],
        decision=quarantine.Decision.REJECT,
        comment="face",
        actor=lead,
    )
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/label/")
    page.wait_for_selector("#queue-empty", timeout=30_000)
    assert "no more cases for you" in page.inner_text("#queue-empty")

    quarantine.decide_held_images(
        project=project,
        instance_ids=[held.pk],
        decision=quarantine.Decision.RELEASE,
        comment="clean",
        actor=lead,
    )
    page.reload()
    case = held.series.study.case.pk
    page.wait_for_function(
        f"document.querySelector('.case-info')?.textContent.includes('Case {case}')",
        timeout=30_000,
    )
