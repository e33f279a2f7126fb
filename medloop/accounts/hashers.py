"""Argon2id password hashing with parameters sized for the machine (see bench/login_latency.py).

Django's Argon2PasswordHasher fixes its parameters in class attributes; this one reads them
from settings (MEDLOOP_ARGON2_TIME_COST, _MEMORY_KIB, _PARALLELISM), so an operator can size
them for the web servers without code. Stored hashes keep their own parameters; a hash made
with other parameters is rehashed with the current ones at the user's next login."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class SizedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id (algorithm name ``argon2``, compatible with Django's hasher)."""

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return int(settings.MEDLOOP_ARGON2_TIME_COST)

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return int(settings.MEDLOOP_ARGON2_MEMORY_KIB)

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return int(settings.MEDLOOP_ARGON2_PARALLELISM)
