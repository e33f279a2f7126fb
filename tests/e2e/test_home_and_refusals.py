"""The home page's counts and the pages a refusal leads to (issue 18, items 7 and 10): a user
with two roles in a project sees each case once; a 403 page says why and links back; no page
asks for a favicon that is not there."""

from __future__ import annotations

import pytest

from annotations.models import Case
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_lead_who_is_also_reviewer_sees_each_case_counted_once(
    page, live_server, project, cases, member
):
    member("lena", "lead", "reviewer")
    Case.objects.filter(pk__in=[c.pk for c in cases[:3]]).update(state=Case.State.COMPLETE)
    log_in(page, live_server, "lena")
    row = page.locator(f"tr[data-project='{project.pk}']")
    cells = row.locator("td")
    assert cells.nth(2).inner_text() == "lead, reviewer"
    assert cells.nth(3).inner_text() == "9"
    assert cells.nth(4).inner_text() == "3"


def test_a_refused_page_says_why_and_links_back_home(page, live_server, project, member):
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    response = page.goto(f"{live_server.url}/projects/{project.pk}/upload/")
    assert response.status == 403
    assert "Importing needs the lead or admin role." in page.inner_text("main")
    assert page.locator("h1").inner_text() == "You may not open this page"
    page.click("main >> text=Back to your projects")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(f"tr[data-project='{project.pk}']").count() == 1


def test_every_page_names_an_icon_that_is_served(page, live_server, project, member):
    """Headless Chromium fetches icons outside the page's requests, so the test reads the icon
    each page names and asks for it, and for /favicon.ico (pages that name none)."""
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    for path in ["/login/", "/", f"/projects/{project.pk}/dashboard/"]:
        page.goto(f"{live_server.url}{path}")
        href = page.get_attribute("link[rel=icon]", "href")
        assert href, f"{path} names no icon"
        icon = page.request.get(f"{live_server.url}{href}")
        assert icon.status == 200 and icon.headers["content-type"].startswith("image/"), path
    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
