"""/api/docs/ works without internet (issue 15, Low): Swagger UI's files come from the
drf-spectacular-sidecar package through MedLoop's own static files, never from a CDN, and the
page runs under a policy that allows same-origin scripts only."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def test_swagger_ui_is_served_from_the_package_not_a_cdn(client: Client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assets = [s for s in sources if s.startswith("/static/")]
    assert {a.rsplit("/", 1)[1] for a in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    for asset in assets:
        # Each file is in the installed package, found by the static files finders.
        assert finders.find(asset.removeprefix("/static/")), asset
    # No inline script: the set-up script is its own same-origin file.
    assert "<script>" not in html
    script_url = next(s for s in sources if s.startswith("/api/docs/"))
    script = client.get(script_url)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    policy = page["Content-Security-Policy"]
    script_src = policy.split("script-src")[1].split(";")[0]
    assert script_src.strip() == "'self'" and "jsdelivr" not in policy
