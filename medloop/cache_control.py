"""API responses are not kept by browsers or shared caches.

Case, annotation and audit responses carry clinical text, reports and who-saw-what: a browser's
disk cache or a proxy in between must not keep them. Every /api/ response without a
Cache-Control of its own gets ``no-store``; views that choose caching (rendered image pixels,
``private``, so only the user's own browser keeps them) keep their header."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

API_PREFIX = "/api/"


class ApiNoStoreMiddleware:
    """Adds ``Cache-Control: no-store`` to every /api/ response that set no Cache-Control."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX) and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response
