"""The project lead's dashboard in a real browser: every chart drawn, the numbers its tiles, data
tables and aria-labels expose equal to the dashboard API's, the annotators' window switched
from 30 to 7 days; an annotator is refused the page and is not shown its link.

The scenario is built through the services, as annotators and reviewers would build it (the
helpers of tests/annotations/test_dashboards.py); times are then set on the rows to place the
work on past days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from annotations.models import Annotation, Case
from annotations.services import queue
from tests.annotations.test_dashboards import (
    _accepted,
    _at,
    _drawn,
    _edited,
    _place,
    _review,
    _submit,
    _suggest,
)
from tests.conftest import api_client_for
from tests.support.browser import assert_charts_drawn, log_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frontend_built"),
]

CHARTS = ("queue-states", "burn-down", "review", "daily", "median-minutes", "suggestions")
STATES = ("returned", "submitted", "accepted", "leased", "draft", "skipped", "waiting")
SUGGESTION_USE = ("accepted", "edited", "rejected", "drawn")
REVIEW_OUTCOMES = ("awaiting_review", "returned", "accepted")

# Each table of numbers as {row key: {dataset key: cell text}}, hidden or not.
TABLES = """() => Object.fromEntries([...document.querySelectorAll('table.numbers')].map(t => [
  t.dataset.testid.replace('table-', ''),
  Object.fromEntries([...t.querySelectorAll('tbody tr')].map(tr => [tr.dataset.row,
    Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.dataset,
      td.textContent]))]))]))"""


@dataclass
class Scenario:
    today: date
    lead: AbstractUser


@pytest.fixture
def scenario(project, cases, member) -> Scenario:
    """Twelve cases, cases[11] held out for validation, created 25 days ago.

    ann submits three cases yesterday and the day before (120, 300 and 600 s), bob two 20 days
    ago (60 and 180 s): a 7-day window shows ann alone. The reviewer accepts one of ann's and
    returns one of bob's. cy holds a live lease, eve's expired unreleased, fay skipped one."""
    today = timezone.now().astimezone(UTC).date()
    ann, bob = member("ann", "annotator"), member("bob", "annotator")
    cy, eve, fay = (member(name, "annotator") for name in ("cy", "eve", "fay"))
    reviewer = member("rev", "reviewer")
    Case.objects.filter(pk=cases[11].pk).update(is_validation=True)
    _suggest(project, cases)

    def lease(annotator) -> Case:
        case = queue.lease_next_case(project=project, annotator=annotator)
        assert case is not None
        return case

    def read(annotator, *boxes, rejected=()) -> Annotation:
        case = lease(annotator)
        return _submit(case, annotator, [box(case) for box in boxes], rejected)

    def accepted(key):
        return lambda case: _accepted(case, key)

    def edited(key):
        return lambda case: _edited(case, key)

    a0 = read(ann, accepted("s1"), _drawn, rejected=["s2"])
    a1 = read(ann, edited("s1"), accepted("s2"))
    a2 = read(ann, edited("s1"), rejected=["s2"])
    a3 = read(bob, _drawn, _drawn, rejected=["s1", "s2"])
    a4 = read(bob, accepted("s1"))
    _review(a1, reviewer, accept=True)
    _review(a4, reviewer, accept=False)

    lease(cy)
    expired = lease(eve)
    queue.release_lease(case=lease(fay), annotator=fay, skip_reason="motion artefact")
    # Only now: an expired lease frees its case for the next annotator who asks.
    Case.objects.filter(pk=expired.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=5)
    )

    d1, d2, d20, d25 = (today - timedelta(days=n) for n in (1, 2, 20, 25))
    Case.objects.filter(project=project).update(created_at=_at(d25, 9))
    _place(a0, _at(d2, 10), _at(d2, 10, 2))
    _place(a1, _at(d2, 11), _at(d2, 11, 5))
    _place(a2, _at(d1, 9), _at(d1, 9, 10))
    _place(a3, _at(d20, 12), _at(d20, 12, 1))
    _place(a4, _at(d20, 13), _at(d20, 13, 3))
    return Scenario(today=today, lead=member("lena", "lead"))


def _api(user, project, path: str) -> dict:
    response = api_client_for(user).get(f"/api/projects/{project.pk}/dashboard/{path}")
    assert response.status_code == 200, response.content
    return response.json()


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{round(seconds / 60, 1):g}"


def _expected_throughput(throughput: dict) -> dict[str, dict]:
    annotators = throughput["annotators"]
    days = [d["date"] for d in annotators[0]["daily"]] if annotators else []
    return {
        "daily": {
            day: {a["annotator"]: str(a["daily"][i]["submitted"]) for a in annotators}
            for i, day in enumerate(days)
        },
        "median-minutes": {
            a["annotator"]: {"median_minutes": _minutes(a["median_seconds_to_first_submit"])}
            for a in annotators
        },
        "suggestions": {
            a["annotator"]: {k: str(a["suggestions"][k]) for k in SUGGESTION_USE}
            for a in annotators
        },
    }


def _expected_tables(queue_body: dict, review: dict, throughput: dict) -> dict[str, dict]:
    return {
        "queue-states": {
            block: {state: str(queue_body[block][state]) for state in STATES}
            for block in ("cases", "validation")
        },
        "burn-down": {
            d["date"]: {
                "remaining": str(d["remaining"]),
                "validation_remaining": str(d["validation_remaining"]),
            }
            for d in queue_body["burn_down"]
        },
        "review": {
            a["annotator"]: {k: str(a[k]) for k in REVIEW_OUTCOMES} for a in review["annotators"]
        },
        **_expected_throughput(throughput),
    }


def test_lead_sees_every_chart_with_the_numbers_of_the_api(
    page, live_server, project, scenario, artifacts_dir: Path
):
    throughput_requests: list[str] = []
    page.on(
        "request", lambda r: "/dashboard/throughput/" in r.url and throughput_requests.append(r.url)
    )
    log_in(page, live_server, "lena")
    page.click(f"tr[data-project='{project.pk}'] >> text=Dashboard")
    page.wait_for_selector("#dashboard[data-state=ready][data-days='30']")
    assert_charts_drawn(page, CHARTS)
    page.screenshot(path=str(artifacts_dir / "dashboard-lead.png"))

    lead = scenario.lead
    queue_body, review = _api(lead, project, "queue/"), _api(lead, project, "review/")
    throughput = _api(lead, project, "throughput/?days=30")
    # No case is double-read here: the agreement chart has its findings and no numbers (its
    # figures are checked in tests/e2e/test_adjudication_page.py).
    no_agreement = {key: {"kappa": "—", "box-f1": "—"} for key in project.finding_keys}
    expected = {**_expected_tables(queue_body, review, throughput), "agreement": no_agreement}
    assert page.evaluate(TABLES) == expected

    def tile(key: str) -> str:
        return page.text_content(f"[data-testid=tile-{key}]")

    assert tile("total") == str(queue_body["cases"]["total"]) == "11"
    assert tile("open") == str(queue_body["cases"]["open"])
    assert tile("expired-leases") == str(queue_body["expired_leases"]) == "1"
    assert tile("review-queue") == str(review["queue_size"]) == "3"
    # Bob's read of 20 days ago has waited longest.
    waited = timezone.now() - datetime.fromisoformat(review["oldest_submitted_at"])
    assert waited.days in (19, 20)
    assert tile("oldest-waiting").startswith(f"{waited.days} d")
    assert tile("skips") == "1"
    assert "motion artefact" in page.text_content("[data-tile=skips]")
    # The aria-label reads short charts out in full.
    training = ", ".join(f"{s.title()} {queue_body['cases'][s]}" for s in STATES)
    states_label = page.get_attribute("[data-testid=chart-queue-states]", "aria-label")
    assert f"Training: {training}" in states_label
    ann, bob = ({a["annotator"]: a for a in throughput["annotators"]}[n] for n in ("ann", "bob"))
    assert ann["median_seconds_to_first_submit"] == 300 and ann["suggestions"]["drawn"] == 1
    assert bob["submitted"] == 2 and bob["returned"] == 1
    assert f"ann: {_minutes(300)}; bob: {_minutes(120)}" in page.get_attribute(
        "[data-testid=chart-median-minutes]", "aria-label"
    )

    # The numbers as a table, on demand.
    assert not page.is_visible("[data-testid=table-suggestions]")
    page.click("#panel-suggestions .toggle")
    assert page.is_visible("[data-testid=table-suggestions]")
    assert not page.is_visible("[data-testid=chart-suggestions]")
    page.click("#panel-suggestions .toggle")
    assert page.is_visible("[data-testid=chart-suggestions]")

    # The last 7 days: bob's reads of 20 days ago drop out; only throughput is fetched again.
    page.click("label[for=days-7]")
    page.wait_for_selector("#dashboard[data-state=ready][data-days='7']")
    assert [u.rsplit("?", 1)[1] for u in throughput_requests] == ["days=30", "days=7"]
    assert page.url.endswith("?days=7")
    assert page.text_content("#panel-daily h2") == "Submissions per day · 7 days"
    week = _api(lead, project, "throughput/?days=7")
    assert [a["annotator"] for a in week["annotators"]] == ["ann"]
    tables = page.evaluate(TABLES)
    assert len(tables["daily"]) == 7
    assert {k: tables[k] for k in ("daily", "median-minutes", "suggestions")} == (
        _expected_throughput(week)
    )
    assert_charts_drawn(page, CHARTS)
    page.screenshot(path=str(artifacts_dir / "dashboard-lead-7-days.png"))

    # The Models page and the dashboard link to each other.
    page.click("#dashboard nav >> text=Models")
    page.wait_for_selector("#models-page")
    page.click("#dashboard-link")
    page.wait_for_selector("#dashboard[data-state=ready][data-days='30']")


def test_annotator_is_refused_the_dashboard_and_not_shown_its_link(
    page, live_server, project, member
):
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    row = page.locator(f"tr[data-project='{project.pk}']")
    assert row.locator("text=Start labeling").count() == 1
    assert row.locator("text=Dashboard").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    assert response is not None and response.status == 403
    assert page.locator("#dashboard").count() == 0
