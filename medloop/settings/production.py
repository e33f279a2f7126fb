"""Production: everything from the environment; refuses to start with the development key."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SECRET_KEY, env, env_bool

if SECRET_KEY.startswith("insecure-"):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY for production.")
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
SECURE_HSTS_SECONDS = int(env("MEDLOOP_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("MEDLOOP_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("MEDLOOP_HSTS_PRELOAD", True)
