"""The annotator workspace in a real browser: queue flow, viewer, boxes, suggestions, findings,
report, autosave (and its stale-draft guard), submit -> next case, and review mode."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from active_learning.models import ModelVersion, Suggestion
from annotations.models import Annotation, AnnotationRevision, Case
from tests.conftest import api_client_for
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPORT_DRAFT = {
    "findings": "Small nodule in the right upper zone. No effusion.",
    "impression": "Probable pulmonary nodule.",
}


def reliable_metrics(project) -> dict:
    """Validation metrics whose operating points let every part of a suggestion be shown: boxes
    from score 0.3, findings prefilled present from 0.5 and absent up to 0.15, the draft."""
    box = {"threshold": 0.3, "validation_positives": 12, "ap50": 0.6, "precision": 0.8,
           "recall": 0.7, "reliable": True, "reason": "shown at score >= 0.300"}  # fmt: skip
    finding = {"prefill_threshold": 0.5, "absent_threshold": 0.15, "positives": 12,
               "negatives": 20, "ppv": 0.8, "reliable": True, "reason": "prefilled"}  # fmt: skip
    report = {"metric": "rouge_l_f_beta1.2", "value": 0.5, "floor": 0.3, "reliable": True,
              "reason": "rouge_l_f_beta1.2 0.50 reaches the floor of 0.30"}  # fmt: skip
    keys = project.finding_keys
    points = {
        "boxes": {key: dict(box) for key in keys},
        "findings": {key: dict(finding) for key in keys},
        "report": report,
    }
    return {"validation": {"operating_points": points}}


def _suggest(project, cases: list[Case]) -> None:
    """A promoted model's suggestions for each case: two boxes, probabilities, a report draft,
    from a version whose validation evidence lets all of it be shown."""
    version = ModelVersion.objects.create(
        project=project, number=1, status="promoted", metrics=reliable_metrics(project)
    )
    for case in cases:
        instance = case.study.series.first().instances.first()
        Suggestion.objects.create(
            case=case,
            model_version=version,
            boxes=[
                {
                    "id": "s1",
                    "instance_id": instance.pk,
                    "frame": 1,
                    "x": 20,
                    "y": 20,
                    "width": 30,
                    "height": 30,
                    "finding": "nodule",
                    "score": 0.8,
                },
                {
                    "id": "s2",
                    "instance_id": instance.pk,
                    "frame": 1,
                    "x": 70,
                    "y": 70,
                    "width": 25,
                    "height": 20,
                    "finding": "mass",
                    "score": 0.35,
                },
            ],
            finding_probabilities={"nodule": 0.8, "mass": 0.3, "effusion": 0.05},
            report_draft=REPORT_DRAFT,
        )


def _case_id_shown(page) -> int:
    text = page.text_content(".case-info") or ""
    return int(text.split("Case ")[1].split(" ")[0])


# True once the workspace has leased the case after the one shown (``arg``) and fetched that
# case's suggestion (resource timing entries exist only for finished requests, in the order the
# requests started): the lease and what was served are then recorded. Its images may still be
# loading; the workspace waits for them itself before it opens the case.
PREFETCHED = """(id) => {
  const names = performance.getEntriesByType('resource').map((e) => e.name);
  const asked = names.findIndex((n) => n.includes('/next-case/?exclude=' + id));
  return asked >= 0 && names.slice(asked + 1).some(
    (n) => /[/]api[/]cases[/][0-9]+[/]suggestion[/]/.test(n) && !n.includes('/cases/' + id + '/'),
  );
}"""


def wait_prefetched(page, shown: int) -> None:
    """Wait until the workspace has prefetched the case after case ``shown``."""
    page.wait_for_function(PREFETCHED, arg=shown, timeout=30_000)


def _wait_rendered(page, count: int = 1, timeout: int = 30_000) -> None:
    page.wait_for_function(
        f"window.medloopTimings && window.medloopTimings.renders.length >= {count}",
        timeout=timeout,
    )


def _wait_saved(page) -> None:
    page.wait_for_function(
        "document.querySelector('#save-state')?.dataset.state === 'saved'", timeout=10_000
    )


def _image_point(page, size: int = 128):
    """Screen position of an image pixel: the square image fills the viewer's shorter side."""
    box = page.locator("#viewer").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    side = min(box["width"], box["height"])

    def at(px: float, py: float) -> tuple[float, float]:
        return cx - side / 2 + px * side / size, cy - side / 2 + py * side / size

    return at


