"""Where a project's pseudonym key comes from: derived from MEDLOOP_PSEUDONYM_KEY, which lives
in the environment, never in the database.

A project's pseudonyms (patient ids, UID maps, date shifts, source-name digests) are HMACs
keyed by its key. Were that key in the database, anyone with a dump or a backup could
recompute pseudonyms for a list of candidate MRNs and re-identify patients. So the database
keeps only a random per-project salt, and the key is

    HMAC-SHA256(MEDLOOP_PSEUDONYM_KEY, "medloop-project-pseudonym-key-v1" || 0x00 || salt)

(the expand step of HKDF with the master key as its pseudorandom key), written as 64 hex
digits like the secrets projects used to hold. Projects created before this change keep their
stored secret (``Project.legacy_pseudonym_secret``), so their pseudonyms stay stable; they are
flagged (``uses_legacy_pseudonym_secret``) and listed by ``manage.py pseudonym_keys``. README,
"Pseudonym key", says how to rotate."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.core.exceptions import ImproperlyConfigured

DERIVATION_LABEL = b"medloop-project-pseudonym-key-v1\x00"


def new_salt() -> str:
    """A random per-project salt (not secret: it is useless without the master key)."""
    return secrets.token_hex(16)


def derive_project_key(master_key: str, salt: str) -> str:
    """The project key for ``salt`` under ``master_key`` (64 hex digits)."""
    if not master_key:
        raise ImproperlyConfigured(
            "MEDLOOP_PSEUDONYM_KEY is empty: pseudonyms cannot be made without it."
        )
    if not salt:
        raise ImproperlyConfigured("This project has no pseudonym salt.")
    return hmac.new(
        master_key.encode("utf-8"), DERIVATION_LABEL + salt.encode("ascii"), hashlib.sha256
    ).hexdigest()
