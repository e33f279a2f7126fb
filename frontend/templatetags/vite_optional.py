"""``{% vite_entry_if_built %}``: a Vite entry that a page can do without.

The Models page works through plain JavaScript (frontend/static/frontend/models.js) with no
build step; its charts are a Vite entry. Without a build (or with one older than the entry) the
page is served without them and says so, instead of failing as pages that need the build do."""

from __future__ import annotations

import logging

from django import template
from django.utils.safestring import SafeString, mark_safe

from frontend.templatetags.vite import FrontendNotBuilt, vite_entry

register = template.Library()
logger = logging.getLogger(__name__)


@register.simple_tag
def vite_entry_if_built(entry: str) -> SafeString:
    """The tags of :func:`~frontend.templatetags.vite.vite_entry`, or nothing (and a warning
    in the log) when the frontend build lacks ``entry``."""
    try:
        return vite_entry(entry)
    except FrontendNotBuilt as exc:
        logger.warning("%s is left out of the page: %s", entry, exc)
        return mark_safe("")
