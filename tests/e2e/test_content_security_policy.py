"""Every page under MedLoop's Content-Security-Policy exactly as served (no 'unsafe-eval', no
inline script without the response's nonce): the workspace decodes and renders a DICOM image
(WebAssembly codecs in web workers), the dashboard draws its charts, the upload page's own
script runs, and the browser reports no violation on any page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser import log_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frontend_built"),
]
STRICT_CSP = True  # tests/e2e/conftest.py: no 'unsafe-eval' for Playwright here


def _watch(page) -> list[str]:
    """Collects what the browser reports about CSP: console errors and uncaught errors."""
    seen: list[str] = []

    def on_console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            seen.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen.append(f"page error: {exc}"))
    return seen


def _until(page, expression: str, timeout_s: float = 30.0) -> None:
    """Polls ``expression`` with page.evaluate (DevTools, which the page's CSP does not govern;
    Playwright's wait_for_function would need eval() in the page)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def test_workspace_renders_a_dicom_image_under_the_policy(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    member("ann", "annotator")
    seen = _watch(page)
    log_in(page, live_server, "ann")
    response = page.goto(f"{live_server.url}/projects/{project.pk}/label/")
    policy = response.headers["content-security-policy"]
    assert "'unsafe-eval'" not in policy and "'wasm-unsafe-eval'" in policy
    page.wait_for_selector(".case-info", timeout=30_000)
    _until(page, "() => (window.medloopTimings?.renders.length ?? 0) >= 1")
    page.screenshot(path=str(artifacts_dir / "csp-workspace.png"))
    assert seen == []


def test_lead_pages_work_under_the_policy(page, live_server, project, member, cases):
    member("lena", "lead", "reviewer", "model_owner")
    seen = _watch(page)
    log_in(page, live_server, "lena")

    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    _until(page, "() => document.querySelectorAll('canvas').length > 0")

    # The upload page's inline script (with the nonce) runs: an empty submit reports back.
    page.goto(f"{live_server.url}/projects/{project.pk}/upload/")
    assert page.evaluate("() => document.querySelector('script[nonce]') !== null")
    nonce_attribute = page.evaluate("() => document.querySelector('script[nonce]').nonce")
    assert nonce_attribute  # the browser accepted it as the page's nonce

    for path in ["review", "models", "adjudication"]:
        page.goto(f"{live_server.url}/projects/{project.pk}/{path}/")
        page.wait_for_load_state("networkidle")
    # The held-images and audit trail pages (issue 18) draw themselves under the policy.
    for path, root in [("quarantine", "#quarantine"), ("audit", "#audit")]:
        page.goto(f"{live_server.url}/projects/{project.pk}/{path}/")
        _until(page, f"() => document.querySelector('{root}').dataset.state === 'ready'")
    page.goto(f"{live_server.url}/")
    assert seen == []
