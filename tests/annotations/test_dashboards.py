"""The project lead's dashboards (queue state and burn-down, throughput, review load), each
number checked against a scenario built through the services, as annotators and reviewers
would build it. Times are set afterwards on the rows, to place the work on past days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from active_learning.models import ModelVersion, Suggestion
from active_learning.services.case_inputs import first_instance
from annotations import dashboards
from annotations.models import Annotation, AnnotationRevision, Box, Case
from annotations.services import annotate, queue

pytestmark = pytest.mark.django_db

SUGGESTED = {"s1": (20, 20, 30, 30, "nodule"), "s2": (70, 70, 25, 20, "mass")}


def _suggest(project, cases: list[Case]) -> None:
    """A promoted model's suggestion for each case: boxes s1 (nodule) and s2 (mass)."""
    version = ModelVersion.objects.create(project=project, number=1, status="promoted")
    for case in cases:
        instance = first_instance(case)
        boxes = [
            {"id": key, "instance_id": instance.pk, "frame": 1, "x": x, "y": y, "width": w,
             "height": h, "finding": finding, "score": 0.7}
            for key, (x, y, w, h, finding) in SUGGESTED.items()
        ]  # fmt: skip
        Suggestion.objects.create(case=case, model_version=version, boxes=boxes)


def _accepted(case: Case, key: str) -> annotate.BoxInput:
    x, y, w, h, finding = SUGGESTED[key]
    return annotate.BoxInput(
        instance_id=first_instance(case).pk, x=x, y=y, width=w, height=h, finding=finding,
        origin=Box.Origin.SUGGESTED_ACCEPTED, suggestion_box_id=key,
    )  # fmt: skip


def _edited(case: Case, key: str) -> annotate.BoxInput:
    x, y, w, h, finding = SUGGESTED[key]
    return annotate.BoxInput(
        instance_id=first_instance(case).pk, x=x + 2, y=y - 2, width=w, height=h + 4,
        finding=finding, origin=Box.Origin.SUGGESTED_EDITED, suggestion_box_id=key,
    )  # fmt: skip


def _drawn(case: Case) -> annotate.BoxInput:
    return annotate.BoxInput(
        instance_id=first_instance(case).pk, x=5, y=90, width=12, height=10, finding="effusion"
    )


def _lease(project, annotator, expected: Case) -> Case:
    case = queue.lease_next_case(project=project, annotator=annotator)
    assert case is not None and case.pk == expected.pk
    return case


def _submit(case, annotator, boxes=(), rejected=()) -> Annotation:
    annotation = annotate.start_annotation(case=case, annotator=annotator)
    return annotate.submit(
        annotation=annotation,
        actor=annotator,
        expected_version=annotation.version,
        boxes=list(boxes),
        rejected_suggestion_boxes=list(rejected),
    )


def _review(annotation, reviewer, accept: bool) -> None:
    annotation.refresh_from_db()
    annotate.review(
        annotation=annotation,
        reviewer=reviewer,
        accept=accept,
        comment="" if accept else "The mass is a nipple shadow.",
        expected_version=annotation.version,
    )


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def _place(annotation: Annotation, opened: datetime, *submissions: datetime) -> None:
    """Open the working copy at ``opened``; its revisions, in order, at ``submissions``."""
    Annotation.objects.filter(pk=annotation.pk).update(
        created_at=opened, submitted_at=submissions[-1]
    )
    revisions = AnnotationRevision.objects.filter(annotation=annotation).order_by("version")
    assert revisions.count() == len(submissions)
    for revision, when in zip(revisions, submissions, strict=True):
        AnnotationRevision.objects.filter(pk=revision.pk).update(submitted_at=when)


@dataclass
class Scenario:
    today: date
    lead: object


