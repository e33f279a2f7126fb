"""The record of what a model showed an annotator: kept through drafts, frozen at submission
with how much the annotator changed it, and the review queue sorted and filtered by it."""

from __future__ import annotations

import pytest

from annotations import selectors
from annotations.models import Annotation, ShownSuggestion
from annotations.services import annotate, queue, shown_suggestions

pytestmark = pytest.mark.django_db

DRAFT = {
    "findings": "The heart size is normal. Small nodule in the right upper lobe.",
    "impression": "Pulmonary nodule. CT chest recommended.",
}


def _leased(project, annotator):
    case = queue.lease_next_case(project=project, annotator=annotator)
    assert case is not None
    return case, annotate.start_annotation(case=case, annotator=annotator)


def _instance(case):
    return case.study.series.first().instances.first()


def _show(annotation, case, *, version=3, score=0.9, prefilled=None, draft=None):
    instance = _instance(case)
    return shown_suggestions.record_shown(
        annotation=annotation,
        model_version_pk=100 + version,
        model_version_number=version,
        suggestion_pk=None,
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
                "score": score,
            },
            {
                "id": "s1",
                "instance_id": instance.pk,
                "frame": 1,
                "x": 70,
                "y": 70,
                "width": 20,
                "height": 20,
                "finding": "mass",
                "score": score,
            },
        ],
        findings_prefilled=prefilled if prefilled is not None else {"nodule": "present"},
        finding_probabilities={"nodule": score, "mass": 0.4},
        report_draft=draft if draft is not None else DRAFT,
        withheld=[{"kind": "boxes", "finding": "effusion", "message": "still learning"}],
    )


def _submit(annotation, case, boxes, findings, report):
    instance = _instance(case)
    return annotate.submit(
        annotation=annotation,
        actor=annotation.annotator,
        expected_version=annotation.version,
        findings=findings,
        report=report,
        boxes=[annotate.BoxInput(instance_id=instance.pk, **b) for b in boxes],
    )


def test_submission_records_how_much_the_annotator_changed_the_suggestion(project, member, cases):
    ann = member("ann", "annotator")
    case, annotation = _leased(project, ann)
    _show(annotation, case)
    _submit(
        annotation,
        case,
        # s0 kept with a small edit (IoU 0.69), s1 not kept, one box of their own.
        boxes=[
            {"x": 22, "y": 22, "width": 32, "height": 26, "finding": "nodule"},
            {"x": 5, "y": 90, "width": 10, "height": 10, "finding": "effusion"},
        ],
        findings={"nodule": "absent", "mass": "absent"},
        report=DRAFT,
    )
    record = ShownSuggestion.objects.get(annotation=annotation)
    assert record.model_version_number == 3
    assert record.boxes_kept_fraction == pytest.approx(0.5)
    assert record.findings_changed_fraction == pytest.approx(1.0)
    assert record.draft_edit_distance == pytest.approx(0.0)
    assert record.change == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # Two boxes at 0.9 and the nodule prefilled "present" at p = 0.9.
    assert record.confidence == pytest.approx(0.9)
    assert record.summarised_at is not None


def test_a_box_moved_off_the_suggestion_is_not_kept(project, member, cases):
    ann = member("ann", "annotator")
    case, annotation = _leased(project, ann)
    _show(annotation, case, prefilled={}, draft={})
    _submit(
        annotation,
        case,
        boxes=[
            {"x": 35, "y": 35, "width": 30, "height": 30, "finding": "nodule"},  # IoU 0.14
            {"x": 70, "y": 70, "width": 20, "height": 20, "finding": "nodule"},  # wrong class
        ],
        findings={},
        report={"impression": "Nodule."},
    )
    record = ShownSuggestion.objects.get(annotation=annotation)
    assert record.boxes_kept_fraction == 0.0
    assert record.findings_changed_fraction is None and record.draft_edit_distance is None
    assert record.change == 1.0


def test_recording_keeps_the_etag_and_stops_once_submitted(project, member, cases):
    ann = member("ann", "annotator")
    case, annotation = _leased(project, ann)
    version = annotation.version
    _show(annotation, case, version=1)
    _show(annotation, case, version=2)  # the latest showing replaces the earlier one
    annotation.refresh_from_db()
    assert annotation.version == version
    assert ShownSuggestion.objects.get(annotation=annotation).model_version_number == 2

    _submit(annotation, case, boxes=[], findings={}, report={})
    assert _show(annotation, case, version=4) is None
    assert ShownSuggestion.objects.get(annotation=annotation).model_version_number == 2