def _open_workspace(page, live_server, project) -> None:
    page.click(f"tr[data-project='{project.pk}'] >> text=Start labeling")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/label/")
    page.wait_for_selector("#suggestion-list, #queue-empty", timeout=30_000)
    _wait_rendered(page)


def test_annotator_labels_a_case_end_to_end(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    _suggest(project, cases)
    member("ann", "annotator")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    first_case = _case_id_shown(page)
    assert Case.objects.get(pk=first_case).leased_to.username == "ann"

    # Context, prefilled findings (with the model's probability) and the report draft.
    assert page.locator(".context .indication").text_content()
    assert page.locator("[data-finding=nodule] [aria-checked=true]").text_content() == "present"
    assert page.locator("[data-finding=effusion] [aria-checked=true]").text_content() == "absent"
    assert page.locator("[data-finding=nodule] .probability").text_content() == "80%"
    assert page.input_value("#report-impression") == REPORT_DRAFT["impression"]
    assert page.locator("#suggestion-list li").count() == 2
    page.screenshot(path=str(artifacts_dir / "workspace-case-opened.png"))

    # Window/level: a preset, then a drag with the window/level tool.
    overlay = page.locator(".ml-overlay")
    before = overlay.text_content()
    page.click("button[data-preset=Lung]")
    page.wait_for_function(
        "(b) => document.querySelector('.ml-overlay').textContent !== b", arg=before
    )
    lung = overlay.text_content()
    assert "W 1500 L -600" not in lung  # a radiograph: the preset follows the file's window
    box = page.locator("#viewer").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 40, steps=6)
    page.mouse.up()
    assert overlay.text_content() != lung

    # Draw a box with the rectangle tool and label it from the schema.
    page.keyboard.press("b")
    assert page.get_attribute("button[data-tool=rectangle]", "aria-pressed") == "true"
    at = _image_point(page)

    page.mouse.move(*at(85, 20))
    page.mouse.down()
    page.mouse.move(*at(115, 50), steps=8)
    page.mouse.up()
    page.wait_for_selector("#box-list li[data-origin=drawn]")
    page.select_option("#box-list li[data-origin=drawn] select", "effusion")

    # Accept one suggestion with the mouse, reject the other with the keyboard.
    page.click("li[data-suggestion=s1] button.accept")
    page.click("li[data-suggestion=s2] .select-box")
    page.keyboard.press("x")
    page.wait_for_selector("li[data-suggestion]", state="detached")
    assert page.locator("#box-list li").count() == 2
    assert page.locator("#box-list li[data-origin=suggested_accepted]").count() == 1

    # Edit the report; the diff toggle shows the change against the draft.
    page.fill("#report-impression", "Probable pulmonary nodule. Follow-up CT advised.")
    page.check("#report-diff-toggle")
    assert (
        page.locator("[data-diff=impression] ins")
        .first.text_content()
        .strip()
        .startswith("Follow-up")
    )
    _wait_saved(page)
    page.screenshot(path=str(artifacts_dir / "workspace-boxes-report-diff.png"))

    # The help overlay lists the keys.
    page.locator("#viewer").focus()
    page.keyboard.press("?")
    page.wait_for_selector("dialog.help")
    assert "Submit and open the next case" in page.text_content("dialog.help")
    page.screenshot(path=str(artifacts_dir / "workspace-help.png"))
    page.keyboard.press("Escape")

    # Reload: the draft comes back from the server.
    page.reload()
    page.wait_for_selector("#box-list li", timeout=30_000)
    _wait_rendered(page)
    assert _case_id_shown(page) == first_case
    assert page.locator("#box-list li").count() == 2
    assert page.locator("li[data-suggestion]").count() == 0
    assert page.input_value("#report-impression").endswith("Follow-up CT advised.")
    assert page.locator("#box-list li[data-origin=drawn] select").input_value() == "effusion"
    draft = Annotation.objects.get(case_id=first_case, annotator__username="ann")
    assert draft.status == "draft" and draft.version > 1

    # Submit: the next (prefetched) case opens.
    page.click("#submit-case")
    page.wait_for_function("window.medloopTimings.submitToRenderMs.length >= 1", timeout=30_000)
    assert _case_id_shown(page) != first_case
    page.screenshot(path=str(artifacts_dir / "workspace-next-case.png"))

    annotation = Annotation.objects.get(case_id=first_case, annotator__username="ann")
    assert annotation.status == "submitted"
    assert annotation.findings["nodule"] == "present"
    assert annotation.report["impression"].endswith("Follow-up CT advised.")
    origins = sorted(annotation.boxes.values_list("origin", "finding"))
    assert origins == [("drawn", "effusion"), ("suggested_accepted", "nodule")]
    accepted = annotation.boxes.get(origin="suggested_accepted")
    assert (accepted.suggestion_box_id, accepted.x, accepted.width) == ("s1", 20, 30)
    assert annotation.rejected_suggestion_boxes == ["s2"]
    revision = AnnotationRevision.objects.get(annotation=annotation)
    assert len(revision.content["boxes"]) == 2
    assert revision.content["rejected_suggestion_boxes"] == ["s2"]
    assert errors == []


