"""The model owner's charts (``GET /api/projects/{id}/model-dashboard/``): learning curve,
per-class metrics, acquisition scores of the open cases and suggestion usefulness per version,
each number checked by hand against a scenario built through the services, as annotators would
build it (times are set on the rows afterwards, to order openings, scorings and promotions).

Run on both databases: ``make run`` serves these charts from the embedded SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from active_learning.ml.evaluate import edit_distance
from active_learning.models import ModelVersion, Suggestion
from active_learning.selectors import model_dashboard
from active_learning.services.case_inputs import first_instance
from active_learning.services.loop_settings import loop_settings, update_loop_settings
from annotations.dashboards.throughput import SuggestionUse
from annotations.models import Annotation, Box, Case
from annotations.services import annotate, projects, queue
from medloop.metrics.text import word_edit_distance

pytestmark = [pytest.mark.django_db, pytest.mark.both_backends]

SUGGESTED = {"s1": (20, 20, 30, 30, "nodule"), "s2": (70, 70, 25, 20, "mass")}

V1_METRICS = {
    "validation_labels": 3,
    "training_labels": 4,
    "primary": {"name": "combined", "value": 0.4},
    "validation": {
        "boxes": {
            "map_50": 0.2,
            # A class the schema no longer has, and one without ground truth (-1).
            "ap_50_per_class": {"nodule": 0.3, "mass": 0.1, "effusion": -1, "old_finding": 0.2},
        },
        "findings": {"auroc_macro": 0.6, "auroc": {"nodule": 0.7, "mass": 0.5, "effusion": None}},
        "reports": {"finding_f1_micro": 0.4, "rouge_l_f_beta1.2": 0.3, "bleu_4": 0.1},
    },
}
V2_METRICS = {
    "validation_labels": 3,
    "validation": {
        "boxes": {"map_50": 0.5, "ap_50_per_class": {"nodule": 0.6, "mass": 0.4}},
        "findings": {
            "auroc_macro": 0.8,
            "auroc": {"effusion": 0.8, "mass": 0.8, "nodule": 0.8},
        },
        "reports": {
            "finding_f1_micro": 0.6,
            "rouge_l_f_beta1.2": 0.45,
            "finding_f1_per_class": {"nodule": 0.5},
        },
    },
}
V3_METRICS = {
    "validation_labels": 3,
    "validation": {
        "boxes": {"map_50": -1, "ap_50_per_class": {"nodule": None, "mass": -1}},
        "findings": {"auroc_macro": 0.9, "auroc": {"nodule": 0.9, "mass": 0.9}},
        "reports": {},
    },
}


def _boxes(case: Case) -> list[dict]:
    instance = first_instance(case)
    return [
        {"id": key, "instance_id": instance.pk, "frame": 1, "x": x, "y": y, "width": w,
         "height": h, "finding": finding, "score": 0.7}
        for key, (x, y, w, h, finding) in SUGGESTED.items()
    ]  # fmt: skip


def _suggest(case, version, at: datetime, *, draft=None, score=None) -> Suggestion:
    suggestion = Suggestion.objects.create(
        case=case,
        model_version=version,
        boxes=_boxes(case),
        report_draft=draft or {},
        acquisition_score=score,
    )
    Suggestion.objects.filter(pk=suggestion.pk).update(created_at=at)
    return suggestion


def _box(case: Case, key: str | None, origin: str) -> annotate.BoxInput:
    x, y, w, h, finding = SUGGESTED[key] if key else (5, 90, 12, 10, "effusion")
    if origin == Box.Origin.SUGGESTED_EDITED:
        x, h = x + 2, h + 4
    return annotate.BoxInput(
        instance_id=first_instance(case).pk, x=x, y=y, width=w, height=h, finding=finding,
        origin=origin, suggestion_box_id=key or "",
    )  # fmt: skip


def _accepted(case, key):
    return _box(case, key, Box.Origin.SUGGESTED_ACCEPTED)


def _edited(case, key):
    return _box(case, key, Box.Origin.SUGGESTED_EDITED)


def _drawn(case):
    return _box(case, None, Box.Origin.DRAWN)


def _read(project, annotator, expected: Case, opened: datetime, boxes=(), rejected=(), report=None):
    """``annotator`` leases ``expected``, opens it at ``opened`` and submits."""
    case = queue.lease_next_case(project=project, annotator=annotator)
    assert case is not None and case.pk == expected.pk
    annotation = annotate.start_annotation(case=case, annotator=annotator)
    annotate.submit(
        annotation=annotation,
        actor=annotator,
        expected_version=annotation.version,
        boxes=[box(case) for box in boxes],
        rejected_suggestion_boxes=list(rejected),
        report=report,
    )
    Annotation.objects.filter(pk=annotation.pk).update(
        created_at=opened, submitted_at=opened + timedelta(minutes=5)
    )
    return annotation


@dataclass
class Scenario:
    versions: dict[int, ModelVersion]


@pytest.fixture
def scenario(project, cases, member) -> Scenario:
    """Versions v1 (4 labels, promoted at 1 h, retired), v2 (8 labels, promoted at 3 h,
    serving), v3 (12 labels, a candidate) and v4 (failed). Hours are from ``t0``.

    case  suggestions (made at)               opened  read                               shown
    c0    v1 (2 h)                            2.5 h   s1 accepted, s2 rejected, 1 drawn   v1
    c1    v1 (2 h), v2 (4 h)                  5 h     s1 edited, s2 accepted              v2
    c2    v1 (2 h), v3 (4.5 h, no draft)      5 h     s1 and s2 rejected                  v3
    c3    v1 (2 h)                            1.5 h   1 drawn                             none
    c4    v1 (2 h), v2 (4 h)                  5 h     s1 accepted, s2 rejected, 2 drawn   v2
    c5    v2 (4 h), score 0.05                5 h     bob's draft: s1 accepted            (draft)
    c6-c9 v2, scores 0.15, 0.3, 0.95, 1.0; c6 also v1 scored 0.55; c10 v2 unscored; c11 none.

    c2's serving version (v2) had not scored it: the workspace showed the newest, v3's. c3 was
    opened before any suggestion of it existed."""
    t0 = timezone.now() - timedelta(days=1)

    def hours(n: float) -> datetime:
        return t0 + timedelta(hours=n)

    ann, bob = member("ann", "annotator"), member("bob", "annotator")
    v1, v2, v3, v4 = (
        ModelVersion.objects.create(
            project=project, number=n, status=status, label_count=labels, metrics=metrics,
            promoted_at=promoted,
        )
        for n, status, labels, metrics, promoted in (
            (1, "retired", 4, V1_METRICS, hours(1)),
            (2, "promoted", 8, V2_METRICS, hours(3)),
            (3, "candidate", 12, V3_METRICS, None),
            (4, "failed", 16, {}, None),
        )
    )  # fmt: skip
    c = cases
    for case in c[:5]:
        _suggest(case, v1, hours(2), draft={"findings": "small nodule right upper lobe",
                                            "impression": "nodule"})  # fmt: skip
    _suggest(c[1], v2, hours(4), draft={"findings": "no acute findings", "impression": "normal"})
    _suggest(c[2], v3, hours(4.5))
    _suggest(c[4], v2, hours(4), draft={"findings": "mass"})
    for case, score in zip(c[5:11], (0.05, 0.15, 0.3, 0.95, 1.0, None), strict=True):
        _suggest(case, v2, hours(4), score=score)
    _suggest(c[6], v1, hours(2), score=0.55)

    _read(project, ann, c[0], hours(2.5), [lambda k: _accepted(k, "s1"), _drawn], ["s2"],
          report={"findings": "small nodule left upper lobe", "impression": "nodule"})  # fmt: skip
    _read(project, ann, c[1], hours(5), [lambda k: _edited(k, "s1"), lambda k: _accepted(k, "s2")],
          report={"findings": "no acute findings", "impression": "normal"})  # fmt: skip
    _read(project, ann, c[2], hours(5), [], ["s1", "s2"], report={"findings": "clear"})
    _read(project, ann, c[3], hours(1.5), [_drawn])
    _read(project, ann, c[4], hours(5), [lambda k: _accepted(k, "s1"), _drawn, _drawn], ["s2"],
          report={"findings": "large mass", "impression": "mass"})  # fmt: skip
    draft_case = queue.lease_next_case(project=project, annotator=bob)
    assert draft_case is not None and draft_case.pk == c[5].pk
    draft = annotate.start_annotation(case=draft_case, annotator=bob)
    annotate.save_draft(
        annotation=draft, actor=bob, expected_version=draft.version,
        boxes=[_accepted(draft_case, "s1")],
    )  # fmt: skip
    Annotation.objects.filter(pk=draft.pk).update(created_at=hours(5))
    return Scenario(versions={1: v1, 2: v2, 3: v3, 4: v4})


def test_learning_curve_puts_each_version_at_its_training_labels(project, scenario):
    curve = model_dashboard.learning_curve(project)
    assert [(p.number, p.labels, p.serving, p.status) for p in curve] == [
        (1, 4, False, "retired"),
        (2, 8, True, "promoted"),
        (3, 12, False, "candidate"),
    ]  # the failed v4 is not on it
    # combined = mean of box mAP@0.5, finding AUROC and report finding F1 where defined.
    assert curve[0].primary == pytest.approx((0.2 + 0.6 + 0.4) / 3)
    assert curve[1].primary == pytest.approx((0.5 + 0.8 + 0.6) / 3)
    assert curve[2].primary == pytest.approx(0.9)  # mAP -1 (no ground truth) is left out
    assert curve[0].metrics == {
        "boxes.map_50": 0.2,
        "findings.auroc_macro": 0.6,
        "reports.finding_f1_micro": 0.4,
        "reports.rouge_l_f_beta1.2": 0.3,
    }
    assert curve[2].metrics == {
        "boxes.map_50": None,
        "findings.auroc_macro": 0.9,
        "reports.finding_f1_micro": None,
        "reports.rouge_l_f_beta1.2": None,
    }
    assert curve[0].validation_labels == 3


def test_learning_curve_follows_the_projects_promotion_metric(project, scenario):
    update_loop_settings(project=project, promotion_metric="findings.auroc_macro")
    assert [p.primary for p in model_dashboard.learning_curve(project)] == [0.6, 0.8, 0.9]


def test_a_ct_projects_curve_draws_its_lung_nodule_measures_named_in_words(
    ct_project, project, make_user, api_for
):
    update_loop_settings(project=ct_project, model_config={"froc_iou": 0.2})
    ModelVersion.objects.create(
        project=ct_project,
        number=1,
        status="promoted",
        model_kind="ct_retinanet3d",
        label_count=4,
        metrics={
            "validation_labels": 2,
            "validation": {
                "froc": {"froc_mean": 0.5},
                "boxes": {"map_at_match_iou": 0.4, "map_50": 0.1},
            },
        },
    )
    owner = make_user("mona")
    projects.add_member(project=ct_project, user=owner, role="model_owner", added_by=None)
    response = api_for(owner).get(f"/api/projects/{ct_project.pk}/model-dashboard/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["learning_curve"][0]["metrics"] == {
        "froc.froc_mean": 0.5,
        "boxes.map_at_match_iou": 0.4,
        "boxes.map_50": 0.1,
    }
    assert body["metric_names"] == {
        "combined": "combined (FROC mean and mAP at 3D IoU ≥ 0.2)",
        "froc.froc_mean": "FROC mean (LUNA16)",
        "boxes.map_at_match_iou": "mAP at 3D IoU ≥ 0.2",
        "boxes.map_50": "mAP at 3D IoU ≥ 0.5",
    }
    # A radiograph project's are the page's own.
    assert model_dashboard.model_dashboard(project=project).metric_names == {}


def test_per_class_metrics_per_version_in_schema_order(project, scenario):
    per_class = model_dashboard.per_class_metrics(project)
    assert [(v.number, v.serving) for v in per_class] == [(3, False), (2, True), (1, False)]

    def rows(version):
        return [(c.finding, c.name, c.ap_50, c.auroc, c.f1) for c in version.classes]

    assert rows(per_class[0]) == [
        ("nodule", "Nodule", None, 0.9, None),
        ("mass", "Mass", None, 0.9, None),
    ]
    assert rows(per_class[1]) == [
        ("nodule", "Nodule", 0.6, 0.8, 0.5),
        ("mass", "Mass", 0.4, 0.8, None),
        ("effusion", "Pleural effusion", None, 0.8, None),
    ]
    assert rows(per_class[2]) == [
        ("nodule", "Nodule", 0.3, 0.7, None),
        ("mass", "Mass", 0.1, 0.5, None),
        ("effusion", "Pleural effusion", None, None, None),
        ("old_finding", "old_finding", 0.2, None, None),
    ]


def test_acquisition_scores_of_the_open_cases_by_the_serving_version(project, scenario):
    scores = model_dashboard.acquisition_scores(project, scenario.versions[2])
    # Open: c5 (a draft) to c11. v2 scored c5-c9; c10's suggestion has no score, c11 none.
    # v2's score of the complete c1 and v1's 0.55 of c6 are not counted.
    assert (scores.version, scores.strategy) == (2, loop_settings(project).acquisition_strategy)
    assert (scores.open_cases, scores.scored, scores.unscored) == (7, 5, 2)
    assert [(b.low, b.high) for b in scores.bins[:2]] == [(0.0, 0.1), (0.1, 0.2)]
    assert scores.bins[-1].high == 1.0
    # 0.05 | 0.15 | - | 0.3 | ... | 0.95 and 1.0 (the last bin includes 1).
    assert [b.count for b in scores.bins] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 2]


def test_acquisition_scores_without_a_serving_version(project, cases):
    scores = model_dashboard.acquisition_scores(project, None)
    assert (scores.version, scores.scored, scores.unscored, scores.bins) == (None, 0, 12, [])


def test_acquisition_score_range_grows_past_one(project, cases):
    version = ModelVersion.objects.create(project=project, number=1, status="promoted")
    for case, score in zip(cases[:3], (0.0, 1.2, 1.99), strict=True):
        Suggestion.objects.create(case=case, model_version=version, acquisition_score=score)
    scores = model_dashboard.acquisition_scores(project, version)
    assert (scores.bins[0].low, scores.bins[-1].high) == (0.0, 2.0)
    assert [b.count for b in scores.bins] == [1, 0, 0, 0, 0, 0, 1, 0, 0, 1]


def test_usefulness_per_version_counts_what_annotators_did_with_the_shown_suggestion(
    project, scenario
):
    useful = {u.number: u for u in model_dashboard.suggestion_usefulness(project)}
    assert list(useful) == [3, 2, 1]  # newest first; c3's read showed no suggestion
    v1, v2, v3 = useful[1], useful[2], useful[3]
    assert (v1.annotations, v2.annotations, v3.annotations) == (1, 2, 1)
    assert v1.boxes == SuggestionUse(accepted=1, edited=0, rejected=1, drawn=1)
    # bob's draft of c5 (an accepted s1) is not submitted work: not counted.
    assert v2.boxes == SuggestionUse(accepted=2, edited=1, rejected=1, drawn=2)
    assert v3.boxes == SuggestionUse(accepted=0, edited=0, rejected=2, drawn=0)
    assert (v2.boxes.accepted_share, v2.boxes.edited_share, v2.boxes.rejected_share) == (
        0.5,
        0.25,
        0.25,
    )
    assert (v1.missed_per_case, v2.missed_per_case, v3.missed_per_case) == (1.0, 1.0, 0.0)
    assert v2.serving and not v1.serving and not v3.serving
    # v1: "small nodule right upper lobe nodule" -> "... left ..." : 1 edit in 6 words.
    assert (v1.report_cases, v1.report_edit_distance) == (1, round(1 / 6, 4))
    # v2: c1 unchanged (0); c4 "mass" -> "large mass mass": 2 edits in 3 words.
    assert (v2.report_cases, v2.report_edit_distance) == (2, round((0 + 2 / 3) / 2, 4))
    # v3's suggestion had no draft: nothing to measure.
    assert (v3.report_cases, v3.report_edit_distance) == (0, None)


def test_report_edit_distance_is_measured_on_the_latest_reports_only(
    project, scenario, monkeypatch
):
    monkeypatch.setattr(model_dashboard, "REPORT_SAMPLE", 1)
    useful = {u.number: u for u in model_dashboard.suggestion_usefulness(project)}
    # c1 and c4 were opened together; c4's annotation is the later one (its pk): 2 / 3.
    assert (useful[2].report_cases, useful[2].report_edit_distance) == (1, round(2 / 3, 4))
    assert useful[2].annotations == 2  # box counts still cover every annotation


def test_word_edit_distance_is_levenshtein_over_the_final_length():
    examples = [
        ("", ""),
        ("a b c", "a b c"),
        ("a b c", ""),
        ("", "a b"),
        ("no acute findings", "no acute cardiopulmonary findings"),
        ("a a a b", "a a b"),
        ("x y z a", "a x y z"),
        ("small nodule right upper lobe nodule", "small nodule left upper lobe nodule"),
    ]
    for draft, final in examples:
        expected = edit_distance(draft.split(), final.split()) / max(len(final.split()), 1)
        assert word_edit_distance(draft, final) == expected, (draft, final)


def test_dashboard_api_returns_every_chart(project, scenario, member, api_for):
    owner = member("mona", "model_owner")
    response = api_for(owner).get(f"/api/projects/{project.pk}/model-dashboard/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["promotion_metric"], body["serving"]) == ("combined", 2)
    assert [p["number"] for p in body["learning_curve"]] == [1, 2, 3]
    assert body["learning_curve"][1] == {
        "number": 2,
        "status": "promoted",
        "serving": True,
        "labels": 8,
        "validation_labels": 3,
        "primary": pytest.approx((0.5 + 0.8 + 0.6) / 3),
        "metrics": {
            "boxes.map_50": 0.5,
            "findings.auroc_macro": 0.8,
            "reports.finding_f1_micro": 0.6,
            "reports.rouge_l_f_beta1.2": 0.45,
        },
    }
    assert body["per_class"][1]["classes"][0] == {
        "finding": "nodule",
        "name": "Nodule",
        "ap_50": 0.6,
        "auroc": 0.8,
        "f1": 0.5,
    }
    acquisition = body["acquisition"]
    assert (acquisition["scored"], acquisition["unscored"]) == (5, 2)
    assert [b["count"] for b in acquisition["bins"]] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 2]
    assert acquisition["bins"][3] == {"low": 0.3, "high": 0.4, "count": 1}
    v2 = body["usefulness"][1]
    assert v2 == {
        "number": 2,
        "serving": True,
        "annotations": 2,
        "boxes": {
            "accepted": 2,
            "edited": 1,
            "rejected": 1,
            "drawn": 2,
            "suggested": 4,
            "accepted_share": 0.5,
            "edited_share": 0.25,
            "rejected_share": 0.25,
        },
        "missed_per_case": 1.0,
        "report_cases": 2,
        "report_edit_distance": round(1 / 3, 4),
    }
    # Lineage, newest first, failed versions too, with the promotion guard's numbers (none
    # for these hand-made ones).
    assert [(v["number"], v["status"]) for v in body["lineage"]] == [
        (4, "failed"),
        (3, "candidate"),
        (2, "promoted"),
        (1, "retired"),
    ]
    assert set(body["lineage"][0]) == {
        "number", "status", "serving", "labels", "parent", "parent_reason", "promotion_check",
    }  # fmt: skip
    assert body["loop"]["min_validation_labels"] == 20


def test_dashboard_api_answers_as_the_model_versions_list_does(
    project, cases, member, api_for, make_user
):
    from annotations.services import projects

    path = f"/api/projects/{project.pk}/model-dashboard/"
    outsider = make_user("outsider")
    projects.create_project(name="Other", created_by=outsider)
    expected = {
        "annotator": 403,
        "reviewer": 403,
        "lead": 200,
        "model_owner": 200,
        "admin": 200,
    }
    for role, status in expected.items():
        user = member(role, role)
        assert api_for(user).get(path).status_code == status, role
        versions = api_for(user).get(f"/api/projects/{project.pk}/model-versions/")
        assert versions.status_code == status, role
    assert api_for(outsider).get(path).status_code == 404
    empty = api_for(member("mo2", "model_owner")).get(path).json()
    assert empty == {
        "promotion_metric": "combined",
        "serving": None,
        "learning_curve": [],
        "metric_names": {},
        "per_class": [],
        "acquisition": {
            "version": None,
            "strategy": loop_settings(project).acquisition_strategy,
            "open_cases": 12,
            "scored": 0,
            "unscored": 12,
            "bins": [],
        },
        "usefulness": [],
        "lineage": [],
        "loop": {
            "min_validation_labels": 20,
            "bootstrap_resamples": 2000,
            "bootstrap_confidence": 0.95,
            "warm_start": "latest",
            "cold_start": "stored",
        },
    }


def test_dashboard_is_in_the_openapi_schema(api_for, member):
    response = api_for(member("mona", "model_owner")).get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    schema = response.json()
    operation = schema["paths"]["/api/projects/{project_pk}/model-dashboard/"]["get"]
    reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert reference.endswith("/ModelDashboard")
    assert "usefulness" in schema["components"]["schemas"]["ModelDashboard"]["properties"]
