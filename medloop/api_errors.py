"""One JSON error shape for the whole API: {"error": code, "message": text, ...details}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotations.services.errors import DomainError

logger = logging.getLogger(__name__)


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


# The database went away mid-request (restart, failover, network): the request may be retried.
UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def unavailable_body() -> dict[str, str]:
    return {
        "error": "unavailable",
        "message": "The database is unavailable right now; retry shortly.",
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, UNAVAILABLE):
        logger.warning("database unavailable: %s", exc)
        return Response(
            unavailable_body(),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DomainError):
        body = {"error": exc.code, "message": exc.message, **exc.detail}
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        message = " ".join(exc.messages)
        return Response(
            {"error": "invalid", "message": message}, status=status.HTTP_400_BAD_REQUEST
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "error": "invalid",
            "message": _flatten(exc.detail),
            "fields": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        response.data = {
            "error": code if isinstance(code, str) else "error",
            "message": _flatten(exc.detail),
        }
    return response
