"""/api/docs/ in a browser with no way out (issue 15, Low): Swagger UI comes from the
drf-spectacular-sidecar package through MedLoop's own static files, runs under the docs page's
policy exactly as served (same-origin scripts only), and lists the API's operations; every
request that would leave the server is blocked and counted."""

from __future__ import annotations

import time

import pytest

from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
STRICT_CSP = True  # tests/e2e/conftest.py: the page's policy exactly as served


def test_swagger_ui_renders_offline_under_the_docs_policy(browser, live_server, make_user):
    make_user("reader")
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    log_in(page, live_server, "reader")
    page.goto(f"{live_server.url}/api/docs/")
    deadline = time.monotonic() + 30
    # Polled through DevTools (page.evaluate), which the page's policy does not govern.
    while not page.evaluate("document.querySelectorAll('.opblock').length > 10"):
        assert time.monotonic() < deadline, "Swagger UI listed no operations"
        time.sleep(0.2)
    title = page.inner_text(".information-container .title")
    assert "MedLoop API" in title
    assert outside == [] and problems == []
    context.close()
