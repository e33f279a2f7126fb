"""What the annotator waits for, measured in the browser over loopback: the cold first render of
the workspace (navigation to the first image drawn) and submit -> the next case's image drawn
(the next case is leased and its images prefetched while the current one is worked on).

Runs the platform (runserver on a fresh SQLite database with synthetic demo cases), drives
Debian's Chromium with Playwright as the demo annotator, and reads the workspace's own timers
(window.medloopTimings). Prints p50/p95. Goal (issue 4): submit -> next image under 200 ms.

    python bench/workspace_render.py [--cases 40] [--submits 25] [--cold 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--submits", type=int, default=25)
    parser.add_argument("--cold", type=int, default=5, help="cold page loads")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="medloop-workspace-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        MEDLOOP_VAR_DIR=str(var),
        MEDLOOP_LOG_LEVEL="WARNING",
    )
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "seed_demo", "--count", str(args.cases)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    password = json.loads((var / "demo-credentials.json").read_text())["annotator"]
    port = _free_port()
    server = subprocess.Popen(
        [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/login/", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        cold, submits = run_browser(base, password, args)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    cold50, cold95 = _quantiles(cold)
    sub50, sub95 = _quantiles(submits)
    print(f"{'measure':<34}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}")
    print(f"{'cold first render':<34}{len(cold):>4}{cold50:>9.0f}{cold95:>9.0f}")
    print(f"{'submit -> next image (prefetched)':<34}{len(submits):>4}{sub50:>9.0f}{sub95:>9.0f}")
    print("Goal: submit -> next image under 200 ms (p50 and p95 shown).")


def run_browser(
    base: str, password: str, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    cold: list[float] = []
    submits: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for attempt in range(args.cold + 1):
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            page = context.new_page()
            page.goto(f"{base}/login/")
            page.fill("#id_username", "annotator")
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            project_url = page.get_attribute("a:has-text('Start labeling')", "href")
            page.goto(base + project_url)
            page.wait_for_function(
                "window.medloopTimings && window.medloopTimings.coldFirstRenderMs !== null",
                timeout=60_000,
            )
            if attempt < args.cold:
                cold.append(page.evaluate("window.medloopTimings.coldFirstRenderMs"))
                context.close()
                continue
            for _ in range(args.submits):
                done = page.evaluate("window.medloopTimings.submitToRenderMs.length")
                page.keyboard.press("Control+Enter")
                page.wait_for_function(
                    f"window.medloopTimings.submitToRenderMs.length > {done}", timeout=30_000
                )
            submits = list(page.evaluate("window.medloopTimings.submitToRenderMs"))
            context.close()
        browser.close()
    return cold, submits


if __name__ == "__main__":
    main()
