"""Debian's Chromium for browser tests and benchmarks (Playwright's own download cannot run)."""

from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Headless Chromium as root, with no background traffic to the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def log_in(page: Any, live_server: Any, username: str) -> None:
    """Log in through the login form as ``username`` (the tests' password) and land home."""
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
