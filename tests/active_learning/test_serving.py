"""Serving a case's suggestion to the workspace: only what the version's validation evidence
supports, the reason for the rest in words, and a record of what the annotator was shown."""

from __future__ import annotations

import pytest

from active_learning.models import ModelVersion, Suggestion
from active_learning.services import serving
from annotations.models import ShownSuggestion
from annotations.services import annotate, queue

pytestmark = pytest.mark.django_db

GOOD_DRAFT = {
    "findings": "The heart size is normal. There is a 1.2 cm nodule in the right upper lobe.",
    "impression": "Pulmonary nodule. CT chest recommended.",
}


def _box_point(reliable: bool, threshold: float | None = 0.5, positives: int = 9) -> dict:
    reason = (
        f"shown at score >= {threshold}"
        if reliable
        else f"still learning: {positives} of 5 validation examples labelled"
    )
    return {
        "threshold": threshold,
        "validation_positives": positives,
        "ap50": 0.4 if reliable else None,
        "precision": 0.8 if reliable else None,
        "recall": 0.6 if reliable else None,
        "reliable": reliable,
        "reason": reason,
    }


def _finding_point(reliable: bool, prefill: float | None = 0.6, absent: float | None = 0.1):
    return {
        "prefill_threshold": prefill if reliable else None,
        "absent_threshold": absent if reliable else None,
        "positives": 8 if reliable else 2,
        "reliable": reliable,
        "reason": "prefilled"
        if reliable
        else "still learning: 2 of 5 validation examples labelled",
    }


def _points(*, report_reliable: bool = True) -> dict:
    boxes = {k: _box_point(False, None, 2) for k in ("mass", "consolidation", "pneumothorax")}
    boxes |= {"nodule": _box_point(True), "effusion": _box_point(True, 0.7)}
    boxes["cardiomegaly"] = _box_point(True, 0.6)
    findings = {k: _finding_point(True) for k in ("nodule", "effusion", "cardiomegaly")}
    findings |= {k: _finding_point(False) for k in ("mass", "consolidation", "pneumothorax")}
    report = {
        "metric": "rouge_l_f_beta1.2",
        "value": 0.5 if report_reliable else 0.1,
        "floor": 0.3,
        "reliable": report_reliable,
        "reason": "rouge_l_f_beta1.2 0.10 is below the floor of 0.30",
    }
    return {"boxes": boxes, "findings": findings, "report": report}


def _version(project, number: int, points: dict | None, status: str = "promoted"):
    metrics = {"validation": {"operating_points": points}} if points is not None else {}
    return ModelVersion.objects.create(
        project=project, number=number, status=status, metrics=metrics
    )


def _suggest(version, case, draft=GOOD_DRAFT):
    instance = case.study.series.first().instances.first()

    def box(i, finding, score):
        return {"id": f"s{i}", "instance_id": instance.pk, "frame": 1, "x": 10 + 20 * i,
                "y": 10, "width": 15, "height": 15, "finding": finding, "score": score}  # fmt: skip

    return Suggestion.objects.create(
        case=case,
        model_version=version,
        boxes=[box(0, "nodule", 0.8), box(1, "nodule", 0.3), box(2, "mass", 0.95)],
        finding_probabilities={
            "nodule": 0.8,
            "effusion": 0.05,
            "cardiomegaly": 0.3,
            "mass": 0.9,
            "consolidation": 0.01,
            "pneumothorax": 0.02,
        },
        report_draft=draft,
        uncertainty={
            "report_links": [
                {"section": "findings", "text": "Nodule.", "findings": ["nodule"], "box_index": 0},
                {"section": "findings", "text": "Mass.", "findings": ["mass"], "box_index": 2},
            ]
        },
    )


def test_before_any_version_the_model_is_learning(project, cases):
    served = serving.serve(cases[0])
    assert served.state == "learning"
    assert "no version has been trained yet" in served.message
    assert served.boxes == [] and served.report_draft == {}


