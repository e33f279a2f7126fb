"""Browser sessions: HIPAA's automatic logoff without a database write on every request.

SESSION_SAVE_EVERY_REQUEST moves a session's idle expiry on at every request, by writing the
session row (an UPDATE and its commit) on every request the workspace makes. This middleware is
Django's SessionMiddleware, except that a session that did not change and was written less than
MEDLOOP_SESSION_REFRESH_SECONDS ago is not written again. Its expiry then lies at least
SESSION_COOKIE_AGE - MEDLOOP_SESSION_REFRESH_SECONDS after the last request: an idle session
ends up to that much sooner, never later."""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

SAVED_AT = "_medloop_saved_at"


class IdleSessionMiddleware(SessionMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        if (
            session is None
            or not settings.SESSION_SAVE_EVERY_REQUEST
            or response.status_code >= 500
            or session.is_empty()
        ):
            return super().process_response(request, response)
        now = timezone.now().timestamp()
        saved_at = session.get(SAVED_AT)
        fresh = (
            isinstance(saved_at, int | float)
            and 0 <= now - saved_at < settings.MEDLOOP_SESSION_REFRESH_SECONDS
        )
        if fresh and not session.modified:
            # Written moments ago and unchanged: nothing to write (the cookie carries no
            # expiry of its own while sessions end with the browser, and the row's is recent).
            patch_vary_headers(response, ("Cookie",))
            return response
        session[SAVED_AT] = now  # written by Django's save just below
        return super().process_response(request, response)
