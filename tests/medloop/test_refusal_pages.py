"""403 pages (issue 18, item 10): the refusal's reason, a link home, and a link back to the page
the user came from only when that page is on this site (never an outside address)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator_client(client, project, member):
    member("ann", "annotator")
    client.login(username="ann", password="correct horse battery")
    return client


def test_refusal_page_says_why_and_links_home(annotator_client, project):
    response = annotator_client.get(f"/projects/{project.pk}/dashboard/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "The dashboard needs the lead or admin role." in page
    assert '<a href="/">Back to your projects</a>' in page
    assert "Back to the page you came from" not in page


def test_back_link_only_to_a_page_of_this_site(annotator_client, project):
    path = f"/projects/{project.pk}/upload/"
    same = annotator_client.get(path, HTTP_REFERER="http://testserver/")
    assert (
        '<a href="http://testserver/">Back to the page you came from</a>' in same.content.decode()
    )
    outside = annotator_client.get(path, HTTP_REFERER="https://evil.example/phish")
    assert outside.status_code == 403
    assert "evil.example" not in outside.content.decode()


def test_favicon_address_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("frontend/favicon.svg")
