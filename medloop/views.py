"""Project-level endpoints: health check and API tokens."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import AnonRateThrottle


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
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "server_error", "message": "Internal error; it has been logged."},
            status=500,
        )
    return defaults.server_error(request)