def test_stale_draft_shows_banner_and_never_overwrites(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    _suggest(project, cases)
    ann = member("ann", "annotator")
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    case_id = _case_id_shown(page)

    # Another tab saves in between.
    api = api_client_for(ann)
    current = api.get(f"/api/cases/{case_id}/annotation/")
    other = api.put(
        f"/api/cases/{case_id}/annotation/",
        {"report": {"impression": "Written in another tab."}},
        format="json",
        HTTP_IF_MATCH=current["ETag"],
    )
    assert other.status_code == 200

    page.fill("#report-findings", "Edited here.")
    page.wait_for_selector("[data-banner=stale]", timeout=10_000)
    assert page.get_attribute("[data-banner=stale]", "role") == "alert"
    assert Annotation.objects.get(pk=current.data["id"]).report == {
        "impression": "Written in another tab."
    }

    page.click("#stale-compare")
    page.wait_for_selector("#compare-table")
    assert "Written in another tab." in page.text_content("#compare-table")
    assert "Edited here." in page.text_content("#compare-table")
    page.screenshot(path=str(artifacts_dir / "workspace-stale-compare.png"))
    page.click("#compare-reload")
    page.wait_for_selector("[data-banner=stale]", state="detached")
    assert page.input_value("#report-impression") == "Written in another tab."

    # Server errors are shown, not swallowed: the case is taken from us.
    Case.objects.filter(pk=case_id).update(leased_to=member("bob", "annotator"))
    page.fill("#report-findings", "After losing the lease.")
    page.wait_for_selector("[data-banner=error][role=alert]", timeout=10_000)
    assert "leased to another annotator" in page.text_content("[data-banner=error]")


def test_submit_to_next_render_timing(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    """Submits several cases in a row and records how long the next image takes to appear."""
    _suggest(project, cases)
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    submits = 6
    for n in range(1, submits + 1):
        shown = _case_id_shown(page)
        # Let the prefetch of the next case finish, as it does while an annotator works.
        wait_prefetched(page, shown)
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            f"window.medloopTimings.submitToRenderMs.length >= {n}", timeout=30_000
        )
        assert _case_id_shown(page) != shown
    timings = page.evaluate("window.medloopTimings")
    values = sorted(timings["submitToRenderMs"])
    result = {
        "submit_to_next_render_ms": values,
        "p50_ms": statistics.median(values),
        "p95_ms": values[min(len(values) - 1, round(0.95 * (len(values) - 1)))],
        "cold_first_render_ms_since_navigation": timings["coldFirstRenderMs"],
    }
    (artifacts_dir / "workspace-timings.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    assert Annotation.objects.filter(annotator__username="ann", status="submitted").count() == (
        submits
    )


def test_reviewer_returns_work_with_a_comment(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    ann = member("ann", "annotator")
    member("rev", "reviewer")
    api = api_client_for(ann)
    leased = api.post(f"/api/projects/{project.pk}/next-case/")
    instance = leased.data["series"][0]["instances"][0]["id"]
    submitted = api.post(
        f"/api/cases/{leased.data['id']}/annotation/submit/",
        {
            "findings": {"nodule": "present"},
            "report": {"impression": "Nodule."},
            "boxes": [
                {
                    "instance_id": instance,
                    "frame": 1,
                    "x": 10,
                    "y": 10,
                    "width": 20,
                    "height": 20,
                    "finding": "nodule",
                }
            ],
        },
        format="json",
        HTTP_IF_MATCH=leased.data["annotation"]["etag"],
    )
    assert submitted.status_code == 200, submitted.data

    log_in(page, live_server, "rev")
    page.click(f"tr[data-project='{project.pk}'] a:text-is('Review')")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/review/")
    page.wait_for_selector("#review-list button.selected", timeout=30_000)
    _wait_rendered_review(page)
    assert page.locator("#box-list li").count() == 1
    assert page.input_value("#report-impression") == "Nodule."
    page.screenshot(path=str(artifacts_dir / "workspace-review.png"))

    page.click("#review-return")  # without a comment: refused, visibly
    page.wait_for_selector("[data-banner=error]")
    page.fill("#review-comment", "Please measure the nodule again.")
    page.click("#review-return")
    page.wait_for_selector("#review-empty")
    annotation = Annotation.objects.get(pk=submitted.data["id"])
    assert annotation.status == "returned"
    assert annotation.review_comment == "Please measure the nodule again."

    # The annotator resubmits; the reviewer accepts it in the browser.
    returned = api.get(f"/api/annotations/{annotation.pk}/")
    resubmitted = api.post(
        f"/api/cases/{leased.data['id']}/annotation/submit/",
        {"report": {"impression": "Nodule, 9 mm."}},
        format="json",
        HTTP_IF_MATCH=returned["ETag"],
    )
    assert resubmitted.status_code == 200, resubmitted.data
    page.reload()
    page.wait_for_selector("#review-list button.selected", timeout=30_000)
    page.click("#review-accept")
    page.wait_for_selector("#review-empty")
    annotation.refresh_from_db()
    assert annotation.status == "accepted"
    assert annotation.reviewed_by.username == "rev"


def _wait_rendered_review(page) -> None:
    page.wait_for_function(
        "document.querySelector('.ml-overlay') && "
        "document.querySelector('.ml-overlay').textContent.includes('W ')",
        timeout=30_000,
    )


def test_dragging_a_suggestion_edits_it_and_skip_asks_for_a_reason(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    _suggest(project, cases)
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    first_case = _case_id_shown(page)

    # Drag the bottom-right handle of suggestion s1 (20, 20, 30 x 30) by 10 image pixels.
    at = _image_point(page)

    page.mouse.move(*at(50, 50))
    page.mouse.down()
    page.mouse.move(*at(60, 60), steps=8)
    page.mouse.up()
    page.wait_for_selector("#box-list li[data-origin=suggested_edited]")
    _wait_saved(page)
    annotation = Annotation.objects.get(case_id=first_case, annotator__username="ann")
    edited = annotation.boxes.get(origin="suggested_edited")
    assert edited.suggestion_box_id == "s1"
    assert (edited.width, edited.height) == (pytest.approx(40, abs=1.5), pytest.approx(40, abs=1.5))
    page.screenshot(path=str(artifacts_dir / "workspace-suggestion-edited.png"))

    # Skip: a reason is required, the case is passed on and the next one opens.
    page.locator("#viewer").focus()
    page.keyboard.press("Shift+S")
    page.wait_for_selector("dialog[open] #dialog-input")
    page.click("#dialog-submit")  # empty: the dialog stays open
    assert page.locator("dialog[open]").count() == 1
    page.fill("#dialog-input", "Image is rotated")
    page.click("#dialog-submit")
    page.wait_for_function(
        f"document.querySelector('.case-info')?.textContent.includes('Case ') && "
        f"!document.querySelector('.case-info').textContent.includes('Case {first_case} ')",
        timeout=30_000,
    )
    assert Case.objects.get(pk=first_case).skips.get().reason == "Image is rotated"
    assert Case.objects.get(pk=first_case).leased_to is None
