"""Typed readers of environment variables for the settings and the platform commands.

Each returns its ``default`` when the variable is unset and raises ImproperlyConfigured, naming
the variable and the value, when the value is not of its type: ``DJANGO_SECURE_COOKIES=ture``
or ``MEDLOOP_LOGIN_FAILURE_LIMIT=5x`` stops the process at start instead of silently meaning
false or failing later with a bare ValueError.
"""

from __future__ import annotations

import math
import os

from django.core.exceptions import ImproperlyConfigured

__all__ = ["env", "env_bool", "env_float", "env_int", "env_list"]


def env(name: str, default: str = "") -> str:
    """``name`` as text, ``default`` when unset."""
    return os.environ.get(name, default)


def env_list(name: str, default: str = "") -> list[str]:
    """``name`` as a comma-separated list, items stripped, empty items dropped."""
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def env_bool(name: str, default: bool = False) -> bool:
    """``name`` as a boolean: ``1/true/yes/on`` or ``0/false/no/off`` (any case; empty is false),
    ``default`` when unset. Anything else raises ImproperlyConfigured: a typo must not switch a
    safety setting off."""
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of {sorted(_TRUE)} or {sorted(_FALSE - {''})}"
    )


def env_int(name: str, default: int) -> int:
    """``name`` as a whole number (``default`` when unset); anything else raises
    ImproperlyConfigured naming the variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None


def env_float(name: str, default: float) -> float:
    """``name`` as a number (``default`` when unset); anything else, NaN and infinities included,
    raises ImproperlyConfigured naming the variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value.strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    return number
