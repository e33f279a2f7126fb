"""Project-level endpoints: health check and API tokens."""

from __future__ import annotations

import sys

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import AnonRateThrottle

from medloop.api_errors import RETRY_AFTER_SECONDS, UNAVAILABLE, unavailable_body


def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise (for load balancers)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok"})


class TokenThrottle(AnonRateThrottle):
    rate = "30/min"


@extend_schema(tags=["auth"])
class TokenView(ObtainAuthToken):
    """Exchange username and password for an API token (for scripts)."""

    throttle_classes = [TokenThrottle]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "not_found", "message": f"No API endpoint at {request.path}."}, status=404
        )
    return defaults.page_not_found(request, exception)


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
