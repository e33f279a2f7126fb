"""Browser tests: Debian's Chromium driven by Playwright against a live server.

Playwright's own browser download cannot run here; it drives /usr/bin/chromium. Screenshots of
the screens a test passes through are kept in MEDLOOP_TEST_ARTIFACTS (default
var/test-artifacts) for people to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.tools import require

IN_CI = os.environ.get("CI", "").lower() == "true"
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
MANIFEST = FRONTEND / "static" / "frontend" / "dist" / ".vite" / "manifest.json"
BUILD_INPUTS = ("package.json", "package-lock.json", "tsconfig.json", "vite.config.ts")

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


@pytest.fixture(autouse=True)
def _csp_lets_playwright_poll(request: pytest.FixtureRequest) -> Iterator[None]:
    """Playwright's wait_for_function evaluates its predicate with eval() in the page, which
    MedLoop's Content-Security-Policy forbids. The browser tests run under the real policy
    plus 'unsafe-eval' (every other directive applies); test_content_security_policy.py checks
    the pages under the policy exactly as served (its module sets STRICT_CSP = True)."""
    if getattr(request.module, "STRICT_CSP", False):
        yield
        return
    django_settings = request.getfixturevalue("settings")
    policy = django_settings.MEDLOOP_CONTENT_SECURITY_POLICY
    django_settings.MEDLOOP_CONTENT_SECURITY_POLICY = policy.replace(
        "script-src", "script-src 'unsafe-eval'", 1
    )
    yield


class RequestsInFlight:
    """The live server's WSGI application, wrapped to count the requests it is answering: a
    request counts from the call until the server closes its response (a streamed body is
    still being read from the database until then)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.count = 0
        self._lock = threading.Lock()

    def _add(self, change: int) -> None:
        with self._lock:
            self.count += change

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self._add(1)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._add(-1)
            raise
        return _CountedBody(body, lambda: self._add(-1))


class _CountedBody:
    def __init__(self, body: Any, done: Callable[[], None]) -> None:
        self.body, self.done = body, done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.done()


def requests_in_flight(live_server: Any) -> RequestsInFlight:
    """The live server's request counter, installed on its first use."""
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if not isinstance(app, RequestsInFlight):
        app = RequestsInFlight(app)
        httpd.set_app(app)
    return app


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    counter = None
    if "live_server" in request.fixturenames:
        counter = requests_in_flight(request.getfixturevalue("live_server"))
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    # Leave the app and close the browser's connections, then wait until the live server has
    # answered every request the page had sent (autosave, lease renewal, prefetch), so that
    # none still runs while the test database is flushed.
    page.goto("about:blank")
    context.close()
    if counter is not None:
        deadline = time.monotonic() + 60
        while counter.count:
            assert time.monotonic() < deadline, f"{counter.count} requests still running"
            time.sleep(0.02)


def _sources_changed_since(built: float) -> bool:
    inputs = [FRONTEND / name for name in BUILD_INPUTS]
    inputs += [p for p in (FRONTEND / "src").rglob("*") if p.is_file()]
    return any(p.exists() and p.stat().st_mtime > built for p in inputs)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, cwd=FRONTEND, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        message = f"`{' '.join(command)}` failed in frontend/:\n{output}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def frontend_built() -> Path:
    """The Vite build, rebuilt when a source is newer than its manifest (npm ci first when
    node_modules is missing). Under CI=true a failed build fails the tests."""
    if MANIFEST.exists() and not _sources_changed_since(MANIFEST.stat().st_mtime):
        return MANIFEST
    npm = shutil.which("npm")
    require([] if npm else ["npm (Node 20)"], "the viewer's browser tests")
    assert npm is not None
    if not (FRONTEND / "node_modules").is_dir():
        _run([npm, "ci", "--no-audit", "--no-fund"])
    _run([npm, "run", "build"])
    assert MANIFEST.exists(), "the build wrote no manifest"
    return MANIFEST
