"""Production: everything from the environment; refuses to start with the development key."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import MEDLOOP_PSEUDONYM_KEY, SECRET_KEY, env, env_bool, env_int

# Values people type when a form asks for a secret; each is in every password-cracking list.
WEAK_SECRETS = {
    "changeme", "change-me", "change_me", "secret", "secretkey", "secret-key", "password",
    "django", "medloop", "default", "test", "dev", "development", "production", "insecure",
}  # fmt: skip
MIN_SECRET_LENGTH = 50  # Django's own deployment check (security.W009) asks for 50
MIN_SECRET_DISTINCT = 5


def weak_secret_reason(value: str) -> str | None:
    """Why ``value`` is too weak to sign sessions or key pseudonyms in production (None: fine).

    Django's check --deploy only warns; production refuses to start instead, because a guessed
    key forges sessions and re-identifies patients from their pseudonyms."""
    stripped = value.strip()
    if not stripped:
        return "it is empty"
    if stripped.lower().startswith(("insecure-", "django-insecure-")):
        return "it is the development key"
    if stripped.lower() in WEAK_SECRETS:
        return "it is a well-known placeholder"
    if len(stripped) < MIN_SECRET_LENGTH:
        return f"it has {len(stripped)} characters, fewer than {MIN_SECRET_LENGTH}"
    if len(set(stripped)) < MIN_SECRET_DISTINCT:
        return f"it has fewer than {MIN_SECRET_DISTINCT} distinct characters"
    return None


_HOW = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
if SECRET_KEY.startswith("insecure-"):
    raise ImproperlyConfigured(f"Set DJANGO_SECRET_KEY for production; {_HOW}.")
if reason := weak_secret_reason(SECRET_KEY):
    raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is too weak for production: {reason}; {_HOW}.")
if env("MEDLOOP_PSEUDONYM_KEY") and (reason := weak_secret_reason(MEDLOOP_PSEUDONYM_KEY)):
    raise ImproperlyConfigured(
        f"MEDLOOP_PSEUDONYM_KEY is too weak for production: {reason}; {_HOW}."
    )
if not env("DATABASE_URL"):
    raise ImproperlyConfigured("Set DATABASE_URL (postgres://user:pass@host:5432/medloop).")

DEBUG = False
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_TRUSTED_ORIGINS = [o for o in env("DJANGO_CSRF_TRUSTED_ORIGINS").split(",") if o]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# TLS only: redirect plain HTTP (the proxy forwards X-Forwarded-Proto) and tell browsers to
# use HTTPS for a year (MEDLOOP_HSTS_SECONDS; 0 turns HSTS off while trying a deployment).
# DJANGO_SECURE_COOKIES=false (plain HTTP, e.g. a benchmark over loopback) also means no redirect.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", env_bool("DJANGO_SECURE_COOKIES", True))
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env_int("MEDLOOP_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("MEDLOOP_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("MEDLOOP_HSTS_PRELOAD", True)
