"""Response and request hardening that Django does not do by itself.

Django 5.2 sends X-Content-Type-Options, Referrer-Policy, Cross-Origin-Opener-Policy (via
SecurityMiddleware) and X-Frame-Options, but has no Content-Security-Policy; and DRF reads JSON
bodies from the stream, past DATA_UPLOAD_MAX_MEMORY_SIZE, so body size is checked here."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

# The Swagger UI page (drf-spectacular) loads its files from the drf-spectacular-sidecar
# package and its set-up script from /api/docs/?script=: same origin only, no inline script.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'"
)


def with_nonce(policy: str, nonce: str) -> str:
    """The policy with ``'nonce-…'`` added to its script-src directive (if it has one)."""
    directives = [part.strip() for part in policy.split(";") if part.strip()]
    return "; ".join(
        f"{d} 'nonce-{nonce}'" if d.split()[0] == "script-src" else d for d in directives
    )


class ContentSecurityPolicyMiddleware:
    """Adds MEDLOOP_CONTENT_SECURITY_POLICY to every response that has none (none when empty).

    Each request gets a fresh nonce, ``request.csp_nonce``: a page's own inline script runs
    only when its tag carries ``nonce="{{ request.csp_nonce }}"``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        policy = settings.MEDLOOP_CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            docs = request.path == "/api/docs/"
            response["Content-Security-Policy"] = DOCS_POLICY if docs else with_nonce(policy, nonce)
        return response


class RequestBodyLimitMiddleware:
    """413 for a request whose declared body is too large, before anything reads it: any body
    over MEDLOOP_MAX_UPLOAD_BYTES, and JSON or form bodies (not multipart file uploads, which
    have the upload limit) over DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        limit = (
            settings.MEDLOOP_MAX_UPLOAD_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        )
        if limit is not None and length > limit:
            message = f"The request body ({length} bytes) is over the limit of {limit} bytes."
            if request.path.startswith("/api/"):
                return JsonResponse({"error": "too_large", "message": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)
