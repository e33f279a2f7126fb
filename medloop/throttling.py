"""API throttles whose rates are read from settings at each request, keyed by a client address
that a forged X-Forwarded-For cannot change.

DRF's own throttles copy DEFAULT_THROTTLE_RATES into a class attribute when they are imported,
so a rate changed later (an override in a test, a reloaded setting) would never apply. And with
NUM_PROXIES unset, DRF keys anonymous clients by the whole X-Forwarded-For header, which any
client may write: a new value per request meant a new, empty count per request.

And DRF's throttles keep every request's time in one cached list, read, trimmed and written back
whole on each request (up to the rate's count: 3,000 entries for an annotator at 3000/min), and
two processes sharing Redis overwrite each other's list. These count instead: one counter per
client and window, incremented in the cache (atomic in Redis), and the rate over the last
``duration`` seconds estimated from this window's count and the previous one's, weighted by how
much of the previous window is still inside the last ``duration`` seconds."""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings


def _in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(meta: dict[str, Any]) -> str:
    """The address of the client behind a request (``request.META``).

    X-Forwarded-For is read only when the direct peer (REMOTE_ADDR) is one of
    MEDLOOP_TRUSTED_PROXIES (addresses or networks; default none). Then the header is read from
    the right, skipping trusted proxies, and the first address no trusted proxy wrote is the
    client: what a client puts on the left of the header is never believed."""
    remote = str(meta.get("REMOTE_ADDR") or "").strip()
    trusted = list(getattr(settings, "MEDLOOP_TRUSTED_PROXIES", []) or [])
    if not trusted or not _in_networks(remote, trusted):
        return remote
    forwarded = [part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for hop in reversed([part for part in forwarded if part]):
        if not _in_networks(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                # Not an address: a proxy passed on garbage; fall back to the proxy itself.
                return remote
    return remote


class _SettingsRate:
    """Rates read from settings at each request; counts kept per window (see above)."""

    rate: str | None
    num_requests: int
    duration: int
    cache: Any
    timer: Any
    get_cache_key: Any  # DRF's, per class (user id, client address)

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(str(getattr(self, "scope", "")))
        return None if rate is None else str(rate)

    def get_ident(self, request: Any) -> str:
        return client_address(request.META)

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self._elapsed = now - window * self.duration
        current_key, previous_key = f"{key}:{window}", f"{key}:{window - 1}"
        counts = self.cache.get_many([current_key, previous_key])
        self._current = int(counts.get(current_key, 0))
        self._previous = int(counts.get(previous_key, 0))
        weight = 1.0 - self._elapsed / self.duration
        if self._previous * weight + self._current >= self.num_requests:
            return False
        # Kept for two windows: the next window weighs this one.
        if self._current or not self.cache.add(current_key, 1, 2 * self.duration):
            try:
                self.cache.incr(current_key)
            except ValueError:  # expired in between
                self.cache.set(current_key, 1, 2 * self.duration)
        return True

    def wait(self) -> float:
        """Seconds until the estimate falls below the rate again (at least one)."""
        n, d = self.num_requests, self.duration
        if self._current >= n:
            # Into the next window, until this window's count has decayed below the rate.
            seconds = (d - self._elapsed) + d * (1.0 - n / self._current)
        elif self._previous:
            seconds = d * (1.0 - (n - self._current) / self._previous) - self._elapsed
        else:
            seconds = d - self._elapsed
        return float(max(1, math.ceil(seconds)))


class AnonRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Unauthenticated clients, by address (scope ``anon``)."""


class UserRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    """Authenticated users, by id (scope ``user``)."""


class TokenRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Password-for-token exchanges, by address (scope ``token``, counted apart from ``anon``)."""

    scope = "token"
