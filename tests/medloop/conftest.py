"""Fixtures of the project package's tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import axes.attempts
import axes.handlers.proxy
import pytest
from django.utils import timezone


@pytest.fixture
def advance_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``advance_clock(seconds)`` moves Django's clock forward without sleeping: every
    ``timezone.now()`` (django-otp's throttle, the lockout records) and django-axes' own imported
    ``now`` return the time the test started plus the total advanced so far. The clock stands
    still otherwise, so a slow machine cannot carry a test past a cool-off it checks."""
    offset = timedelta(0)
    started = timezone.now()

    def now():  # type: ignore[no-untyped-def]
        return started + offset

    for module in (timezone, axes.attempts, axes.handlers.proxy):
        monkeypatch.setattr(module, "now", now)

    def advance(seconds: float) -> None:
        nonlocal offset
        offset += timedelta(seconds=seconds)

    return advance
