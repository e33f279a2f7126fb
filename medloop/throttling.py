"""API throttles whose rates are read from settings at each request.

DRF's own throttles copy DEFAULT_THROTTLE_RATES into a class attribute when they are imported,
so a rate changed later (an override in a test, a reloaded setting) would never apply."""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.settings import api_settings


class _SettingsRate:
    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(str(getattr(self, "scope", "")))
        return None if rate is None else str(rate)


class AnonRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Unauthenticated clients, by address (scope ``anon``)."""


class UserRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    """Authenticated users, by id (scope ``user``)."""


class TokenRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Password-for-token exchanges, by address (scope ``token``, counted apart from ``anon``)."""

    scope = "token"