@pytest.fixture
def scenario(project, cases, member) -> Scenario:
    """Twelve cases, cases[0] and cases[11] held out for validation:

    c0  (validation) ann submitted, awaiting review        c6  dee holds a live lease
    c1  ann submitted, accepted                            c7  eve's lease expired, not released
    c2  ann submitted, returned, resubmitted               c8  fay skipped it: motion artefact
    c3  bob submitted, awaiting review                     c9, c10  untouched (created D-1)
    c4  bob submitted, returned (rework pending)           c11 (validation) untouched
    c5  cy's draft, lease released

    Days (UTC): cases created on D-3 (c9, c10 on D-1); ann opened and submitted c0 and c1 on
    D-2 (120 s, 300 s), c2 on D-1 (600 s) and again today; bob c3 on D-1 (60 s), c4 today
    (180 s)."""
    today = timezone.now().astimezone(UTC).date()
    ann, bob = member("ann", "annotator"), member("bob", "annotator")
    cy, dee, eve, fay = (member(name, "annotator") for name in ("cy", "dee", "eve", "fay"))
    reviewer = member("rev", "reviewer")
    Case.objects.filter(pk__in=[cases[0].pk, cases[11].pk]).update(is_validation=True)
    _suggest(project, cases)
    c = cases

    a0 = _submit(_lease(project, ann, c[0]), ann, [_accepted(c[0], "s1"), _drawn(c[0])], ["s2"])
    a1 = _submit(_lease(project, ann, c[1]), ann, [_edited(c[1], "s1"), _accepted(c[1], "s2")])
    a2 = _submit(_lease(project, ann, c[2]), ann, [_edited(c[2], "s1")], ["s2"])
    a3 = _submit(_lease(project, bob, c[3]), bob, [_drawn(c[3]), _drawn(c[3])], ["s1", "s2"])
    a4 = _submit(_lease(project, bob, c[4]), bob, [_accepted(c[4], "s1")])
    _review(a1, reviewer, accept=True)
    _review(a2, reviewer, accept=False)
    _review(a4, reviewer, accept=False)
    # The returned work comes back to ann first; she accepts s1 unchanged this time.
    a2 = _submit(_lease(project, ann, c[2]), ann, [_accepted(c[2], "s1")], ["s2"])

    draft_case = _lease(project, cy, c[5])
    draft = annotate.start_annotation(case=draft_case, annotator=cy)
    annotate.save_draft(
        annotation=draft, actor=cy, expected_version=draft.version, findings={"nodule": "present"}
    )
    _lease(project, dee, c[6])
    _lease(project, eve, c[7])
    queue.release_lease(
        case=_lease(project, fay, c[8]), annotator=fay, skip_reason="motion artefact"
    )
    queue.release_lease(case=draft_case, annotator=cy)
    Case.objects.filter(pk=c[7].pk).update(lease_expires_at=timezone.now() - timedelta(minutes=5))

    d1, d2, d3 = (today - timedelta(days=n) for n in (1, 2, 3))
    Case.objects.filter(project=project).update(created_at=_at(d3, 9))
    Case.objects.filter(pk__in=[c[9].pk, c[10].pk]).update(created_at=_at(d1, 8))
    _place(a0, _at(d2, 10), _at(d2, 10, 2))
    _place(a1, _at(d2, 11), _at(d2, 11, 5))
    _place(a2, _at(d1, 9), _at(d1, 9, 10), _at(today, 0, 20))
    _place(a3, _at(d1, 12), _at(d1, 12, 1))
    _place(a4, _at(today, 0, 1), _at(today, 0, 4))
    lead = member("lena", "lead")
    return Scenario(today=today, lead=lead)


def _get(api_for, user, project, path: str):
    response = api_for(user).get(f"/api/projects/{project.pk}/dashboard/{path}")
    assert response.status_code == 200, response.content
    return response.json()


def test_queue_dashboard_counts_each_case_once_in_the_state_a_lead_sees(scenario, project, api_for):
    body = _get(api_for, scenario.lead, project, "queue/")
    assert body["cases"] == {
        "total": 10,
        "open": 7,
        "complete": 3,
        "returned": 1,
        "submitted": 2,
        "accepted": 1,
        "leased": 1,
        "draft": 1,
        "skipped": 1,
        "waiting": 3,
    }
    assert body["validation"] == {
        "total": 2,
        "open": 1,
        "complete": 1,
        "returned": 0,
        "submitted": 1,
        "accepted": 0,
        "leased": 0,
        "draft": 0,
        "skipped": 0,
        "waiting": 1,
    }
    assert body["expired_leases"] == 1
    assert body["skips"] == 1
    assert body["skip_reasons"] == [{"reason": "motion artefact", "count": 1}]


