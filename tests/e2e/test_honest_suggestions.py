"""Honest suggestions in the workspace, in a real browser: a version trained on a handful of
labels has no reliable evidence, and the workspace says the model is still learning (no boxes,
no prefill, no draft, never "All suggestions decided"); a version whose validation evidence
makes a class reliable shows that class's boxes on the lesion and says why the rest is held
back. Each annotation records what its annotator was shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from active_learning.ml import synthetic
from active_learning.ml.interface import CasePrediction, PredictedBox
from active_learning.models import ModelVersion, Suggestion
from active_learning.services import case_inputs, serving, suggestions, versions
from active_learning.services.loop_settings import update_loop_settings
from annotations.models import Annotation, Case, ShownSuggestion
from annotations.services import annotate, queue
from tests.e2e.test_workspace import _case_id_shown, _image_point, _wait_rendered
from tests.support.browser import log_in
from tests.support.labels import TINY_MODEL, submit_ground_truth
from tests.support.training import train_version

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _open_workspace(page, live_server, project) -> None:
    page.click(f"tr[data-project='{project.pk}'] >> text=Start labeling")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/label/")
    page.wait_for_selector(".findings-table", timeout=30_000)
    _wait_rendered(page)


@pytest.fixture
def learning_version(project, cases, member, synthetic_dir):
    """Version 1 of the tiny model, trained on five labels with three validation cases (as a
    newcomer's first cycle), promoted, and its suggestions for the four unread cases."""
    Case.objects.filter(pk__in=[c.pk for c in cases[:3]]).update(is_validation=True)
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


def test_a_version_without_reliable_evidence_says_the_model_is_still_learning(
    page, live_server, project, member, learning_version, artifacts_dir: Path
):
    member("ann", "annotator")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    case = Case.objects.get(pk=_case_id_shown(page))
    stored = Suggestion.objects.get(case=case, model_version=learning_version)
    assert stored.finding_probabilities  # the model did answer; none of it is reliable

    page.wait_for_selector("#model-status[data-state=learning]")
    status = page.text_content("#model-status")
    assert "The model is still learning" in status
    lines = page.locator("#model-learning li").all_text_contents()
    for finding in project.label_schema["findings"]:
        assert any(f"still learning {finding['name'].lower()}" in line for line in lines), lines
    assert page.text_content("#suggestion-empty") == (
        "The model is still learning: no suggestions yet."
    )
    assert "All suggestions decided" not in page.text_content("body")
    assert page.locator("#suggestion-list li").count() == 0
    assert page.locator(".findings-table [aria-checked=true]").count() == 0
    assert set(page.locator(".findings-table .probability").all_text_contents()) == {"—"}
    assert page.input_value("#report-findings") == ""
    assert page.input_value("#report-impression") == ""
    page.screenshot(path=str(artifacts_dir / "workspace-model-still-learning.png"))

    page.click("#submit-case")
    page.wait_for_function(
        f"!document.querySelector('.case-info').textContent.includes('Case {case.pk} ')",
        timeout=30_000,
    )
    annotation = Annotation.objects.get(case=case, annotator__username="ann")
    assert annotation.status == "submitted"
    record = ShownSuggestion.objects.get(annotation=annotation)
    assert record.model_version_number == learning_version.number
    assert (record.boxes, record.findings_prefilled, record.report_draft) == ([], {}, {})
    assert record.change is None and record.summarised_at is not None
    assert errors == []


def _wait_image_shown(page) -> None:
    page.wait_for_function(
        "document.querySelector('.ml-overlay')?.textContent.includes('W ')", timeout=30_000
    )


def _lesion_case(project, cases, synthetic_dir) -> tuple[Case, dict]:
    """The first case whose ground truth has an effusion box, put first in the queue."""
    manifest = synthetic.load_manifest(synthetic_dir)
    for case, item in zip(cases, manifest, strict=True):
        boxes = [b for b in item["boxes"] if b["finding"] == "effusion"]
        if boxes:
            Case.objects.filter(pk=case.pk).update(priority=10.0)
            return case, boxes[0]
    raise AssertionError("the synthetic set has no effusion")


def _reliable_for(project, reliable: set[str]) -> dict:
    """Validation operating points in which only the ``reliable`` classes passed."""

    def box(key: str) -> dict:
        if key in reliable:
            return {"threshold": 0.5, "validation_positives": 14, "ap50": 0.62,
                    "precision": 0.82, "recall": 0.64, "reliable": True,
                    "reason": "shown at score >= 0.500"}  # fmt: skip
        return {"threshold": None, "validation_positives": 2, "ap50": None, "precision": None,
                "recall": None, "reliable": False,
                "reason": "still learning: 2 of 5 validation examples labelled"}  # fmt: skip

    def finding(key: str) -> dict:
        if key in reliable:
            return {"prefill_threshold": 0.6, "absent_threshold": None, "positives": 14,
                    "reliable": True, "reason": "prefilled at probability >= 0.60"}  # fmt: skip
        return {"prefill_threshold": None, "absent_threshold": None, "positives": 2,
                "reliable": False,
                "reason": "still learning: 2 of 5 validation examples labelled"}  # fmt: skip

    keys = project.finding_keys
    points = {
        "boxes": {k: box(k) for k in keys},
        "findings": {k: finding(k) for k in keys},
        "report": {
            "metric": "rouge_l_f_beta1.2",
            "value": 0.12,
            "floor": 0.3,
            "reliable": False,
            "reason": "rouge_l_f_beta1.2 0.12 is below the floor of 0.30",
        },
    }
    return {"validation": {"operating_points": points}}


def test_a_version_with_reliable_boxes_shows_them_on_the_lesion(
    page, live_server, project, member, cases, synthetic_dir, artifacts_dir: Path
):
    """Effusion boxes are reliable in this version, nodules are not, the report is below its
    floor: the effusion box is shown on the lesion, the rest is explained."""
    case, lesion = _lesion_case(project, cases, synthetic_dir)
    version = ModelVersion.objects.create(
        project=project, number=1, metrics=_reliable_for(project, {"effusion"})
    )
    versions.promote(version)
    x, y, w, h = lesion["x"] + 2, lesion["y"] + 1, lesion["width"] - 3, lesion["height"] - 2
    prediction = CasePrediction(
        case_id=str(case.pk),
        boxes=[
            PredictedBox("effusion", x, y, w, h, 0.88),
            PredictedBox("effusion", 5, 5, 10, 10, 0.2),  # below the class's threshold
            PredictedBox("nodule", 30, 30, 8, 8, 0.95),  # a class the model is still learning
        ],
        findings={key: 0.1 for key in project.finding_keys} | {"effusion": 0.9, "nodule": 0.9},
        finding_uncertainty={key: 0.1 for key in project.finding_keys},
        report={"findings": "..........", "impression": ".........."},
        report_sentences=[],
        report_uncertainty={},
        case_score=0.5,
    )
    data = prediction.as_suggestion()
    instance = case_inputs.first_instance(case)
    for box in data["boxes"]:
        box["instance_id"] = instance.pk
        box["frame"] = 1
    Suggestion.objects.create(case=case, model_version=version, **data)

    member("ann", "annotator")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    assert _case_id_shown(page) == case.pk
    page.wait_for_selector("#model-status[data-state=shown]")
    assert page.locator("#suggestion-list li").count() == 1
    assert "Pleural effusion" in page.text_content("#suggestion-list li")
    lines = page.locator("#model-learning li").all_text_contents()
    assert any(
        "still learning nodule: 2 of 5 validation examples labelled" in line for line in lines
    )
    assert any(line.startswith("No report draft") for line in lines)
    assert page.input_value("#report-findings") == ""  # the dots are never shown
    assert page.locator("[data-finding=effusion] [aria-checked=true]").text_content() == "present"
    assert page.locator("[data-finding=nodule] [aria-checked=true]").count() == 0

    # The box sits on the lesion: a click at the lesion's centre on the image selects it (once
    # the image is drawn: its window/level overlay appears with it).
    _wait_image_shown(page)
    at = _image_point(page)
    page.mouse.click(*at(lesion["x"] + lesion["width"] / 2, lesion["y"] + lesion["height"] / 2))
    page.wait_for_selector("li[data-suggestion=s0].selected")
    page.screenshot(path=str(artifacts_dir / "workspace-reliable-boxes.png"))
    page.click("li[data-suggestion=s0] button.accept")
    page.wait_for_selector("#box-list li[data-origin=suggested_accepted]")
    assert page.text_content("#suggestion-empty") == "All suggestions decided."

    page.click("#submit-case")
    page.wait_for_function(
        f"!document.querySelector('.case-info').textContent.includes('Case {case.pk} ')",
        timeout=30_000,
    )
    annotation = Annotation.objects.get(case=case, annotator__username="ann")
    record = ShownSuggestion.objects.get(annotation=annotation)
    assert record.model_version_number == 1
    assert [b["finding"] for b in record.boxes] == ["effusion"]
    assert record.report_draft == {}
    assert record.boxes_kept_fraction == 1.0
    assert errors == []


def _iou(a: dict, b: dict) -> float:
    ax2, ay2 = a["x"] + a["width"], a["y"] + a["height"]
    bx2, by2 = b["x"] + b["width"], b["y"] + b["height"]
    w = max(0.0, min(ax2, bx2) - max(a["x"], b["x"]))
    h = max(0.0, min(ay2, by2) - max(a["y"], b["y"]))
    inter = w * h
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


def test_a_really_trained_version_shows_boxes_that_sit_on_lesions(
    page, live_server, project, member, tmp_path, artifacts_dir: Path, settings
):
    """No hand-made evidence: a real cycle (from the stored detector starting point) trains on
    8 labels, fits its operating points on 44 labelled validation cases, is promoted by the
    guard and scores the unread cases; the workspace shows only the classes that passed, and
    each box it shows on the first lesion case matches a true lesion at IoU >= 0.5."""
    from active_learning.models import RetrainingCycle
    from active_learning.services import cycles
    from tests.conftest import ingest_synthetic

    settings.MODELS_DIR = tmp_path / "models"
    data = tmp_path / "cases"
    synthetic.generate_dataset(seed=11, count=60, out_dir=data, size=256)
    cases = ingest_synthetic(project, data)
    update_loop_settings(
        project=project,
        model_config={"train_steps": 40, "vocab_size": 500, "report_max_tokens": 100},
        auto_promote=True,
    )
    submit_ground_truth(project=project, cases=cases, synthetic_dir=data,
                        annotator=member("reader", "annotator"), count=52)  # fmt: skip
    labelled = [c.pk for c in cases if c.annotations.exists()]
    Case.objects.filter(pk__in=labelled[:44]).update(is_validation=True)
    versions.clear_cache()
    cycle = cycles.trigger_cycle(project=project)
    cycles.run_training(cycle.pk, owner="test-host:1:task-a")
    cycle.refresh_from_db()
    for index in range(len(cycle.chunks)):
        cycles.run_scoring_chunk(cycle.pk, index)
    cycles.run_ranking(cycle.pk)
    cycle.refresh_from_db()
    assert cycle.status == RetrainingCycle.Status.SUCCEEDED, (cycle.error, cycle.log)
    version = cycle.model_version
    assert version.status == ModelVersion.Status.PROMOTED, version.promotion_check
    assert "stored starting point" in version.parent_reason
    points = serving.operating_points(version)
    reliable = {k for k, p in points["boxes"].items() if p["reliable"]}
    assert reliable, points["boxes"]

    # ingest_synthetic returns the cases in the manifest's order
    manifest = {c.pk: item for c, item in zip(cases, synthetic.load_manifest(data), strict=True)}
    unread = [c for c in cases if not c.annotations.exists()]
    chosen, truth = None, []
    for case in unread:
        truth = [b for b in manifest[case.pk]["boxes"] if b["finding"] in reliable]
        if truth and serving.serve(case).boxes:
            chosen = case
            break
    assert chosen is not None, "no unread case with a lesion of a reliable class got a box"
    served = serving.serve(chosen)
    for box in served.boxes:  # every box shown sits on a true lesion of its class
        same = [t for t in manifest[chosen.pk]["boxes"]
                if t["finding"] == box["finding"]]  # fmt: skip
        assert same and max(_iou(box, t) for t in same) >= 0.5, (box, same)
    Case.objects.filter(pk=chosen.pk).update(priority=100.0)

    member("ann", "annotator")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    assert _case_id_shown(page) == chosen.pk
    page.wait_for_selector("#model-status[data-state=shown]")
    assert page.locator("#suggestion-list li").count() == len(served.boxes)
    _wait_image_shown(page)

    # A click at a shown box's centre (one no other shown box covers) selects it: the box is
    # drawn where the model put it, on the lesion.
    def centre(b: dict) -> tuple[float, float]:
        return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2

    def inside(point: tuple[float, float], b: dict) -> bool:
        x, y = point
        return b["x"] <= x <= b["x"] + b["width"] and b["y"] <= y <= b["y"] + b["height"]

    alone = [b for b in served.boxes
             if not any(inside(centre(b), o) for o in served.boxes if o is not b)]  # fmt: skip
    assert alone, served.boxes
    at = _image_point(page, size=256)
    page.mouse.click(*at(*centre(alone[0])))
    page.wait_for_selector(f"li[data-suggestion={alone[0]['id']}].selected")
    page.screenshot(path=str(artifacts_dir / "workspace-really-trained.png"))
    assert errors == []
    versions.clear_cache()


def test_reviewer_sorts_and_filters_by_how_much_the_suggestion_was_changed(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    """Two reads shown the same suggestion: one kept its box, one replaced it. The review page
    puts the changed one first when asked, and filters to the kept one."""
    version = ModelVersion.objects.create(
        project=project, number=1, metrics=_reliable_for(project, {"nodule"})
    )
    versions.promote(version)
    submitted = {}
    for name, box in (("kept", (20, 20, 30, 30)), ("moved", (80, 80, 20, 20))):
        user = member(name, "annotator")
        case = queue.lease_next_case(project=project, annotator=user)
        instance = case_inputs.first_instance(case)
        Suggestion.objects.create(
            case=case,
            model_version=version,
            boxes=[
                {
                    "id": "s0",
                    "instance_id": instance.pk,
                    "frame": 1,
                    "x": 20,
                    "y": 20,
                    "width": 30,
                    "height": 30,
                    "finding": "nodule",
                    "score": 0.9,
                }
            ],
        )
        annotation = annotate.start_annotation(case=case, annotator=user)
        served = serving.serve_and_record(case, user)  # as the workspace's request does
        assert [b["id"] for b in served.boxes] == ["s0"]
        x, y, w, h = box
        annotate.submit(
            annotation=annotation,
            actor=user,
            expected_version=annotation.version,
            boxes=[
                annotate.BoxInput(
                    instance_id=instance.pk, x=x, y=y, width=w, height=h, finding="nodule"
                )
            ],
        )
        submitted[name] = annotation.pk

    member("rev", "reviewer")
    log_in(page, live_server, "rev")
    page.goto(f"{live_server.url}/projects/{project.pk}/review/")
    page.wait_for_selector("#review-list button.selected", timeout=30_000)
    page.select_option("#review-ordering", "-change")
    page.wait_for_function(
        f"document.querySelector('#review-list li button')?.dataset.annotation === "
        f"'{submitted['moved']}'"
    )
    assert "changed 100%" in page.text_content(f"[data-annotation='{submitted['moved']}']")
    page.select_option("#review-filter", "kept")
    page.wait_for_function("document.querySelectorAll('#review-list li').length === 1")
    assert page.get_attribute("#review-list li button", "data-annotation") == str(submitted["kept"])
    page.click("#review-list li button")
    page.wait_for_selector("#shown-summary")
    assert "100%" in page.text_content("#shown-summary tr:has-text('Boxes kept')")
    page.screenshot(path=str(artifacts_dir / "review-sorted-by-change.png"))