def test_a_version_without_operating_points_shows_nothing(project, cases):
    version = _version(project, 1, None)
    _suggest(version, cases[0], draft={"findings": "..........", "impression": ".........."})
    served = serving.serve(cases[0])
    assert served.state == "learning"
    assert (served.boxes, served.finding_probabilities, served.findings_prefilled) == ([], {}, {})
    assert served.report_draft == {}
    messages = {w.finding: w.message for w in served.withheld}
    assert messages["nodule"] == "The model is still learning nodule: no reliable version yet."
    assert len(messages) == len(project.finding_keys)


def test_only_reliable_classes_above_their_thresholds_are_shown(project, cases):
    _suggest(_version(project, 1, _points()), cases[0])
    served = serving.serve(cases[0])
    assert served.state == "shown"
    assert [b["id"] for b in served.boxes] == ["s0"]  # s1 below 0.5, s2 of an unreliable class
    assert served.finding_probabilities == {"nodule": 0.8, "effusion": 0.05, "cardiomegaly": 0.3}
    assert served.findings_prefilled == {"nodule": "present", "effusion": "absent"}
    assert served.report_draft == GOOD_DRAFT
    # The mass sentence no longer leads to its hidden box.
    assert [link["box_index"] for link in served.report_links] == [0, None]
    mass = next(w for w in served.withheld if w.finding == "mass")
    assert mass.kinds == ("boxes", "findings")
    assert mass.message == (
        "The model is still learning mass: 2 of 5 validation examples labelled. "
        "No boxes or prefilled findings for it yet."
    )
    assert {w.finding for w in served.withheld} == {"mass", "consolidation", "pneumothorax"}


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        ({"findings": "..........", "impression": ".........."}, "repeated punctuation"),
        ({"findings": "effusion effusion effusion effusion", "impression": ""}, "over and over"),
    ],
)
def test_a_degenerate_draft_is_never_served(project, cases, draft, reason):
    _suggest(_version(project, 1, _points()), cases[0], draft=draft)
    served = serving.serve(cases[0])
    assert served.report_draft == {} and served.report_links == []
    report = next(w for w in served.withheld if w.kinds == ("report",))
    assert reason in report.message


def test_no_draft_below_the_report_floor(project, cases):
    _suggest(_version(project, 1, _points(report_reliable=False)), cases[0])
    served = serving.serve(cases[0])
    assert served.report_draft == {}
    report = next(w for w in served.withheld if w.kinds == ("report",))
    assert "below the floor of 0.30" in report.message
    assert served.boxes  # boxes of reliable classes are still shown


def test_no_draft_judged_on_too_few_validation_reports(project, cases):
    points = _points()
    points["report"] |= {
        "value": 0.88, "reports": 3, "min_reports": 20, "reliable": False,
        "reason": "the drafts are judged on 3 validation reports, fewer than the 20 needed",
    }  # fmt: skip
    _suggest(_version(project, 1, points), cases[0])
    served = serving.serve(cases[0])
    assert served.report_draft == {} and served.report_links == []
    report = next(w for w in served.withheld if w.kinds == ("report",))
    assert report.message == (
        "No report draft: the model is still learning to write reports "
        "(3 of 20 validation reports labelled to judge its drafts on)."
    )
    assert served.boxes


def test_the_serving_versions_suggestion_is_served_over_a_newer_candidate(project, cases):
    _suggest(_version(project, 1, _points()), cases[0])
    _suggest(_version(project, 2, None, status="candidate"), cases[0])
    assert serving.serve(cases[0]).version.number == 1


