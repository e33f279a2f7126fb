"""The client of the request being served (address and user agent), in one place for every
audit event: :class:`RequestClientMiddleware` sets it for the length of a request and the audit
trail (``annotations.services.audit.record``) reads it, so a service called by a view records
where the request came from without being handed the request. Outside a request (commands,
Celery tasks) there is none."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

from medloop.throttling import client_address

Client = tuple[str | None, str]
NO_CLIENT: Client = (None, "")
_client: ContextVar[Client] = ContextVar("medloop_request_client", default=NO_CLIENT)


def client_of(request: HttpRequest) -> Client:
    """(address, user agent) of ``request``: the client's address as the throttles read it
    (X-Forwarded-For only from MEDLOOP_TRUSTED_PROXIES) and the first 300 characters of the
    user agent."""
    return (
        client_address(request.META) or None,
        request.META.get("HTTP_USER_AGENT", "")[:300],
    )


def current_client() -> Client:
    """The client of the request being served; (None, "") outside one."""
    return _client.get()


class RequestClientMiddleware:
    """Makes the request's client the current one while the request is served."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _client.set(client_of(request))
        try:
            return self.get_response(request)
        finally:
            _client.reset(token)
