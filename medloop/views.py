"""Project-level endpoints: health check, the icon and the error pages (API tokens:
:mod:`medloop.accounts.token_views`)."""

from __future__ import annotations

import sys

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

from medloop.api_errors import RETRY_AFTER_SECONDS, UNAVAILABLE, unavailable_body


def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise (for load balancers)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "not_found", "message": f"No API endpoint at {request.path}."}, status=404
        )
    return defaults.page_not_found(request, exception)


def favicon(request: HttpRequest) -> HttpResponse:
    """MedLoop's icon, for pages that name none (Django admin). A temporary redirect: the icon's
    static address may change (a hashed file name) without browsers keeping a stale one."""
    return HttpResponseRedirect(static("frontend/favicon.svg"))


DEFAULT_REFUSAL = "Your roles do not allow this page."


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403: JSON under /api/; elsewhere a page that says why (the refusal's own message, which
    names the role needed) and links back home and to the page the user came from."""
    reason = str(exception) or DEFAULT_REFUSAL
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "permission_denied", "message": reason}, status=403)
    referer = request.headers.get("Referer", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    back = referer if safe and referer != request.build_absolute_uri() else ""
    return render(request, "frontend/403.html", {"reason": reason, "back": back}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """500, or 503 when the database went away (restart, failover): try again shortly."""
    if isinstance(sys.exc_info()[1], UNAVAILABLE):
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(unavailable_body(), status=503)
        else:
            response = HttpResponse(
                "MedLoop's database is unavailable right now; try again in a moment.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "server_error", "message": "Internal error; it has been logged."},
            status=500,
        )
    return defaults.server_error(request)
