"""Find the hashed files of the Vite build (frontend/static/frontend/dist) by its manifest."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

DIST = Path(__file__).resolve().parent.parent / "static" / "frontend" / "dist"
MANIFEST = DIST / ".vite" / "manifest.json"


class FrontendNotBuilt(RuntimeError):
    pass


@lru_cache(maxsize=4)
def _manifest(mtime: float) -> dict[str, Any]:
    return dict(json.loads(MANIFEST.read_text()))


def manifest() -> dict[str, Any]:
    if not MANIFEST.exists():
        raise FrontendNotBuilt(
            "The frontend is not built: run `make run` (or `cd frontend && npm ci && npm run "
            "build`)."
        )
    # Re-read after a rebuild (DEBUG) without a restart; production reads it once per build.
    return _manifest(MANIFEST.stat().st_mtime if settings.DEBUG else 0.0)


@register.simple_tag
def vite_entry(entry: str) -> SafeString:
    """<link> tags for the entry's CSS and a module <script> for its JS."""
    chunks = manifest()
    chunk = chunks.get(entry)
    if chunk is None:
        raise FrontendNotBuilt(f"{entry} is not in the Vite manifest; rebuild the frontend.")
    styles = format_html_join(
        "\n",
        '<link rel="stylesheet" href="{}">',
        ((static(f"frontend/dist/{css}"),) for css in _stylesheets(chunks, entry)),
    )
    script = format_html_join(
        "",
        '<script type="module" src="{}"></script>',
        ((static(f"frontend/dist/{chunk['file']}"),),),
    )
    return mark_safe(f"{styles}\n{script}")  # noqa: S308 - both parts are escaped above


def _stylesheets(chunks: dict[str, Any], key: str, seen: set[str] | None = None) -> list[str]:
    """CSS of a chunk and of every chunk it imports (Vite puts shared CSS in shared chunks)."""
    seen = set() if seen is None else seen
    if key in seen or key not in chunks:
        return []
    seen.add(key)
    found = list(chunks[key].get("css", []))
    for imported in chunks[key].get("imports", []):
        found += [css for css in _stylesheets(chunks, imported, seen) if css not in found]
    return found
