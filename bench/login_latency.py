"""Login latency with MedLoop's Argon2id parameters against Django's default PBKDF2, in one
process: the password check alone, and a whole login through the login form (form, lockout
bookkeeping, audit event, new session) on an embedded SQLite database.

Prints p50/p95 per hasher and the ratio Argon2id / PBKDF2. The Argon2 parameters come from
the environment as in production (MEDLOOP_ARGON2_TIME_COST, _MEMORY_KIB, _PARALLELISM).

    python bench/login_latency.py [--logins 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HASHERS = {
    "argon2id": "medloop.accounts.hashers.SizedArgon2PasswordHasher",
    "pbkdf2 (Django default)": "django.contrib.auth.hashers.PBKDF2PasswordHasher",
}
PASSWORD = "correct horse battery staple"


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=30, help="logins per hasher")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="medloop-login-bench-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        DATABASE_URL=f"sqlite:///{scratch / 'bench.sqlite3'}",
        MEDLOOP_VAR_DIR=str(scratch),
        MEDLOOP_LOGIN_LOCKOUT="1",
        MEDLOOP_LOG_LEVEL="WARNING",
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import check_password, make_password
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    print(
        f"Argon2id: time cost {settings.MEDLOOP_ARGON2_TIME_COST}, memory "
        f"{settings.MEDLOOP_ARGON2_MEMORY_KIB // 1024} MiB, parallelism "
        f"{settings.MEDLOOP_ARGON2_PARALLELISM}; {os.cpu_count()} CPUs; {args.logins} logins each"
    )
    print(f"{'hasher':<24} {'check p50':>10} {'check p95':>10} {'login p50':>10} {'login p95':>10}")
    results: dict[str, tuple[float, float, float, float]] = {}
    for label, hasher in HASHERS.items():
        with override_settings(PASSWORD_HASHERS=[hasher]):
            encoded = make_password(PASSWORD)
            checks = []
            for _ in range(args.logins):
                start = time.perf_counter()
                assert check_password(PASSWORD, encoded)
                checks.append(time.perf_counter() - start)
            username = f"bench-{hasher.rsplit('.', 1)[-1].lower()}"
            get_user_model().objects.create_user(username=username, password=PASSWORD)
            logins = []
            for _ in range(args.logins):
                client = Client()
                start = time.perf_counter()
                response = client.post("/login/", {"username": username, "password": PASSWORD})
                logins.append(time.perf_counter() - start)
                assert response.status_code == 302, response.status_code
        results[label] = (*_percentiles(checks), *_percentiles(logins))
        row = results[label]
        print(f"{label:<24} {row[0]:>8.1f}ms {row[1]:>8.1f}ms {row[2]:>8.1f}ms {row[3]:>8.1f}ms")
    argon, pbkdf2 = results["argon2id"], results["pbkdf2 (Django default)"]
    print(
        f"ratio argon2id / pbkdf2: login p50 {argon[2] / pbkdf2[2]:.2f}x, "
        f"p95 {argon[3] / pbkdf2[3]:.2f}x"
    )


if __name__ == "__main__":
    main()
