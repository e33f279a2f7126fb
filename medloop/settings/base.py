"""Settings shared by every environment. Every secret and URL comes from the environment,
with a safe default for a single machine (see README, "Configuration")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# Everything MedLoop writes (SQLite file, DICOM store, rendered images, file-system broker)
# lives under one directory; on several machines it is shared storage (NFS, CephFS, ...).
VAR_DIR = Path(env("MEDLOOP_VAR_DIR", str(BASE_DIR / "var"))).resolve()
STORAGE_DIR = Path(env("MEDLOOP_STORAGE_DIR", str(VAR_DIR / "storage"))).resolve()
# Saved model versions (weights, config, tokenizer, manifest), one directory per version; shared
# by the web servers (explanations) and the workers (training, scoring).
MODELS_DIR = Path(env("MEDLOOP_MODELS_DIR", str(STORAGE_DIR / "models"))).resolve()

SECRET_KEY = env("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "annotations",
    "active_learning",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "medloop.urls"
WSGI_APPLICATION = "medloop.wsgi.application"
ASGI_APPLICATION = "medloop.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict[str, Any]:
    """Build a Django DATABASES entry from a URL, with the options each backend needs for a
    safe case queue (see annotations.services.queue)."""
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE: every transaction takes SQLite's write lock before its first read, so two
        # annotators can never both read the same case as free (SQLite has no row locks).
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        config["CONN_MAX_AGE"] = int(env("DATABASE_CONN_MAX_AGE", "60"))
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'medloop.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated requests then get 401 with WWW-Authenticate, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "medloop.api_errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MedLoop API",
    "DESCRIPTION": (
        "Human-in-the-loop annotation and active learning for multimodal medical imaging."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"DoubleReadStatusEnum": "annotations.models.DoubleRead.Status"},
}

# --- Celery -----------------------------------------------------------------------------------
# Default: an embedded file-system broker, so one machine needs no broker server. Production:
# CELERY_BROKER_URL=redis://... or amqp://...
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # Seconds between looks at the queue folder (kombu's default, 1 s, makes every step
        # of a retraining cycle wait up to a second).
        "polling_interval": 0.2,
    }
    for _folder in ("queue", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Long retraining tasks must not be redelivered while they still run (see tasks' leases).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "3600")),
        "unacked_restore_interval": int(env("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
        "unacked_restore_throttle": int(env("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
    }
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Training goes to its own queue (route it to a GPU machine's worker), scoring to another.
CELERY_TASK_ROUTES = {
    "active_learning.train_cycle": {"queue": "training"},
    "active_learning.score_chunk": {"queue": "inference"},
    "active_learning.refresh_serving": {"queue": "inference"},
}
CELERY_BEAT_SCHEDULE = {
    "release-expired-leases": {
        "task": "annotations.release_expired_leases",
        "schedule": 60.0,
    },
    "resume-stalled-cycles": {
        "task": "active_learning.resume_stalled_cycles",
        "schedule": 60.0,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- MedLoop ---------------------------------------------------------------------------------
# Retraining cycles: a cycle whose worker sent no heartbeat for this long is resumed (at most
# MEDLOOP_CYCLE_MAX_ATTEMPTS times, then failed); unlabelled cases are scored in chunks of
# MEDLOOP_SCORING_CHUNK cases, one inference task each.
MEDLOOP_CYCLE_STALE_SECONDS = int(env("MEDLOOP_CYCLE_STALE_SECONDS", "600"))
MEDLOOP_CYCLE_MAX_ATTEMPTS = int(env("MEDLOOP_CYCLE_MAX_ATTEMPTS", "2"))
MEDLOOP_SCORING_CHUNK = int(env("MEDLOOP_SCORING_CHUNK", "64"))
# How long a case handed out by the queue stays reserved for its annotator without activity.
MEDLOOP_LEASE_SECONDS = int(env("MEDLOOP_LEASE_SECONDS", "900"))
# Largest single DICOM instance accepted, and largest upload request (413 beyond, refused
# before anything is written: uploads are held in memory, originals never touch the disk).
MEDLOOP_MAX_INSTANCE_BYTES = int(env("MEDLOOP_MAX_INSTANCE_BYTES", str(256 * 1024 * 1024)))
MEDLOOP_MAX_UPLOAD_BYTES = int(env("MEDLOOP_MAX_UPLOAD_BYTES", str(1024 * 1024 * 1024)))
# A COCO label file to import (annotations/services/imports).
MEDLOOP_MAX_LABEL_IMPORT_BYTES = int(env("MEDLOOP_MAX_LABEL_IMPORT_BYTES", str(64 * 1024 * 1024)))
# Zip archives: largest total uncompressed size and largest compression ratio per member.
MEDLOOP_MAX_ARCHIVE_BYTES = int(env("MEDLOOP_MAX_ARCHIVE_BYTES", str(4 * 1024 * 1024 * 1024)))
MEDLOOP_MAX_COMPRESSION_RATIO = int(env("MEDLOOP_MAX_COMPRESSION_RATIO", "200"))
FILE_UPLOAD_HANDLERS = ["annotations.uploads.MemoryOnlyUploadHandler"]
# Key for pseudonyms and UID maps (HMAC); per-project secrets are derived from it.
MEDLOOP_PSEUDONYM_KEY = env("MEDLOOP_PSEUDONYM_KEY", SECRET_KEY)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("MEDLOOP_LOG_LEVEL", "INFO")},
}
