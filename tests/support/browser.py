"""Debian's Chromium for browser tests and benchmarks (Playwright's own download cannot run)."""

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
