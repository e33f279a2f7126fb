"""A chest CT series in the workspace (issue 21, speed): ingest of a synthetic series of
single-frame slices through the real path, then in headless Chromium over loopback the time to
the first slice drawn after the case opens, the time until every slice's file has arrived, the
rate of scrolling one slice per key press (each slice drawn before the next press), and the
page's JavaScript heap.

Runs the platform (runserver on a fresh SQLite database, the demo users, no radiographs),
writes the series with active_learning.ml.synthetic_ct and ingests it with `import_dicom`.
Goals (issue 21): first slice <= 1 s, whole stack <= 5 s, scrolling >= 30 frames/s for
300 slices of 512 x 512.

    python bench/ct_stack_viewing.py [--slices 300] [--size 512] [--rounds 3]

Each round opens the case in a fresh browser context (an empty cache); the figures are the
medians over the rounds, with their range. The series is synthetic_ct's seed 0.
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

# Steps through ``n`` slices with Page Down, waiting for each to be drawn (the viewer's
# data-slice moves once Cornerstone has rendered it); returns the milliseconds per slice.
SCROLL = """async (n) => {
  const viewer = document.querySelector('#viewer');
  const start = Number(viewer.dataset.slice);
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) {
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'PageDown', bubbles: true }));
    const want = String(start + i);
    await new Promise((resolve) => {
      const check = () =>
        viewer.dataset.slice === want ? resolve() : requestAnimationFrame(check);
      check();
    });
  }
  return (performance.now() - t0) / n;
}"""
FILES_ARRIVED = """(n) => {
  const files = performance.getEntriesByType('resource').filter((e) => e.name.includes('/file'));
  const ends = files.map((e) => e.responseEnd);
  const last = ends.length ? Math.max(...ends) : 0;
  return { count: new Set(files.map((e) => e.name)).size, last };
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="browser rounds (median, range)")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="medloop-ct-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        MEDLOOP_VAR_DIR=str(var),
        MEDLOOP_LOG_LEVEL="WARNING",
    )
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "seed_demo", "--count", "0"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    series_dir = var / "ct"
    subprocess.run(
        [
            python,
            "-m",
            "active_learning.ml.synthetic_ct",
            str(series_dir),
            "--slices",
            str(args.slices),
            "--size",
            str(args.size),
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    megabytes = sum(p.stat().st_size for p in series_dir.glob("*.dcm")) / 1e6
    t0 = time.perf_counter()
    subprocess.run(
        [
            python,
            "manage.py",
            "import_dicom",
            str(series_dir),
            "--project",
            "Chest X-ray demo",
            "--quiet",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    ingest_s = time.perf_counter() - t0
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
        deadline = time.monotonic() + 300  # runserver's checks take a while on 2 busy cores
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/login/", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        rounds = [run_browser(base, password, args.slices) for _ in range(args.rounds)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    print(f"series: {args.slices} slices of {args.size}x{args.size}, {megabytes:.0f} MB")
    print(
        f"ingest (import_dicom, SQLite): {ingest_s:.1f} s, {megabytes / ingest_s:.1f} MB/s, "
        f"{1000 * ingest_s / args.slices:.0f} ms per slice"
    )

    def figure(key: str) -> str:
        values = [r[key] for r in rounds]
        return f"{statistics.median(values):.0f} (range {min(values):.0f}-{max(values):.0f})"

    print(f"browser: headless Chromium over loopback, {args.rounds} rounds, medians")
    print(f"first slice drawn after the case opens: {figure('first_ms')} ms (goal <= 1000)")
    print(
        f"every slice's file arrived: {figure('stack_ms')} ms after navigation "
        f"({rounds[0]['files']} files; goal <= 5000)"
    )
    ms = [r["ms_per_slice"] for r in rounds]
    print(
        f"scrolling, one slice per key press: {statistics.median(ms):.1f} ms per slice "
        f"(range {min(ms):.1f}-{max(ms):.1f}), {1000 / statistics.median(ms):.0f} slices/s "
        "(goal >= 30)"
    )
    print(f"JavaScript heap after scrolling: {figure('heap_mb')} MB")


def run_browser(base: str, password: str, slices: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # Playwright polls with eval(), which the pages' Content-Security-Policy forbids.
        context = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
        # Room for every slice's entry (Chromium keeps 250 resource timings by default).
        context.add_init_script("performance.setResourceTimingBufferSize(10000)")
        page = context.new_page()
        page.goto(f"{base}/login/")
        page.fill("#id_username", "annotator")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        project_url = page.get_attribute("a:has-text('Start labeling')", "href")
        page.goto(base + project_url)
        page.wait_for_function(
            "document.querySelector('#viewer')?.dataset.slice === '1'", timeout=60_000, polling=5
        )
        first_ms = page.evaluate("performance.now()")
        page.wait_for_function(
            f"({FILES_ARRIVED})({slices}).count >= {slices}", timeout=120_000, polling=50
        )
        arrived = page.evaluate(f"({FILES_ARRIVED})({slices})")
        ms_per_slice = page.evaluate(SCROLL, min(slices - 1, 120))
        heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        context.close()
        browser.close()
    return {
        "first_ms": first_ms,
        "stack_ms": arrived["last"],
        "files": arrived["count"],
        "ms_per_slice": ms_per_slice,
        "heap_mb": heap / 1e6,
    }


if __name__ == "__main__":
    main()
