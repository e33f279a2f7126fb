"""Review of 3D lesion boxes in a real browser (issue 21, part 3).

- Adjudication: two readers' 3D boxes on a CT series ingested through the real DICOM path are
  listed with their series, slices and size in mm, paired by 3D IoU (hand-computed), drawn on
  the slices they were drawn on (each slice with every box whose range holds it), and the
  adjudicator keeps one reader's box, which the final label stores with its slice range.
- Suggestions: a model's 3D suggestions (stored as the 3D box model has them:
  annotations.services.volume_boxes.suggestion_box) are accepted, edited and rejected in the
  workspace as 2D ones are; the accepted and edited ones become 3D boxes over the suggested
  slices, the rejected one is recorded, and the shown-suggestion record counts what was kept."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from active_learning.models import ModelVersion, Suggestion
from annotations.models import Annotation, Box, Case, DoubleRead, ShownSuggestion
from annotations.series_stacks import stack_of
from annotations.services import annotate, volume_boxes
from tests.annotations.test_double_reading import ALL_ABSENT
from tests.e2e.test_ct_series_stack import SLICES, _ingest_ct, _open, _wait_slice
from tests.e2e.test_workspace import _image_point, _wait_saved, reliable_metrics
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _read(case: Case, user, boxes: list[annotate.BoxInput]) -> Annotation:
    annotation = annotate.start_annotation(case=case, annotator=user)
    return annotate.submit(
        annotation=annotation,
        actor=user,
        expected_version=annotation.version,
        findings={**ALL_ABSENT, "nodule": "present", "mass": "present"},
        report={"findings": "Nodule and mass.", "impression": ""},
        boxes=boxes,
    )


def _stored_from(suggestion_box_id: str, timeout_s: float = 20.0) -> Box:
    """The annotator's stored box made from suggestion box ``suggestion_box_id``, once saved."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        box = Box.objects.filter(
            annotation__annotator__username="ann", suggestion_box_id=suggestion_box_id
        ).first()
        if box is not None:
            return box
        time.sleep(0.1)
    raise AssertionError(f"no box from suggestion {suggestion_box_id} was stored")


def _size_text(box: Box) -> str:
    return " \N{MULTIPLICATION SIGN} ".join(f"{v:.1f}" for v in box.patient_mm["size"]) + " mm"


