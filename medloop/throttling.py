"""API throttles whose rates are read from settings at each request, keyed by a client address
that a forged X-Forwarded-For cannot change.

DRF's own throttles copy DEFAULT_THROTTLE_RATES into a class attribute when they are imported,
so a rate changed later (an override in a test, a reloaded setting) would never apply. And with
NUM_PROXIES unset, DRF keys anonymous clients by the whole X-Forwarded-For header, which any
client may write: a new value per request meant a new, empty count per request."""

from __future__ import annotations

import ipaddress
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
    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(str(getattr(self, "scope", "")))
        return None if rate is None else str(rate)

    def get_ident(self, request: Any) -> str:
        return client_address(request.META)


class AnonRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Unauthenticated clients, by address (scope ``anon``)."""


class UserRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    """Authenticated users, by id (scope ``user``)."""


class TokenRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Password-for-token exchanges, by address (scope ``token``, counted apart from ``anon``)."""

    scope = "token"
