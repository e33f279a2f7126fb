"""Response and request hardening that Django does not do by itself.

Django 5.2 sends X-Content-Type-Options, Referrer-Policy, Cross-Origin-Opener-Policy (via
SecurityMiddleware) and X-Frame-Options, but has no Content-Security-Policy; and DRF reads JSON
bodies from the stream, past DATA_UPLOAD_MAX_MEMORY_SIZE, so body size is checked here."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from importlib import import_module
from types import SimpleNamespace
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.settings import api_settings

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


# A request without valid credentials may send at most this many bytes: enough for a login,
# a token exchange or a second-factor code, never enough to make the server hold a large body.
ANONYMOUS_BODY_BYTES = 256 * 1024


class RequestBodyLimitMiddleware:
    """413 for a request whose declared body is too large, before anything reads it.

    - Only an upload endpoint (a view with ``accepts_large_uploads = True``) takes multipart
      bodies up to MEDLOOP_MAX_UPLOAD_BYTES; any other body may have up to
      DATA_UPLOAD_MAX_MEMORY_SIZE.
    - Past ANONYMOUS_BODY_BYTES the caller must hold valid credentials (an API token, or a
      session of a signed-in user), checked here from the headers alone: an anonymous client
      never makes the server read, parse or hold a large body, whatever the endpoint.

    A body without Content-Length is read as empty by Django, so the declared length bounds
    what is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length == 0:
            return self.get_response(request)
        limit = _body_limit(request)
        if limit is not None and length > limit:
            return _too_large(
                request, f"The request body ({length} bytes) is over the limit of {limit} bytes."
            )
        if length > ANONYMOUS_BODY_BYTES and not _has_valid_credentials(request):
            return _too_large(
                request,
                f"The request body ({length} bytes) is over the limit of "
                f"{ANONYMOUS_BODY_BYTES} bytes for a request without valid credentials.",
            )
        return self.get_response(request)


def _too_large(request: HttpRequest, message: str) -> HttpResponse:
    # The body is left unread: the WSGI server discards it or closes the connection.
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "too_large", "message": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain")


def _body_limit(request: HttpRequest) -> int | None:
    """The most bytes the endpoint takes: the upload limit for a multipart body sent to an
    upload endpoint, DATA_UPLOAD_MAX_MEMORY_SIZE (None: no limit) for anything else."""
    multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
    if multipart and _is_upload_endpoint(request.path_info):
        return int(settings.MEDLOOP_MAX_UPLOAD_BYTES)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return None if limit is None else int(limit)


def _is_upload_endpoint(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    return bool(getattr(view_class, "accepts_large_uploads", False))


def _has_valid_credentials(request: HttpRequest) -> bool:
    """Whether the request carries a valid API token or the session of a signed-in user (the
    same checks DRF and Django make later; only requests with a large body pay for them)."""
    if request.META.get("HTTP_AUTHORIZATION"):
        # api_settings imports the dotted paths: classes at run time, typed as strings.
        classes = cast(
            "list[type[BaseAuthentication]]", api_settings.DEFAULT_AUTHENTICATION_CLASSES
        )
        for authentication in classes:
            if authentication is SessionAuthentication:
                continue
            try:
                # DRF's token classes read only the headers, which a Django request has.
                if authentication().authenticate(request) is not None:  # type: ignore[arg-type]
                    return True
            except AuthenticationFailed:
                return False
        return False
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    return bool(user.is_authenticated and user.is_active)
