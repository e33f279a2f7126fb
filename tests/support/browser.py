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


# Pixels of a canvas that something was drawn on (Chart.js leaves the rest transparent).
DRAWN_PIXELS = """(canvas) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++;
  return drawn;
}"""


def assert_charts_drawn(page: Any, keys: tuple[str, ...]) -> None:
    """Each chart panel ``keys`` (frontend/src/dashboards/panel.ts) is visible, drawn on, and its
    canvas's aria-label starts with the panel's title."""
    for key in keys:
        canvas = page.locator(f"[data-testid=chart-{key}]")
        assert canvas.is_visible(), key
        assert canvas.evaluate(DRAWN_PIXELS) > 500, f"the {key} chart is blank"
        title = page.text_content(f"#panel-{key} h2")
        assert canvas.get_attribute("aria-label").startswith(title), key
