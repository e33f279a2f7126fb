"""What every request pays, kept small (issue 20): the API throttle counts per window instead of
keeping every request's time, and an unchanged browser session is written at most once a
minute while its idle logoff still holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from medloop.throttling import UserRateThrottle


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_020.0]  # 20 s into a minute window
    monkeypatch.setattr(UserRateThrottle, "timer", staticmethod(lambda: now[0]))
    return now


def test_the_user_throttle_allows_the_rate_over_any_minute_and_says_when_to_retry(
    make_user, api_for, clock
):
    client = api_for(make_user("scripter"))
    rates = {"anon": "100/min", "user": "3/min", "token": "100/min"}
    cache.clear()
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK,
                                           "DEFAULT_THROTTLE_RATES": rates}):  # fmt: skip
        assert [client.get("/api/projects/").status_code for _ in range(3)] == [200] * 3
        refused = client.get("/api/projects/")
        assert refused.status_code == 429
        # 40 s left in this window, then this window's three still weigh: about 60 s in all.
        assert 40 < int(refused["Retry-After"]) <= 61
        clock[0] += 41  # next window, 1 s in: the last window's 3 still count almost fully
        assert client.get("/api/projects/").status_code == 429
        clock[0] += 30  # half of the last window remains: 1.5 requests' worth
        assert [client.get("/api/projects/").status_code for _ in range(2)] == [200, 429]
        clock[0] += 120  # a quiet window in between: nothing weighs any more
        assert [client.get("/api/projects/").status_code for _ in range(4)] == [200] * 3 + [429]
    cache.clear()


@pytest.mark.django_db
def test_an_unchanged_session_is_written_at_most_once_a_minute(client, make_user, monkeypatch):
    client.force_login(make_user("alice"))
    start = timezone.now()

    def session_writes_at(seconds: float) -> int:
        monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=seconds))
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        return sum(
            1 for q in queries.captured_queries
            if "django_session" in q["sql"] and not q["sql"].startswith("SELECT")
        )  # fmt: skip

    assert session_writes_at(1) == 1  # the first request stamps it
    assert session_writes_at(20) == 0
    assert session_writes_at(50) == 0
    assert session_writes_at(62) == 1  # over a minute since the last write
    assert session_writes_at(70) == 0