def test_burn_down_replays_cases_created_and_first_submissions_day_by_day(
    scenario, project, api_for
):
    body = _get(api_for, scenario.lead, project, "queue/")
    today = scenario.today
    days = [(today - timedelta(days=n)).isoformat() for n in (3, 2, 1, 0)]
    assert body["burn_down"] == [
        # D-3: eight training and two validation cases created, nothing read yet.
        {"date": days[0], "remaining": 8, "validation_remaining": 2},
        # D-2: c1 and the validation case c0 first submitted.
        {"date": days[1], "remaining": 7, "validation_remaining": 1},
        # D-1: c9 and c10 arrive, c2 and c3 first submitted.
        {"date": days[2], "remaining": 7, "validation_remaining": 1},
        # Today: c4 was submitted but is returned, so it still needs its read.
        {"date": days[3], "remaining": 7, "validation_remaining": 1},
    ]
    assert body["burn_down"][-1]["remaining"] == body["cases"]["open"]


def test_burn_down_is_bounded_to_the_last_90_days(project, cases, member, api_for):
    long_ago = timezone.now() - timedelta(days=200)
    Case.objects.filter(pk=cases[0].pk).update(created_at=long_ago)
    series = _get(api_for, member("lena", "lead"), project, "queue/")["burn_down"]
    today = timezone.now().astimezone(UTC).date()
    assert len(series) == 90
    assert series[0]["date"] == (today - timedelta(days=89)).isoformat()
    assert series[-1]["date"] == today.isoformat()
    # The case from 200 days ago is already counted on the first day shown.
    assert series[0]["remaining"] == 1 and series[-1]["remaining"] == 12


def test_throughput_per_annotator_per_day_with_medians_and_returned_work(
    scenario, project, api_for
):
    body = _get(api_for, scenario.lead, project, "throughput/?days=30")
    today = scenario.today
    assert body["days"] == 30
    assert body["start"] == (today - timedelta(days=29)).isoformat()
    assert body["end"] == today.isoformat()
    ann, bob = body["annotators"]
    assert ann["annotator"] == "ann" and bob["annotator"] == "bob"
    assert len(ann["daily"]) == 30 and ann["daily"][0]["date"] == body["start"]
    ann_days = {d["date"]: d["submitted"] for d in ann["daily"] if d["submitted"]}
    bob_days = {d["date"]: d["submitted"] for d in bob["daily"] if d["submitted"]}
    day = {n: (today - timedelta(days=n)).isoformat() for n in (0, 1, 2)}
    # ann: c0 and c1 on D-2, c2 on D-1 and its resubmission today.
    assert ann_days == {day[2]: 2, day[1]: 1, day[0]: 1}
    assert bob_days == {day[1]: 1, day[0]: 1}
    assert (ann["submitted"], ann["returned"]) == (4, 1)  # c2's first submission came back
    assert (bob["submitted"], bob["returned"]) == (2, 1)  # c4 is returned now
    # Opening to first submission: ann 120, 300, 600 s; bob 60, 180 s.
    assert (ann["timed_cases"], ann["median_seconds_to_first_submit"]) == (3, 300.0)
    assert (bob["timed_cases"], bob["median_seconds_to_first_submit"]) == (2, 120.0)


def test_throughput_window_of_one_day_counts_only_today(scenario, project, api_for):
    body = _get(api_for, scenario.lead, project, "throughput/?days=1")
    ann, bob = body["annotators"]
    assert ann["daily"] == [{"date": scenario.today.isoformat(), "submitted": 1}]
    assert (ann["submitted"], ann["returned"], ann["timed_cases"]) == (1, 0, 0)
    assert ann["median_seconds_to_first_submit"] is None  # c2 was first submitted yesterday
    assert (bob["submitted"], bob["returned"], bob["timed_cases"]) == (1, 1, 1)
    assert bob["median_seconds_to_first_submit"] == 180.0
    # Only c2 stands submitted from today: s1 accepted, s2 rejected.
    assert ann["suggestions"]["accepted"] == 1 and ann["suggestions"]["rejected"] == 1
    assert bob["suggestions"]["suggested"] == 0 and bob["suggestions"]["accepted_share"] is None


