"""One machine, embedded defaults: SQLite, file-system Celery broker, debug on."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
# The demo's users log in with printed passwords; lockout only when asked for
# (MEDLOOP_LOGIN_LOCKOUT=1). The second factor is off unless MEDLOOP_REQUIRE_2FA_FOR is set.
AXES_ENABLED = env_bool("MEDLOOP_LOGIN_LOCKOUT", False)