def test_adjudicator_sees_both_readers_3d_boxes_and_keeps_one(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    series, _ = _ingest_ct(project, tmp_path)
    case = series.study.case
    Case.objects.filter(pk=case.pk).update(required_reads=2)
    case.refresh_from_db()
    order = stack_of(series).instance_ids
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    # Nodules: the same 20 x 16 outline, Alice over slices 5..9 (drawn on 7), Bob over 8..14
    # (drawn on 11): 2 shared slices of 5 + 7 - 2 = 10, 3D IoU 0.20, no pair. Masses over
    # 15..18: Alice at x 80, Bob at x 81: 19 x 16 x 4 of 2 * 20 x 16 x 4 - that: IoU 19/21.
    a = _read(case, alice, [
        annotate.BoxInput(order[6], 40, 44, 20, 16, "nodule", slices=(5, 9)),
        annotate.BoxInput(order[15], 80, 40, 20, 16, "mass", slices=(15, 18)),
    ])  # fmt: skip
    b = _read(case, bob, [
        annotate.BoxInput(order[10], 40, 44, 20, 16, "nodule", slices=(8, 14)),
        annotate.BoxInput(order[16], 81, 40, 20, 16, "mass", slices=(15, 18)),
    ])  # fmt: skip
    row = DoubleRead.objects.get(case=case)
    assert row.status == DoubleRead.Status.PENDING

    member("rita", "reviewer")
    log_in(page, live_server, "rita")
    page.click("text=Adjudication")
    page.wait_for_selector("#adjudication[data-state=ready]")
    listed = page.locator("[data-testid=adjudication-table] tbody tr")
    # One of two nodules and one of two masses matched: box F1 0.50.
    assert listed.first.locator("td.num").inner_text() == "0.50"
    listed.first.locator("button").click()
    page.wait_for_selector("#adjudication-detail figure.image svg rect")
    page.wait_for_selector("#adjudication[data-state=ready]")

    rows = {
        r.get_attribute("data-box-row").split("-")[0] + ":" + r.locator("th").inner_text(): r
        for r in page.locator("tr[data-box-row]").all()
    }
    assert sorted(rows) == ["a:nodule", "b:nodule", "pair:mass"]
    assert rows["pair:mass"].locator("td.num").inner_text() == f"{19 / 21:.2f}"
    # Read from the database (a submitted annotation's primed box relation answers .all() only).
    alice_nodule = Box.objects.get(annotation=a, finding="nodule")
    bob_nodule = Box.objects.get(annotation=b, finding="nodule")
    cells = rows["a:nodule"].locator("td").all()
    assert cells[0].inner_text() == (
        f"series {series.pk} · slices 5\N{EN DASH}9 · {_size_text(alice_nodule)}"
        " · 20\N{MULTIPLICATION SIGN}16 at 40,44"
    )
    assert f"slices 8\N{EN DASH}14 · {_size_text(bob_nodule)}" in (
        rows["b:nodule"].locator("td").all()[1].inner_text()
    )

    # The key slices: where each box was drawn, with every box over that slice.
    figures = {f.get_attribute("data-caption"): f for f in page.locator("figure.image").all()}
    total = f" / {SLICES}"
    assert sorted(figures) == sorted(
        f"Series {series.pk} · slice {n}{total}" for n in (7, 11, 16, 17)
    )

    def drawn(slice_number: int) -> list[str]:
        figure = figures[f"Series {series.pk} · slice {slice_number}{total}"]
        return sorted(r.get_attribute("class").split()[0] for r in figure.locator("rect").all())

    assert drawn(7) == ["reader-a"]  # Bob's nodule starts at slice 8
    assert drawn(11) == ["reader-b"]  # Alice's ends at 9
    assert drawn(16) == ["reader-a", "reader-b"]  # both masses cover 15..18
    page.screenshot(path=str(artifacts_dir / "adjudication-3d-boxes.png"))

    # Keep Bob's nodule and Bob's mass.
    rows["b:nodule"].locator("select").select_option("b")
    rows["pair:mass"].locator("select").select_option("b")
    page.click("[data-testid=save-final]")
    page.wait_for_selector("[data-testid=no-adjudications]")
    row.refresh_from_db()
    assert row.status == DoubleRead.Status.ADJUDICATED
    final = Annotation.objects.get(pk=row.final_annotation_id)
    kept = sorted(
        (x.finding, x.instance_id, x.x, x.series_id, x.slice_first, x.slice_last)
        for x in final.boxes.all()
    )
    assert kept == [
        ("mass", order[16], 81.0, series.pk, 15, 18),
        ("nodule", order[10], 40.0, series.pk, 8, 14),
    ]
    assert final.boxes.get(finding="nodule").patient_mm == bob_nodule.patient_mm


def test_3d_suggestions_are_accepted_edited_and_rejected_like_2d_ones(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    series, _ = _ingest_ct(project, tmp_path)
    case = series.study.case
    version = ModelVersion.objects.create(
        project=project, number=1, status="promoted", metrics=reliable_metrics(project)
    )
    volumes: dict = {}
    boxes = [
        volume_boxes.suggestion_box(
            box_id=box_id,
            series_id=series.pk,
            x=x,
            y=y,
            width=w,
            height=h,
            slices=slices,
            finding=finding,
            score=score,
            volumes=volumes,
        )
        for box_id, x, y, w, h, slices, finding, score in [
            ("s0", 40, 44, 20, 16, (5, 9), "nodule", 0.9),
            ("s1", 70, 40, 16, 16, (12, 15), "mass", 0.8),
            ("s2", 30, 70, 10, 10, (18, 20), "nodule", 0.7),
        ]
    ]
    Suggestion.objects.create(case=case, model_version=version, boxes=boxes)
    member("ann", "annotator")
    errors = _open(page, live_server, project)
    order = stack_of(series).instance_ids

    listed = page.locator("#suggestion-list li")
    assert listed.count() == 3
    assert "slices 5\N{EN DASH}9" in page.inner_text("[data-suggestion=s0]")

    # Accept s0 unchanged.
    page.click("[data-suggestion=s0] .accept")
    accepted = _stored_from("s0")
    assert accepted.origin == Box.Origin.SUGGESTED_ACCEPTED
    assert (accepted.series_id, accepted.slice_first, accepted.slice_last) == (series.pk, 5, 9)
    assert accepted.instance_id == order[6]  # the middle slice, 7
    assert accepted.patient_mm == boxes[0]["patient_mm"]

    # Reject s2.
    page.click("[data-suggestion=s2] .reject")
    page.wait_for_selector("[data-suggestion=s2]", state="detached")

    # Edit s1: selecting it shows its middle slice (13), where its corner is dragged 4 pixels.
    page.click("[data-suggestion=s1] .select-box")
    _wait_slice(page, 13)
    page.wait_for_function(
        "document.querySelector('#viewer svg [data-annotation-uid=\"s:s1\"]') !== null"
    )
    at = _image_point(page)
    page.mouse.move(*at(86, 56))
    page.mouse.down()
    page.mouse.move(*at(90, 60), steps=8)
    page.mouse.up()
    edited = _stored_from("s1")
    assert edited.origin == Box.Origin.SUGGESTED_EDITED
    assert (edited.slice_first, edited.slice_last) == (12, 15)
    assert (edited.width, edited.height) == (pytest.approx(20, abs=1.5), pytest.approx(20, abs=1.5))
    _wait_saved(page)
    annotation = Annotation.objects.get(case=case, annotator__username="ann")
    assert annotation.rejected_suggestion_boxes == ["s2"]
    page.screenshot(path=str(artifacts_dir / "workspace-3d-suggestions.png"))

    # Submitted: two of the three shown 3D boxes were kept (the edited one overlaps its
    # suggestion at 3D IoU 256/400 = 0.64, over the same slices).
    page.locator("#viewer").focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#queue-empty", timeout=30_000)
    record = ShownSuggestion.objects.get(annotation__case=case)
    assert record.boxes_kept_fraction == pytest.approx(2 / 3)
    assert errors == []
