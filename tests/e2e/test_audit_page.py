"""The audit trail page (issue 18, item 2): a lead reads the project's events with the audit
API's filters (action, actor, dates, object), pages through them and downloads the same
selection as CSV; a bad filter says what was wrong; staff read every project and the logins."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import AuditEvent
from annotations.services import audit
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
DASH = "\u2013"  # the pager's "1\u201350 of 58"


@pytest.fixture
def trail(project, cases, member):
    """55 case views by ann, 3 image fetches by lena, one login outside any project."""
    ann, lena = member("ann", "annotator"), member("lena", "lead")
    for i in range(55):
        audit.record(action="case.view", actor=ann, target=cases[i % 5], project_id=project.pk)
    for case in cases[:3]:
        image = case.study.series.first().instances.first()
        audit.record(action="instance.file", actor=lena, target=image, project_id=project.pk)
    audit.record(action="auth.login", actor=ann, target=ann)
    return {"ann": ann, "lena": lena}


def _wait_ready(page) -> None:
    page.wait_for_selector("#audit[data-state=ready], #audit[data-state=error]")


def _wait_summary(page, text: str) -> None:
    page.wait_for_function(
        "text => document.querySelector('#audit').dataset.state === 'ready'"
        " && document.querySelector('#summary').textContent.startsWith(text)",
        arg=text,
    )


def test_lead_filters_pages_and_downloads_the_project_audit_trail(
    page, live_server, project, cases, trail, artifacts_dir, frontend_built
):
    # The fixture's events and those of the import (the cases' ingest) behind it.
    total = AuditEvent.objects.filter(project_id=project.pk).count()
    assert 58 < total < 100
    log_in(page, live_server, "lena")
    page.click(f"tr[data-project='{project.pk}'] >> text=Audit trail")
    _wait_ready(page)
    assert page.inner_text("#summary") == f"{total} events."
    assert page.locator("#events tbody tr").count() == 50
    assert page.inner_text("#page-label") == f"1{DASH}50 of {total}"
    assert page.locator("#previous").is_disabled()
    page.click("#next")
    page.wait_for_function(
        "text => document.querySelector('#page-label').textContent === text",
        arg=f"51{DASH}{total} of {total}",
    )
    assert page.locator("#events tbody tr").count() == total - 50
    assert page.locator("#next").is_disabled()
    page.click("#previous")
    page.wait_for_function(
        "text => document.querySelector('#page-label').textContent === text",
        arg=f"1{DASH}50 of {total}",
    )

    page.fill("#f-actor", "lena")
    page.click("#filters button[type=submit]")
    _wait_summary(page, "3 events")
    actions = page.locator("#events tbody td.action").all_inner_texts()
    assert actions == ["instance.file"] * 3
    assert "actor=lena" in page.url
    page.screenshot(path=str(artifacts_dir / "audit-trail-page.png"), full_page=True)

    # The CSV holds the same selection as the table.
    with page.expect_download() as download_info:
        page.click("#csv-link")
    with open(download_info.value.path(), encoding="utf-8") as downloaded:
        rows = list(csv.DictReader(downloaded))
    # The download is recorded before the rows are read, so it lists itself first (newest).
    assert [r["action"] for r in rows] == ["audit.export"] + ["instance.file"] * 3
    assert {r["actor"] for r in rows} == {"lena"}
    assert AuditEvent.objects.filter(action="audit.export", actor_username="lena").count() == 1

    # Object filter: one case's views.
    page.click("#clear-filters")
    _wait_ready(page)
    page.fill("#f-object-type", "annotations.Case")
    page.fill("#f-object-id", str(cases[0].pk))
    page.fill("#f-action", "case.*")
    page.click("#filters button[type=submit]")
    _wait_summary(page, "11 events")

    # A click on a row's object narrows the trail to that object.
    page.click("#clear-filters")
    _wait_ready(page)
    page.fill("#f-actor", "lena")
    page.click("#filters button[type=submit]")
    _wait_summary(page, "4 events")  # the three image fetches and the CSV download
    image_cell = page.locator("#events tbody td.object button").first
    label = image_cell.inner_text()
    object_type, object_id = label.split(" ")
    image_cell.click()
    expected = AuditEvent.objects.filter(
        project_id=project.pk, actor_username="lena", object_type=object_type, object_id=object_id
    ).count()
    _wait_summary(page, f"{expected} event")
    assert page.input_value("#f-object-id") == object_id

    # Dates: nothing before today, everything from today on.
    today = timezone.now().date()
    page.click("#clear-filters")
    _wait_ready(page)
    page.fill("#f-until", str(today - timedelta(days=1)))
    page.click("#filters button[type=submit]")
    _wait_summary(page, "0 events")
    page.fill("#f-until", "")
    page.fill("#f-since", str(today))
    page.click("#filters button[type=submit]")
    _wait_summary(page, f"{total + 1} events")  # and the CSV download

    # A bad filter in the address is a clear message, not a blank page.
    page.goto(f"{live_server.url}/projects/{project.pk}/audit/?since=yesterday-ish")
    _wait_ready(page)
    assert page.get_attribute("#audit", "data-state") == "error"
    message = page.inner_text("#alert")
    assert "since" in message and "ISO 8601" in message


def test_staff_read_every_project_and_the_logins(
    page, live_server, project, cases, trail, make_user, frontend_built
):
    make_user("root", is_staff=True)
    log_in(page, live_server, "root")
    page.click("header >> text=Audit trail")
    _wait_ready(page)
    page.fill("#f-action", "auth.*")
    page.click("#filters button[type=submit]")
    logins = AuditEvent.objects.filter(action__startswith="auth.").count()
    _wait_summary(page, f"{logins} events match")
    actors = page.locator("#events tbody tr td:nth-child(2)").all_inner_texts()
    # ann's login from the fixture and root's own, through the form; neither has a project.
    assert sorted(actors) == ["ann", "root"]
    assert page.locator("#events tbody tr td:nth-child(4)").all_inner_texts() == ["\u2014"] * 2
    page.fill("#f-action", "")
    page.fill("#f-project", str(project.pk))
    page.click("#filters button[type=submit]")
    in_project = AuditEvent.objects.filter(project_id=project.pk).count()
    _wait_summary(page, f"{in_project} events match")


def test_lead_who_is_not_staff_is_refused_the_global_trail_with_the_reason(
    page, live_server, project, member
):
    member("lena", "lead")
    log_in(page, live_server, "lena")
    assert page.locator("header >> text=Audit trail").count() == 0
    response = page.goto(f"{live_server.url}/audit/")
    assert response.status == 403
    assert "needs a staff account" in page.inner_text("main")
