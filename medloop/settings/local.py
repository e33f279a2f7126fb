"""One machine, embedded defaults: SQLite, file-system Celery broker, debug on."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
