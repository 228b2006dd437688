"""Django settings for Takedown.

Nothing set → an embedded instance: SQLite, Celery tasks run eagerly in-process, media in a private
folder under ``var/``. Production sets ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL``
(Redis / RabbitMQ). See docs/configuration.md for every variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from moderation.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TAKEDOWN_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)
_secret = env_str("SECRET_KEY")
if not _secret:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random string, "
            "or set DJANGO_DEBUG=1 for local development."
        )
    _secret = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - only with DEBUG on
SECRET_KEY: str = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000") or "http://127.0.0.1:8000"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "hashing",
    "detection",
    "moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "moderation.audit_middleware.AuditContextMiddleware",  # audit events get the actor's role and IP
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "moderation.urls"
WSGI_APPLICATION = "moderation.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL cannot be parsed: {exc}") from exc
    if _db.get("ENGINE") not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured("DATABASE_URL must be postgres://... or sqlite:///...")
else:
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "takedown.sqlite3")}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # A file-based test database lets a real Celery worker process share it in end-to-end tests.
    # One file per test run (by process id), so two runs on one machine never share it.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-takedown-{os.getpid()}.sqlite3")}
    # IMMEDIATE transactions take the write lock up front, so a web process and a worker never
    # deadlock upgrading read locks; the timeout waits out the other writer.
    _db["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
else:
    # One test database per test run, so concurrent runs on one server never drop each other's.
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:queue"
LOGOUT_REDIRECT_URL = "home"

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = True
# Media is private: never under STATIC_ROOT, never served by URL; the console streams it to
# authorised moderators only.
MEDIA_ROOT = Path(env_str("TAKEDOWN_MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": "/private-media-not-served/"}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Largest upload accepted by the report and scan APIs. The decoder has its own pixel limit.
TAKEDOWN_MAX_UPLOAD_BYTES = env_int("TAKEDOWN_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = TAKEDOWN_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Celery ---------------------------------------------------------------------------------
_broker = env_str("CELERY_BROKER_URL") or ""
# No broker configured → run tasks in-process, so `make run` needs no services. Celery still
# builds a producer in eager mode; the in-memory transport keeps it off the network.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not _broker)
CELERY_BROKER_URL = _broker or "memory://"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"detection.*": {"queue": "detection"}, "moderation.tasks.score_media": {"queue": "detection"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Time limits keep one hostile file from holding a worker: soft raises inside the task, hard kills it.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180, minimum=1)

# --- Email ----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "takedown@localhost")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "moderation.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Takedown API",
    "DESCRIPTION": "Reports, scanning and the review queue of a Takedown instance.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Takedown policy ------------------------------------------------------------------------
# Hours from a complete notice to the removal deadline, per source. TAKE IT DOWN Act and the UK
# Online Safety Act s.10(3A): 48 h; Australia's eSafety removal notices: 24 h (LEGAL.md).
TAKEDOWN_DEADLINE_HOURS = {
    "web": env_int("TAKEDOWN_DEADLINE_HOURS_WEB", 48, minimum=1),
    "api": env_int("TAKEDOWN_DEADLINE_HOURS_API", 48, minimum=1),
    "trusted_flagger": env_int("TAKEDOWN_DEADLINE_HOURS_TRUSTED_FLAGGER", 48, minimum=1),
    "esafety": env_int("TAKEDOWN_DEADLINE_HOURS_ESAFETY", 24, minimum=1),
}
# Claim lease: a claimed case returns to the queue after this much inactivity.
TAKEDOWN_CLAIM_LEASE_MINUTES = env_int("TAKEDOWN_CLAIM_LEASE_MINUTES", 30, minimum=1)
# Optional cap on media items one moderator may reveal per day (0 = no cap). A wellness setting:
# leads choose it; Coop and the moderator-wellness literature recommend limiting daily exposure.
TAKEDOWN_EXPOSURE_DAILY_CAP = env_int("TAKEDOWN_EXPOSURE_DAILY_CAP", 0, minimum=0)
# PDQ distance within which two reported media count as near-duplicates on the case page (the
# same radius the bank matcher uses, from the PDQ paper's recommended 31 of 256 bits).
TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS = env_int("TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS", 31, minimum=0)
# Detection score from which the scan API answers "review" rather than "allow".
TAKEDOWN_SCAN_REVIEW_SCORE = 0.5
# How content on the host platform is fetched and removed. "demo" is the built-in demo platform.
TAKEDOWN_PLATFORM = env_str("TAKEDOWN_PLATFORM", "demo")
# Name of the bank that confirmed takedowns add their hashes to (re-upload blocking).
TAKEDOWN_CONFIRMED_BANK = "confirmed-takedowns"
# --- Matching (hashing.matcher) ---
# A matcher refreshes its in-memory index from the bank change log before matching when its last
# refresh is older than this. 0: before every match (two indexed queries), so a committed bank change
# is seen by the next match; the bound is 2 s.
TAKEDOWN_MATCH_REFRESH_SECONDS = env_int("TAKEDOWN_MATCH_REFRESH_SECONDS", 0, minimum=0)
# /readyz answers 503 when the oldest bank change this process has not applied is older than this (the
# issue's freshness bound: a committed change shows in matcher results within 2 s).
TAKEDOWN_MATCH_MAX_STALENESS_SECONDS = env_int("TAKEDOWN_MATCH_MAX_STALENESS_SECONDS", 2, minimum=1)
# A change id missing below the checkpoint this long was rolled back (no transaction lives longer
# than CELERY_TASK_TIME_LIMIT or a web request); 600 s leaves a wide margin over both.
TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS = env_int("TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS", 600, minimum=1)
# Called on commit with the ids of entries that became active: starts the retroactive sweep.
TAKEDOWN_BANK_ENTRIES_ADDED_HOOK = "moderation.tasks.enqueue_retroactive_sweep"
# Existing media hashes checked per sweep batch (one query and one index search each); a task runs
# this many batches before it re-enqueues itself, so no task nears the Celery time limit.
TAKEDOWN_SWEEP_BATCH_ROWS = env_int("TAKEDOWN_SWEEP_BATCH_ROWS", 5000, minimum=1)
TAKEDOWN_SWEEP_BATCHES_PER_TASK = env_int("TAKEDOWN_SWEEP_BATCHES_PER_TASK", 20, minimum=1)
# Fail, rather than skip, tests that need Redis / Chromium when they are missing (CI sets this).
TAKEDOWN_REQUIRE_SERVICES = env_bool("TAKEDOWN_REQUIRE_SERVICES", False)

# --- Legal workflow (issue 7; LEGAL.md) ------------------------------------------------------
# Which enforcer carries out decisions: the platform's own ("demo") or "webhook" (signed JSON POSTs).
TAKEDOWN_ENFORCER = env_str("TAKEDOWN_ENFORCER", TAKEDOWN_PLATFORM) or "demo"
TAKEDOWN_WEBHOOK_URL = env_str("TAKEDOWN_WEBHOOK_URL", "") or ""
TAKEDOWN_WEBHOOK_SECRET = env_str("TAKEDOWN_WEBHOOK_SECRET", "") or ""
TAKEDOWN_WEBHOOK_TIMEOUT_SECONDS = env_int("TAKEDOWN_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Attempts per delivery before it becomes a dead letter; waits double from the base (1 s, 2 s, 4 s ...).
TAKEDOWN_WEBHOOK_ATTEMPTS = env_int("TAKEDOWN_WEBHOOK_ATTEMPTS", 4, minimum=1)
TAKEDOWN_WEBHOOK_BACKOFF_MS = env_int("TAKEDOWN_WEBHOOK_BACKOFF_MS", 1000, minimum=0)
# PIN lookups (web status form and GET /api/v1/reports/<case>): this many failures per case number or
# per client address within the window locks lookups out for the lockout time.
TAKEDOWN_PIN_MAX_FAILURES = env_int("TAKEDOWN_PIN_MAX_FAILURES", 5, minimum=1)
TAKEDOWN_PIN_WINDOW_SECONDS = env_int("TAKEDOWN_PIN_WINDOW_SECONDS", 15 * 60, minimum=1)
TAKEDOWN_PIN_LOCKOUT_SECONDS = env_int("TAKEDOWN_PIN_LOCKOUT_SECONDS", 15 * 60, minimum=1)
# Deadline reminders at these fractions of the time allowed (issue 7), escalation at 100 %.
TAKEDOWN_DEADLINE_REMINDERS = (0.5, 0.8)
# Who gets deadline reminders and escalations (comma-separated emails).
TAKEDOWN_COMPLIANCE_EMAILS = env_list("TAKEDOWN_COMPLIANCE_EMAILS", [])
# DSA Art. 20(1): complaints open for at least six months after the decision.
TAKEDOWN_APPEAL_WINDOW_DAYS = env_int("TAKEDOWN_APPEAL_WINDOW_DAYS", 183, minimum=183)
# Art. 17(3)(a): where and for how long a removal applies.
TAKEDOWN_RESTRICTION_TERRITORY = env_str("TAKEDOWN_RESTRICTION_TERRITORY", "worldwide") or "worldwide"
# Art. 21: out-of-court dispute settlement bodies named in decision notices.
TAKEDOWN_ODS_BODIES_URL = env_str(
    "TAKEDOWN_ODS_BODIES_URL",
    "https://digital-strategy.ec.europa.eu/en/policies/dsa-out-of-court-dispute-settlement") or ""
# Where the host platform's terms say NCII is not allowed (Art. 17(3)(e) contractual ground).
TAKEDOWN_TERMS_CLAUSE = env_str("TAKEDOWN_TERMS_CLAUSE", "Terms of service: intimate imagery shared without "
                                "consent, including AI-made or altered imagery, is not allowed.") or ""
# DSA Transparency Database (Art. 24(5)); empty endpoint = statements are kept but not submitted.
TAKEDOWN_DSA_ENDPOINT = env_str("TAKEDOWN_DSA_ENDPOINT", "") or ""
TAKEDOWN_DSA_TOKEN = env_str("TAKEDOWN_DSA_TOKEN", "") or ""
TAKEDOWN_DSA_PUID_PREFIX = env_str("TAKEDOWN_DSA_PUID_PREFIX", "takedown") or "takedown"
TAKEDOWN_DSA_BATCH_SIZE = 100  # the database's batch endpoint takes at most 100 statements (API v2)
# Retention: media files of a closed case are deleted this many days after it closes; hashes and
# the audit log are kept.
TAKEDOWN_MEDIA_RETENTION_DAYS = env_int("TAKEDOWN_MEDIA_RETENTION_DAYS", 30, minimum=0)
# Bank holding hashes people computed in their own browser, tied to their case.
TAKEDOWN_VICTIM_BANK = "victim-submitted"
# How often the beat tasks run (seconds).
CELERY_BEAT_SCHEDULE = {
    "deadlines-check": {"task": "moderation.tasks.deadlines_check", "schedule": 300.0},
    "dsa-submit": {"task": "moderation.tasks.dsa_submit", "schedule": 3600.0},
    "media-purge": {"task": "moderation.tasks.media_purge", "schedule": 24 * 3600.0},
}

# --- Logging: never log media, PINs, emails or keys -------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
