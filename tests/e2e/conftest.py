"""Browser tests: Debian's Chromium driven by Playwright against a live server.

Playwright's own browser download cannot run here; it drives /usr/bin/chromium. Screenshots of
the screens a test passes through are kept in MEDLOOP_TEST_ARTIFACTS (default
var/test-artifacts) for people to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.tools import require

# Playwright's sync API runs an event loop in this thread; the test's own database calls are
# still synchronous and sequential.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("MEDLOOP_TEST_ARTIFACTS", "var/test-artifacts")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    require([] if shutil.which(CHROMIUM) else ["Debian's chromium"], "the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    # Leave the app first so that no request of the page (autosave, lease renewal, prefetch)
    # is still running on the live server while the test database is flushed.
    page.goto("about:blank")
    page.wait_for_timeout(300)
    context.close()
