"""Settings shared by every environment. Every secret and URL comes from the environment,
with a safe default for a single machine (see README, "Configuration")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from medloop.env import env, env_bool, env_float, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent.parent

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
    # Swagger UI's files, served by MedLoop itself (hospital networks may have no internet).
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "annotations",
    "active_learning",
    "frontend",
    "medloop.accounts",
    "medloop.platform",
]

MIDDLEWARE = [
    # The client's address and user agent, for every audit event of the request.
    "medloop.request_client.RequestClientMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "medloop.security.ContentSecurityPolicyMiddleware",
    "medloop.security.RequestBodyLimitMiddleware",
    # Cache-Control: no-store on /api/ responses (clinical data, reports, audit).
    "medloop.cache_control.ApiNoStoreMiddleware",
    # Django's SessionMiddleware, saving an unchanged session at most once a minute
    # (medloop.sessions; the idle logoff still holds, to within that minute, never later).
    "medloop.sessions.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "medloop.accounts.middleware.RequireTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
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
                "frontend.context_processors.ethics_notice",
            ],
        },
    },
]


def database_from_url(url: str) -> dict[str, Any]:
    """Build a Django DATABASES entry from a URL, with the options each backend needs for a
    safe case queue (see annotations.services.queue)."""
    # Persistent connections (per server thread) on both: a new connection per request costs
    # more than the hand-out itself (SQLite: open, WAL and synchronous pragmas; PostgreSQL: a
    # backend process and authentication).
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE: every transaction takes SQLite's write lock before its first read, so two
        # annotators can never both read the same case as free (SQLite has no row locks).
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        # A connection kept across requests is checked before a request uses it, so the first
        # request after a database restart is served, not failed (tests/integration/test_outages).
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'medloop.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2id first (parameters: MEDLOOP_ARGON2_*, sized by bench/login_latency.py); the others
# still verify older hashes, which are rehashed with Argon2 at the next login.
PASSWORD_HASHERS = [
    "medloop.accounts.hashers.SizedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# RFC 9106's second recommended setting (t=3, 64 MiB) with one lane per core of a 2-core web
# server: about 0.2 s per login there.
MEDLOOP_ARGON2_TIME_COST = env_int("MEDLOOP_ARGON2_TIME_COST", 3)
MEDLOOP_ARGON2_MEMORY_KIB = env_int("MEDLOOP_ARGON2_MEMORY_KIB", 65536)
MEDLOOP_ARGON2_PARALLELISM = env_int("MEDLOOP_ARGON2_PARALLELISM", 2)

# django-axes watches every authentication; ModelBackend does the authenticating.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

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
        "medloop.accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON bodies nested past 64 levels are a 400 (medloop.parsers), not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "medloop.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # ?limit= is capped at MEDLOOP_API_MAX_PAGE (default 500; medloop.pagination).
    "DEFAULT_PAGINATION_CLASS": "medloop.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "medloop.api_errors.exception_handler",
    # Per user (by id) and per anonymous client (by address); 429 with Retry-After beyond. The
    # counts live in the default cache: set MEDLOOP_CACHE_URL to share them between processes.
    "DEFAULT_THROTTLE_CLASSES": [
        "medloop.throttling.AnonRateThrottle",
        "medloop.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("MEDLOOP_API_RATE_ANON", "120/min"),
        "user": env("MEDLOOP_API_RATE_USER", "3000/min"),
        "token": env("MEDLOOP_API_RATE_TOKEN", "30/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MedLoop API",
    "DESCRIPTION": (
        "Human-in-the-loop annotation and active learning for multimodal medical imaging."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DoubleReadStatusEnum": "annotations.models.DoubleRead.Status",
        "AnnotationStatusEnum": "annotations.models.Annotation.Status",
        "ConsentStatusEnum": "annotations.models.Consent",
        "ValidationReportStatusEnum": "active_learning.models.ValidationReport.Status",
    },
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
    # Redis redelivers a task not acknowledged within the visibility timeout, even one still
    # running (late acks): a training task that runs longer holds a claim in the database, so a
    # second delivery stops (active_learning.services.cycle_claims.claim). The sweep that
    # redelivers runs every interval x throttle seconds (kombu's defaults: 10 x 10).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
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
    "active_learning.explain_case": {"queue": "inference"},
    "active_learning.pretrain_backbone": {"queue": "training"},
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
    "purge-withdrawn-patients": {
        "task": "annotations.purge_withdrawn_patients",
        "schedule": 3600.0,
    },
    "pretrain-backbones-when-due": {
        "task": "active_learning.schedule_pretraining",
        "schedule": 600.0,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- MedLoop ---------------------------------------------------------------------------------
# Retraining cycles: a cycle whose worker sent no heartbeat for this long is resumed (at most
# MEDLOOP_CYCLE_MAX_ATTEMPTS times, then failed); unlabelled cases are scored in chunks of
# MEDLOOP_SCORING_CHUNK cases, one inference task each.
MEDLOOP_CYCLE_STALE_SECONDS = env_int("MEDLOOP_CYCLE_STALE_SECONDS", 600)
MEDLOOP_CYCLE_MAX_ATTEMPTS = env_int("MEDLOOP_CYCLE_MAX_ATTEMPTS", 2)
MEDLOOP_SCORING_CHUNK = env_int("MEDLOOP_SCORING_CHUNK", 64)
# Grad-CAM of a model that reads volumes (the CT detector: tens of seconds and gigabytes per
# series) is computed by the task active_learning.explain_case (inference queue), never in a
# request: a request for one not computed yet is answered 202 and queues it once; one queued
# MEDLOOP_EXPLANATION_PENDING_SECONDS ago and not done (its task lost), or failed that long
# ago, is queued again. Scoring a case queues the explanations of its
# MEDLOOP_EXPLAIN_ON_SCORING top suggested findings (one task each; 0: none), so the overlay
# is usually waiting when the case is opened.
MEDLOOP_EXPLANATION_PENDING_SECONDS = env_int("MEDLOOP_EXPLANATION_PENDING_SECONDS", 900)
MEDLOOP_EXPLAIN_ON_SCORING = env_int("MEDLOOP_EXPLAIN_ON_SCORING", 1)
# Self-supervised pretraining of the image backbone on a project's unlabelled images (training
# queue): first when the project holds MEDLOOP_PRETRAIN_MIN_IMAGES images (first image of each
# non-validation case), again each time the pool has grown MEDLOOP_PRETRAIN_GROWTH times.
# MEDLOOP_PRETRAIN_STEPS steps of MEDLOOP_PRETRAIN_BATCH images, stopped after
# MEDLOOP_PRETRAIN_MAX_SECONDS (0: no limit), views of MEDLOOP_PRETRAIN_IMAGE_SIZE px (0: the
# model's input size), at most MEDLOOP_PRETRAIN_MAX_IMAGES images held; a run whose worker
# vanished is given up after MEDLOOP_PRETRAIN_STALE_SECONDS.
MEDLOOP_PRETRAIN_MIN_IMAGES = env_int("MEDLOOP_PRETRAIN_MIN_IMAGES", 200)
MEDLOOP_PRETRAIN_GROWTH = env_float("MEDLOOP_PRETRAIN_GROWTH", 2.0)
MEDLOOP_PRETRAIN_STEPS = env_int("MEDLOOP_PRETRAIN_STEPS", 1000)
MEDLOOP_PRETRAIN_BATCH = env_int("MEDLOOP_PRETRAIN_BATCH", 32)
MEDLOOP_PRETRAIN_MAX_SECONDS = env_int("MEDLOOP_PRETRAIN_MAX_SECONDS", 1800)
MEDLOOP_PRETRAIN_IMAGE_SIZE = env_int("MEDLOOP_PRETRAIN_IMAGE_SIZE", 0)
MEDLOOP_PRETRAIN_MAX_IMAGES = env_int("MEDLOOP_PRETRAIN_MAX_IMAGES", 4000)
MEDLOOP_PRETRAIN_STALE_SECONDS = env_int("MEDLOOP_PRETRAIN_STALE_SECONDS", 7200)
# Largest single DICOM instance accepted, and largest upload request (413 beyond, refused
# before anything is written: uploads are held in memory, originals never touch the disk).
MEDLOOP_MAX_INSTANCE_BYTES = env_int("MEDLOOP_MAX_INSTANCE_BYTES", 256 * 1024 * 1024)
MEDLOOP_MAX_UPLOAD_BYTES = env_int("MEDLOOP_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
# A COCO label file to import (annotations/services/imports).
MEDLOOP_MAX_LABEL_IMPORT_BYTES = env_int("MEDLOOP_MAX_LABEL_IMPORT_BYTES", 64 * 1024 * 1024)
# Zip archives: largest total uncompressed size, largest compression ratio (per member, any
# size, and for the whole archive) and most members, all checked before decompressing.
MEDLOOP_MAX_ARCHIVE_BYTES = env_int("MEDLOOP_MAX_ARCHIVE_BYTES", 4 * 1024 * 1024 * 1024)
MEDLOOP_MAX_COMPRESSION_RATIO = env_int("MEDLOOP_MAX_COMPRESSION_RATIO", 200)
MEDLOOP_MAX_ARCHIVE_MEMBERS = env_int("MEDLOOP_MAX_ARCHIVE_MEMBERS", 10000)
# Rendered PNGs (STORAGE_DIR/renders): at most this many bytes, least recently used evicted.
MEDLOOP_RENDER_CACHE_MAX_BYTES = env_int("MEDLOOP_RENDER_CACHE_MAX_BYTES", 512 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = ["annotations.uploads.MemoryOnlyUploadHandler"]
# Key for pseudonyms and UID maps (HMAC); per-project secrets are derived from it.
MEDLOOP_PSEUDONYM_KEY = env("MEDLOOP_PSEUDONYM_KEY", SECRET_KEY)

# --- Security (README, "Security") ------------------------------------------------------------
# A shared cache (Redis) for API throttling counts; each process counts alone without one.
if env("MEDLOOP_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env("MEDLOOP_CACHE_URL"),
        }
    }
# HIPAA automatic logoff: a browser session ends after this many idle seconds; every request
# moves the expiry on, and the session ends with the browser.
SESSION_COOKIE_AGE = env_int("MEDLOOP_SESSION_IDLE_SECONDS", 900)
# API tokens (scripts, the bench) expire after this many days (0: never).
MEDLOOP_TOKEN_MAX_AGE_DAYS = env_int("MEDLOOP_TOKEN_MAX_AGE_DAYS", 30)
SESSION_SAVE_EVERY_REQUEST = True
# ... but an unchanged session saved less than this many seconds ago is not written again: its
# idle expiry then falls up to this much earlier than SESSION_COOKIE_AGE after the last request.
MEDLOOP_SESSION_REFRESH_SECONDS = env_int("MEDLOOP_SESSION_REFRESH_SECONDS", 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Response headers (SecurityMiddleware, XFrameOptionsMiddleware, medloop.security).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The workspace's codecs compile WebAssembly ('wasm-unsafe-eval'); its decoders run in workers.
# An empty MEDLOOP_CONTENT_SECURITY_POLICY sends no header.
MEDLOOP_CONTENT_SECURITY_POLICY = env(
    "MEDLOOP_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'",
)
# Request bodies: JSON and form bodies over this are refused with 413 before they are read
# (file uploads have their own limit, MEDLOOP_MAX_UPLOAD_BYTES); files per multipart request.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MEDLOOP_MAX_BODY_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MEDLOOP_MAX_UPLOAD_FILES", 1000)
# Lockout after repeated failed logins (django-axes), per username and client address.
AXES_ENABLED = env_bool("MEDLOOP_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("MEDLOOP_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("MEDLOOP_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Failures during a lockout do not push its end further out.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "medloop.accounts.lockout.lockout_response"
# DICOMweb pulls: a PACS URL whose host resolves to a loopback or link-local address is refused
# unless it lies in one of these networks (comma-separated; e.g. 127.0.0.0/8,::1/128 for an
# Orthanc on the same machine). Default: none.
MEDLOOP_PACS_ALLOWED_NETWORKS = env_list("MEDLOOP_PACS_ALLOWED_NETWORKS", "")
# The most items one API page returns (?limit= beyond it is clamped to it).
MEDLOOP_API_MAX_PAGE = env_int("MEDLOOP_API_MAX_PAGE", 500)
# Reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated;
# default none): API throttling keys anonymous clients by REMOTE_ADDR unless it is one of these.
MEDLOOP_TRUSTED_PROXIES = env_list("MEDLOOP_TRUSTED_PROXIES", "")
# Behind a proxy that sets X-Forwarded-For, the number of proxies in front of Django.
AXES_IPWARE_PROXY_COUNT = env_int("MEDLOOP_PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
# Second factor (TOTP, django-otp): users holding any of these project roles (superusers hold
# them all) must set up and use an authenticator app; e.g. "lead,admin". Empty: optional.
MEDLOOP_REQUIRE_2FA_FOR = env_list("MEDLOOP_REQUIRE_2FA_FOR", "")
OTP_TOTP_ISSUER = env("MEDLOOP_OTP_ISSUER", "MedLoop")
# The audit trail is kept at least this long (prune_audit_events refuses less): six years.
# Ethics review (issue 17): a new project needs a current ethics approval before ingest,
# annotation and training (annotations.services.ethics); leads are warned this many days before
# the approval expires.
MEDLOOP_REQUIRE_ETHICS_APPROVAL = env_bool("MEDLOOP_REQUIRE_ETHICS_APPROVAL", True)
MEDLOOP_ETHICS_WARNING_DAYS = env_int("MEDLOOP_ETHICS_WARNING_DAYS", 30)
MEDLOOP_MAX_ETHICS_DOCUMENT_BYTES = env_int("MEDLOOP_MAX_ETHICS_DOCUMENT_BYTES", 20 * 1024 * 1024)
# A withdrawn patient's stored files and clinical text are deleted this many days after the
# withdrawal (0: at once) by the beat task annotations.purge_withdrawn_patients.
MEDLOOP_WITHDRAWAL_RETENTION_DAYS = env_int("MEDLOOP_WITHDRAWAL_RETENTION_DAYS", 30)
MEDLOOP_AUDIT_RETENTION_DAYS = env_int("MEDLOOP_AUDIT_RETENTION_DAYS", 6 * 366)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("MEDLOOP_LOG_LEVEL", "INFO")},
}