def _submitted_with_change(project, member, name, score, kept):
    """An annotation shown two boxes scored ``score`` and submitted keeping ``kept`` of them."""
    user = member(name, "annotator")
    case, annotation = _leased(project, user)
    _show(annotation, case, score=score, prefilled={}, draft={})
    boxes = [
        {"x": 20, "y": 20, "width": 30, "height": 30, "finding": "nodule"},
        {"x": 70, "y": 70, "width": 20, "height": 20, "finding": "mass"},
    ][:kept]
    _submit(annotation, case, boxes=boxes, findings={}, report={})
    return annotation


def test_review_queue_sorts_and_filters_by_confidence_and_change(project, member, cases, api_for):
    sure_kept = _submitted_with_change(project, member, "a1", score=0.95, kept=2)
    unsure_dropped = _submitted_with_change(project, member, "a2", score=0.55, kept=0)
    middle = _submitted_with_change(project, member, "a3", score=0.75, kept=1)
    # Submitted without ever being shown a suggestion: last in every model-based order.
    plain = member("a4", "annotator")
    case, annotation = _leased(project, plain)
    _submit(annotation, case, boxes=[], findings={}, report={})
    client = api_for(member("rev", "reviewer"))
    url = f"/api/projects/{project.pk}/review-queue/"

    def ids(query: str) -> list[int]:
        response = client.get(url + query)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids("?ordering=-change") == [unsure_dropped.pk, middle.pk, sure_kept.pk, annotation.pk]
    assert ids("?ordering=confidence") == [
        unsure_dropped.pk,
        middle.pk,
        sure_kept.pk,
        annotation.pk,
    ]
    assert ids("?ordering=-confidence")[:3] == [sure_kept.pk, middle.pk, unsure_dropped.pk]
    assert ids("?change_min=0.4") == [unsure_dropped.pk, middle.pk]
    assert ids("?confidence_min=0.7&change_max=0.6") == [sure_kept.pk, middle.pk]
    assert ids("?model_version=3") == [sure_kept.pk, unsure_dropped.pk, middle.pk]
    assert ids("?model_version=9") == []

    item = client.get(url + "?ordering=-change").json()["results"][0]
    shown = item["shown_suggestion"]
    assert shown["model_version_number"] == 3
    assert shown["boxes_kept_fraction"] == 0.0 and shown["change"] == 1.0
    assert len(shown["boxes"]) == 2


@pytest.mark.parametrize(
    "query",
    [
        "?ordering=score",
        "?confidence_min=1.5",
        "?change_max=-1",
        "?change_min=nan",
        "?model_version=x",
    ],
)
def test_review_queue_refuses_bad_sorting_and_filters_with_400(project, member, api_for, query):
    client = api_for(member("rev", "reviewer"))
    response = client.get(f"/api/projects/{project.pk}/review-queue/{query}")
    assert response.status_code == 400, response.content


def test_annotation_detail_shows_what_was_shown(project, member, cases, api_for):
    ann = member("ann", "annotator")
    case, annotation = _leased(project, ann)
    client = api_for(ann)
    assert client.get(f"/api/annotations/{annotation.pk}/").json()["shown_suggestion"] is None
    _show(annotation, case)
    shown = client.get(f"/api/annotations/{annotation.pk}/").json()["shown_suggestion"]
    assert shown["report_draft"] == DRAFT
    assert shown["findings_prefilled"] == {"nodule": "present"}
    assert shown["change"] is None  # not submitted yet
    assert Annotation.objects.get(pk=annotation.pk).status == "draft"


def test_outcomes_per_version_count_exactly_what_each_version_showed(project, member, cases):
    # Version 3 shown twice (boxes kept 2 of 2, then 0 of 2); version 5 once (1 of 2).
    for name, kept in (("a1", 2), ("a2", 0)):
        _submitted_with_change(project, member, name, score=0.9, kept=kept)
    user = member("a3", "annotator")
    case, annotation = _leased(project, user)
    _show(annotation, case, version=5, prefilled={}, draft=DRAFT)
    _submit(
        annotation,
        case,
        boxes=[{"x": 20, "y": 20, "width": 30, "height": 30, "finding": "nodule"}],
        findings={},
        report={"findings": DRAFT["findings"], "impression": "Pulmonary nodule."},
    )
    # Shown but not submitted: not an outcome yet.
    case, open_annotation = _leased(project, member("a4", "annotator"))
    _show(open_annotation, case, version=5)

    outcomes = selectors.shown_suggestion_outcomes(project)
    assert [o["model_version"] for o in outcomes] == [3, 5]
    v3, v5 = outcomes
    assert (v3["annotations"], v3["boxes_shown"], v3["boxes_kept"]) == (2, 4, 2)
    assert v3["drafts_shown"] == 0 and v3["draft_edit_distance"] is None
    assert (v5["annotations"], v5["boxes_shown"], v5["boxes_kept"]) == (1, 2, 1)
    assert v5["drafts_shown"] == 1
    assert v5["draft_edit_distance"] == pytest.approx(3 / 17)  # 3 of 17 words dropped
