"""The model's explanations in the workspace, in a real browser: a model version trained on
submitted labels scores the unread cases; the annotator shows its Grad-CAM heatmap per finding
over the image (it follows zoom), and follows a report sentence back to the box it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from active_learning.ml.interface import CasePrediction, PredictedBox, ReportSentence
from active_learning.models import ModelVersion, Suggestion
from active_learning.services import case_inputs, suggestions, versions
from annotations.models import Case
from tests.e2e.test_workspace import _case_id_shown, _wait_rendered, reliable_metrics
from tests.support.browser import log_in
from tests.support.labels import TINY_MODEL, submit_ground_truth
from tests.support.training import train_version

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _open_workspace(page, live_server, project) -> None:
    """Start labeling; a tiny model may suggest no boxes, so wait for the findings instead."""
    page.click(f"tr[data-project='{project.pk}'] >> text=Start labeling")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/label/")
    page.wait_for_selector(".findings-table", timeout=30_000)
    _wait_rendered(page)


HEATMAP_BOX = """() => {
  const img = document.querySelector('.ml-heatmap');
  if (!img || img.hidden || !img.complete) return null;
  const r = img.getBoundingClientRect();
  return { width: r.width, height: r.height, natural: img.naturalWidth,
           instance: Number(img.dataset.instance) };
}"""


@pytest.fixture
def scored(project, cases, member, synthetic_dir):
    """Model version 1, trained on eight submitted cases, promoted, and its suggestions for
    the four unread ones."""
    submit_ground_truth(
        project=project,
        cases=cases,
        synthetic_dir=synthetic_dir,
        annotator=member("reader", "annotator"),
        count=8,
    )
    versions.clear_cache()
    version = train_version(project, model_config=TINY_MODEL, auto_promote=False)
    versions.promote(version)
    unread = [c.pk for c in cases if not c.annotations.exists()]
    assert suggestions.score_cases(version=version, case_ids=unread).stored == 4
    yield version
    versions.clear_cache()


def test_annotator_shows_the_heatmap_of_a_finding_over_the_image(
    page, live_server, project, member, scored, artifacts_dir: Path
):
    member("ann", "annotator")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    case = Case.objects.get(pk=_case_id_shown(page))
    assert Suggestion.objects.filter(case=case, model_version=scored).exists()
    assert "model v1" in page.text_content(".case-info")

    button = page.locator("button[data-heatmap=effusion]")
    button.click()
    page.wait_for_function(f"({HEATMAP_BOX})() !== null", timeout=30_000)
    shown = page.evaluate(HEATMAP_BOX)
    assert button.get_attribute("aria-pressed") == "true"
    assert shown["natural"] == 128  # the overlay is the image's own size
    assert shown["instance"] == case_inputs.first_instance(case).pk
    page.screenshot(path=str(artifacts_dir / "workspace-heatmap.png"))
    # Over the image as Cornerstone fits it: square (a 128x128 image), centred, nearly the
    # viewer's shorter side (the fit leaves a small margin).
    viewer = page.locator("#viewer").bounding_box()
    placed = page.locator(".ml-heatmap").bounding_box()
    side = min(viewer["width"], viewer["height"])
    assert abs(placed["width"] - placed["height"]) < 1
    assert 0.9 * side <= placed["width"] <= side
    assert abs(placed["x"] + placed["width"] / 2 - (viewer["x"] + viewer["width"] / 2)) < 2
    assert abs(placed["y"] + placed["height"] / 2 - (viewer["y"] + viewer["height"] / 2)) < 2

    # The heatmap stays on the image when it is zoomed.
    page.locator("#viewer").focus()
    page.keyboard.press("+")
    page.wait_for_function(f"({HEATMAP_BOX})().width > {shown['width'] + 10}")

    # Another finding replaces it; the same button again hides it; "g" brings one back.
    page.click("button[data-heatmap=nodule]")
    page.wait_for_function(
        "document.querySelector('button[data-heatmap=nodule]').ariaPressed === 'true'"
    )
    assert button.get_attribute("aria-pressed") == "false"
    page.click("button[data-heatmap=nodule]")
    page.wait_for_function(f"({HEATMAP_BOX})() === null")
    page.locator("#viewer").focus()
    page.keyboard.press("g")
    page.wait_for_function(f"({HEATMAP_BOX})() !== null")
    assert page.locator("button.heatmap[aria-pressed=true]").count() == 1
    assert errors == []


def test_a_draft_sentence_leads_to_its_box_and_finding(
    page, live_server, project, member, scored, artifacts_dir: Path
):
    """A suggestion in exactly the shape the model stores (``CasePrediction.as_suggestion``)
    whose sentences name their box and finding."""
    # The same saved files registered again: its heatmaps come from real weights.
    version = ModelVersion.objects.create(
        project=project,
        number=2,
        model_kind=scored.model_kind,
        weights_path=scored.weights_path,
        weights_sha256=scored.weights_sha256,
        # Operating points that let its boxes and draft be shown (the point here is tracing).
        metrics=reliable_metrics(project),
    )
    versions.promote(version)  # the workspace shows the serving version's suggestion
    for case in Case.objects.filter(project=project, annotations__isnull=True):
        instance = case_inputs.first_instance(case)
        prediction = CasePrediction(
            case_id=str(case.pk),
            boxes=[
                PredictedBox("effusion", 70, 80, 40, 30, 0.9),
                PredictedBox("nodule", 20, 20, 12, 12, 0.7),
            ],
            findings={key: 0.1 for key in project.finding_keys} | {"effusion": 0.9},
            finding_uncertainty={key: 0.1 for key in project.finding_keys},
            report={"findings": "Right pleural effusion. Small nodule.", "impression": ""},
            report_sentences=[
                ReportSentence("findings", "Right pleural effusion.", ["effusion"], 0),
                ReportSentence("findings", "Small nodule.", ["nodule"], 1),
            ],
            report_uncertainty={"nll": 1.0},
            case_score=0.5,
        )
        data = prediction.as_suggestion()
        for box in data["boxes"]:
            box["instance_id"] = instance.pk
            box["frame"] = 1
        Suggestion.objects.create(case=case, model_version=version, **data)

    member("ann", "annotator")
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    assert "model v2" in page.text_content(".case-info")
    page.click("[data-sources=findings] summary")
    page.click("[data-sources=findings] button[data-trace-box=s1]")
    page.wait_for_selector("li[data-suggestion=s1].selected")

    # Accepted, the box made from the suggestion is the one the sentence leads to.
    page.click("li[data-suggestion=s0] button.accept")
    page.click("[data-sources=findings] button[data-trace-box=s0]")
    page.wait_for_selector("#box-list li[data-origin=suggested_accepted].selected")

    page.click("[data-sources=findings] button[data-trace-finding=effusion]")
    page.wait_for_function(
        "document.querySelector('button[data-heatmap=effusion]').ariaPressed === 'true'",
        timeout=30_000,
    )
    page.screenshot(path=str(artifacts_dir / "workspace-draft-sources.png"))
    assert page.evaluate(HEATMAP_BOX) is not None