def test_suggestion_use_shares_come_from_box_origins_and_rejected_boxes(scenario, project, api_for):
    body = _get(api_for, scenario.lead, project, "throughput/")
    assert body["days"] == 30  # the default window
    ann, bob = body["annotators"]
    # ann: c0 s1 accepted, s2 rejected, one drawn; c1 s1 edited, s2 accepted; c2 (as
    # resubmitted) s1 accepted, s2 rejected. bob: c3 both rejected, two drawn; c4 is returned,
    # so its accepted s1 does not stand.
    assert ann["suggestions"] == {
        "accepted": 3,
        "edited": 1,
        "rejected": 2,
        "drawn": 1,
        "suggested": 6,
        "accepted_share": 0.5,
        "edited_share": 0.1667,
        "rejected_share": 0.3333,
    }
    assert bob["suggestions"] == {
        "accepted": 0,
        "edited": 0,
        "rejected": 2,
        "drawn": 2,
        "suggested": 2,
        "accepted_share": 0.0,
        "edited_share": 0.0,
        "rejected_share": 1.0,
    }
    assert body["suggestions"] == {
        "accepted": 3,
        "edited": 1,
        "rejected": 4,
        "drawn": 3,
        "suggested": 8,
        "accepted_share": 0.375,
        "edited_share": 0.125,
        "rejected_share": 0.5,
    }


def test_review_dashboard_counts_the_queue_and_each_annotators_outcomes(scenario, project, api_for):
    body = _get(api_for, scenario.lead, project, "review/")
    assert body["queue_size"] == 3  # c0 and c2 (ann), c3 (bob)
    oldest = datetime.fromisoformat(body["oldest_submitted_at"].replace("Z", "+00:00"))
    assert oldest == _at(scenario.today - timedelta(days=2), 10, 2)
    assert body["annotators"] == [
        {"annotator": "ann", "awaiting_review": 2, "returned": 0, "accepted": 1},
        {"annotator": "bob", "awaiting_review": 1, "returned": 1, "accepted": 0},
    ]


def test_each_dashboard_costs_a_fixed_number_of_queries(
    scenario, project, django_assert_num_queries
):
    with django_assert_num_queries(7):
        dashboards.queue_dashboard(project=project)
    with django_assert_num_queries(4):
        dashboards.throughput_dashboard(project=project, days=365)
    with django_assert_num_queries(1):
        dashboards.review_dashboard(project=project)


def test_empty_project_gives_zeros_and_an_empty_series(project, member, api_for):
    lead = member("lena", "lead")
    queue_body = _get(api_for, lead, project, "queue/")
    assert queue_body["cases"]["total"] == 0 and queue_body["burn_down"] == []
    assert _get(api_for, lead, project, "throughput/")["annotators"] == []
    assert _get(api_for, lead, project, "review/") == {
        "queue_size": 0,
        "oldest_submitted_at": None,
        "annotators": [],
    }


@pytest.mark.parametrize("days", ["0", "366", "-3", "abc", "7.5", "99999999999999999999"])
def test_days_out_of_range_or_not_a_number_is_refused_naming_the_limit(
    project, member, api_for, days
):
    response = api_for(member("lena", "lead")).get(
        f"/api/projects/{project.pk}/dashboard/throughput/?days={days}"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert "days must be a whole number from 1 to 365" in response.json()["message"]


def test_annotators_are_refused_and_outsiders_see_no_project(project, member, make_user, api_for):
    annotator = api_for(member("ann", "annotator"))
    reviewer = api_for(member("rev", "reviewer"))
    outsider = api_for(make_user("outsider"))
    for path in ("queue/", "throughput/", "review/"):
        url = f"/api/projects/{project.pk}/dashboard/{path}"
        assert annotator.get(url).status_code == 403
        assert outsider.get(url).status_code == 404
    # Reviewers see the review load, not the lead's queue and throughput numbers.
    assert reviewer.get(f"/api/projects/{project.pk}/dashboard/review/").status_code == 200
    assert reviewer.get(f"/api/projects/{project.pk}/dashboard/queue/").status_code == 403


def test_superusers_see_every_dashboard(project, make_user, api_for):
    root = api_for(make_user("root", is_superuser=True))
    for path in ("queue/", "throughput/?days=365", "review/"):
        assert root.get(f"/api/projects/{project.pk}/dashboard/{path}").status_code == 200
