"""Project-level endpoints: health check and API tokens."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
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