def test_api_serves_and_records_what_the_annotator_is_shown(project, member, cases, api_for):
    ann = member("ann", "annotator")
    case = queue.lease_next_case(project=project, annotator=ann)
    annotation = annotate.start_annotation(case=case, annotator=ann)
    version = _version(project, 1, _points())
    _suggest(version, case)

    response = api_for(ann).get(f"/api/cases/{case.pk}/suggestion/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "shown"
    assert [b["id"] for b in body["suggestion"]["boxes"]] == ["s0"]
    assert body["suggestion"]["findings_prefilled"] == {"nodule": "present", "effusion": "absent"}
    assert body["suggestion"]["model_version"] == 1 and body["suggestion"]["serving"] is True
    assert any("still learning mass" in w["message"] for w in body["withheld"])

    record = ShownSuggestion.objects.get(annotation=annotation)
    assert (record.model_version_pk, record.model_version_number) == (version.pk, 1)
    assert [b["id"] for b in record.boxes] == ["s0"]
    assert record.findings_prefilled == {"nodule": "present", "effusion": "absent"}
    assert record.report_draft == GOOD_DRAFT
    assert len(record.withheld) == 3

    # A reviewer's look records nothing of theirs, and changes nothing of the annotator's.
    reviewer = member("rev", "reviewer")
    assert api_for(reviewer).get(f"/api/cases/{case.pk}/suggestion/").status_code in (200, 403)
    assert ShownSuggestion.objects.count() == 1


def test_api_without_a_suggestion_says_so(project, member, cases, api_for):
    ann = member("ann", "annotator")
    case = queue.lease_next_case(project=project, annotator=ann)
    body = api_for(ann).get(f"/api/cases/{case.pk}/suggestion/").json()
    assert body["state"] == "learning" and body["suggestion"] is None
    _version(project, 1, _points())
    body = api_for(ann).get(f"/api/cases/{case.pk}/suggestion/").json()
    assert body["state"] == "none"
    assert not ShownSuggestion.objects.exists()


def test_a_candidate_waiting_for_its_owner_says_why_per_class(project, cases):
    """After a first cycle with too few validation labels nothing serves and the candidate has
    scored nothing: the workspace says why it waits and what each class lacks, never just "no
    suggestion" (issue 14, a newcomer's first cycle)."""
    version = _version(project, 1, _points(), status="candidate")
    version.promotion_check = {
        "validation_labels": 3,
        "min_validation_labels": 20,
        "passed": False,
        "reason": "3 validation labels; 20 needed",
        "waiting_for_owner": True,
    }
    version.save()
    _version(project, 2, None, status="failed")
    served = serving.serve(cases[0])
    assert served.state == "learning" and served.suggestion is None
    assert "version 1 does not serve yet" in served.message
    assert "checked on 3 validation labels, and 20 are needed" in served.message
    assert "waits for a model owner" in served.message
    messages = {w.finding: w.message for w in served.withheld}
    assert set(messages) == {"mass", "consolidation", "pneumothorax"}
    assert messages["mass"].startswith("The model is still learning mass: 2 of 5 validation")


def test_only_failed_versions_still_learning(project, cases):
    _version(project, 1, None, status="failed")
    served = serving.serve(cases[0])
    assert served.state == "learning"
    assert "no version has been trained successfully yet" in served.message


def test_readers_of_a_locked_test_set_case_get_no_model_output(project, member, cases, api_for):
    """Issue 16: a test set case's label is the reference standard, so its readers are blinded:
    the workspace's served suggestion, the raw suggestions and the explanation all hold nothing
    of the model, and nothing is recorded as shown; the other cases still get theirs."""
    from active_learning.models import TestSetDraw

    ann = member("ann", "annotator")
    case = queue.lease_next_case(project=project, annotator=ann)
    other = next(c for c in cases if c.pk != case.pk)
    annotate.start_annotation(case=case, annotator=ann)
    version = _version(project, 1, _points())
    _suggest(version, case)
    _suggest(version, other)
    TestSetDraw.objects.create(project=project, case=case, held_out=True, stratum="F|40-59|?")
    TestSetDraw.objects.create(project=project, case=other, held_out=False, stratum="F|40-59|?")

    client = api_for(ann)
    body = client.get(f"/api/cases/{case.pk}/suggestion/").json()
    assert body["state"] == "blinded" and body["suggestion"] is None
    assert "locked test set" in body["message"]
    assert client.get(f"/api/cases/{case.pk}/suggestions/").json() == []
    explanation = client.get(f"/api/cases/{case.pk}/explanation/?finding=nodule")
    assert explanation.status_code == 409 and "locked test set" in explanation.json()["message"]
    assert not ShownSuggestion.objects.exists()

    assert serving.serve(other).state == "shown"
    assert len(api_for(member("lead", "lead")).get(f"/api/cases/{other.pk}/suggestions/").json())
