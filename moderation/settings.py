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
from pythonjsonlogger.core import RESERVED_ATTRS

from moderation.env import env_bool, env_float, env_int, env_list, env_networks, env_str, parse_networks

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
    "axes",  # login brute-force lockout (console and admin logins)
    "exchange",
    "django_prometheus",  # HTTP and database metrics on /metrics (docs/operations.md "Metrics")
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole request
    "moderation.observability.request_id.RequestIdMiddleware",  # X-Request-ID, in every log line, task and event
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "moderation.audit_middleware.AuditContextMiddleware",  # audit events get the actor's role and IP
    "moderation.db_unavailable.DatabaseUnavailableMiddleware",  # database down → 503 + Retry-After, not 500
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "moderation.security.headers.SecurityHeadersMiddleware",  # Content-Security-Policy, Permissions-Policy
    "axes.middleware.AxesMiddleware",  # answers a locked-out login
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: counts responses by view and status
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
    # A persistent connection broken by a database restart is replaced at the next request, not reused.
    _db["CONN_HEALTH_CHECKS"] = True
# django-prometheus' subclasses of the same backends count queries, their errors and their seconds (/metrics).
_db["ENGINE"] = _db["ENGINE"].replace("django.db.backends.", "django_prometheus.db.backends.")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out username + address before checking the password
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: this many failed logins for one username from one address lock that pair out for the
# cool-off (OWASP's authentication cheat sheet suggests a lockout after a handful of failures).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # axes' own log lines name the username and address
AXES_CLIENT_IP_CALLABLE = "moderation.security.client.request_client_ip"  # the address rate limits use
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

# --- Security (docs/security.md) -------------------------------------------------------------
# TAKEDOWN_HTTPS=1 behind TLS: redirect to https, HSTS, cookies only over https.
_https = env_bool("TAKEDOWN_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _https)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _https)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Asking browsers to preload HSTS binds every subdomain for months: the operator's decision (set
# SECURE_HSTS_PRELOAD=1), so its reminder (security.W021) is not a failure of `check --deploy`.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
if env_bool("TAKEDOWN_BEHIND_PROXY", False):  # the proxy in front terminates TLS and sets this header
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes from inside the cluster speak plain http
# Media at rest: AES-256-GCM, "key-id:base64-32-bytes" entries, the first encrypts, all decrypt.
# `make run` generates var/media_keys; rotation: docs/security.md and manage.py rotate_media_key.
TAKEDOWN_MEDIA_KEYS = env_list("TAKEDOWN_MEDIA_KEYS", [])
# Lifetime of the signed media links on the case page (a page left open longer needs a reload).
TAKEDOWN_MEDIA_URL_SECONDS = env_int("TAKEDOWN_MEDIA_URL_SECONDS", 300, minimum=10)
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; empty: REMOTE_ADDR only.
# The client's address counts for rate limits, lockouts and a staff request's audit source IP (docs/security.md).
TAKEDOWN_TRUSTED_PROXIES = env_networks("TAKEDOWN_TRUSTED_PROXIES", [])
# Per-address limits on the public endpoints: (requests, seconds). Generous for a person, tight for a script.
TAKEDOWN_RATE_LIMITS = {
    "report": (env_int("TAKEDOWN_RATE_REPORTS_PER_HOUR", 20, minimum=1), 3600),
    "lookup": (env_int("TAKEDOWN_RATE_LOOKUPS_PER_HOUR", 30, minimum=1), 3600),
}
# Rate limits, PIN lockouts and login lockouts are counted here. Several web processes must share one
# cache (Redis), or each counts on its own.
_cache_url = env_str("CACHE_URL") or env_str("REDIS_URL")
if _cache_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
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
CELERY_TASK_ROUTES = {"detection.*": {"queue": "detection"}, "moderation.tasks.score_media": {"queue": "detection"},
                      "moderation.tasks.score_scan": {"queue": "detection"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Time limits keep one hostile file from holding a worker: soft raises inside the task, hard kills it.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180, minimum=1)
# The media tasks' own limits (decode + hash, and scoring), tunable apart from the rest: at the soft limit
# the media is marked "unprocessable" with the reason (moderation/tasks.py), so no item waits for ever.
TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT = env_int("TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT", CELERY_TASK_SOFT_TIME_LIMIT,
                                              minimum=1)
TAKEDOWN_MEDIA_TASK_TIME_LIMIT = env_int("TAKEDOWN_MEDIA_TASK_TIME_LIMIT", CELERY_TASK_TIME_LIMIT, minimum=2)
if TAKEDOWN_MEDIA_TASK_TIME_LIMIT <= TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("TAKEDOWN_MEDIA_TASK_TIME_LIMIT must be above TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT, "
                               "so the task has time to record why it stopped.")
# Worker processes may allocate this many MiB above their size once started (RLIMIT_DATA; 0: no limit):
# media that makes a decoder allocate beyond it is marked unprocessable, not OOM-killed
# (moderation/worker_limits.py). 2048 leaves room for the largest image accepted (64 MP) and the model.
TAKEDOWN_TASK_MEMORY_MB = env_int("TAKEDOWN_TASK_MEMORY_MB", 2048, minimum=0)
# Redis: a task taken by a worker that then died (SIGKILL, OOM, lost machine) goes back to the queue after
# this many seconds. Keep it above CELERY_TASK_TIME_LIMIT so a running task is never handed out twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=1)}
# A send to a broker that is down gives up after about a second (intake then leaves the report to the
# outbox sweeper, services/outbox.py) instead of holding the person's request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25,
                                    "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Reports older than this whose processing has not finished are sent again by the outbox sweeper.
TAKEDOWN_OUTBOX_GRACE_SECONDS = env_int("TAKEDOWN_OUTBOX_GRACE_SECONDS", 120, minimum=0)

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
    # DRF's parsers, with a JSON parser that answers 400 (not 500) to absurdly nested documents.
    "DEFAULT_PARSER_CLASSES": ["moderation.api.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
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
    "platform": env_int("TAKEDOWN_DEADLINE_HOURS_PLATFORM", 48, minimum=1),  # in-app reports (AT Protocol)
    "scanner": env_int("TAKEDOWN_DEADLINE_HOURS_SCANNER", 48, minimum=1),  # cases opened by proactive scanning
}
# Claim lease: a claimed case returns to the queue after this much inactivity.
TAKEDOWN_CLAIM_LEASE_MINUTES = env_int("TAKEDOWN_CLAIM_LEASE_MINUTES", 30, minimum=1)
# Optional cap on media items one moderator may reveal per day (0 = no cap). A wellness setting:
# leads choose it; Coop and the moderator-wellness literature recommend limiting daily exposure.
TAKEDOWN_EXPOSURE_DAILY_CAP = env_int("TAKEDOWN_EXPOSURE_DAILY_CAP", 0, minimum=0)
# PDQ distance within which two reported media count as near-duplicates on the case page, and within which
# a new report's media join an open case holding them (services/joining.py) (the same radius the bank
# matcher uses, from the PDQ paper's recommended 31 of 256 bits).
TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS = env_int("TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS", 31, minimum=0)
# Detection score from which the scan API answers "review" rather than "allow".
TAKEDOWN_SCAN_REVIEW_SCORE = 0.5
# /api/v1/scan scores images on the detection queue (issue 9: hash and match inline, detection asynchronous).
# The upload's bytes wait encrypted in media storage until scored; a scan no worker scored within this many
# seconds is marked unscored and its bytes deleted (beat task scan_sweep). Scan results (hashes, verdict,
# score; never the media) are deleted this many hours after the scan.
TAKEDOWN_SCAN_PENDING_SECONDS = env_int("TAKEDOWN_SCAN_PENDING_SECONDS", 900, minimum=60)
TAKEDOWN_SCAN_RESULT_HOURS = env_int("TAKEDOWN_SCAN_RESULT_HOURS", 24, minimum=1)
# ONNX Runtime intra-op threads of the learned model's session in each process (detection/apps.py; 0: one per
# core). Web processes and prefork workers each run one request or task at a time on shared cores: 1.
TAKEDOWN_DETECTOR_THREADS = env_int("TAKEDOWN_DETECTOR_THREADS", 1, minimum=0)
# How content on the host platform is fetched and removed. "demo" is the built-in demo platform.
TAKEDOWN_PLATFORM = env_str("TAKEDOWN_PLATFORM", "demo")
# The safe fetcher (moderation/platforms/fetch.py), through which every adapter downloads reported content.
# Largest download: 200 MiB holds a few minutes of phone video, and more than any image.
TAKEDOWN_FETCH_MAX_BYTES = env_int("TAKEDOWN_FETCH_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
# Seconds to connect; from sending the request to the answer's headers (and for each read after); for one
# whole try. A failed connection or an answer that does not start in time is retried, a slow body is not.
TAKEDOWN_FETCH_CONNECT_SECONDS = env_int("TAKEDOWN_FETCH_CONNECT_SECONDS", 5, minimum=1)
TAKEDOWN_FETCH_FIRST_BYTE_SECONDS = env_int("TAKEDOWN_FETCH_FIRST_BYTE_SECONDS", 15, minimum=1)
TAKEDOWN_FETCH_TOTAL_SECONDS = env_int("TAKEDOWN_FETCH_TOTAL_SECONDS", 120, minimum=1)
# Tries per fetch, the first included, on 5xx, 408, 429 and connection failures (waits 0.5 s doubling to 5 s).
TAKEDOWN_FETCH_ATTEMPTS = env_int("TAKEDOWN_FETCH_ATTEMPTS", 3, minimum=1)
# Private, loopback or link-local networks the fetcher may connect to anyway (comma-separated CIDRs, e.g. a
# test platform on 127.0.0.0/8). Empty in production: a reported link must never reach the internal network.
TAKEDOWN_FETCH_ALLOW_NETWORKS = parse_networks("TAKEDOWN_FETCH_ALLOW_NETWORKS",
                                               env_list("TAKEDOWN_FETCH_ALLOW_NETWORKS", []))
# Private folder downloads stream to before they are stored encrypted (never served; created 0700).
TAKEDOWN_FETCH_SPOOL_DIR = Path(env_str("TAKEDOWN_FETCH_SPOOL_DIR") or MEDIA_ROOT / "incoming")
# Name of the bank that confirmed takedowns add their hashes to (re-upload blocking).
TAKEDOWN_CONFIRMED_BANK = "confirmed-takedowns"
# --- Matching (hashing.matcher) ---
# A valid API key is trusted by each process for this long without a database lookup (a busy platform
# key would otherwise cost a query per scan); a revoked key is refused everywhere within this time. 0: look
# the key up on every request.
TAKEDOWN_API_KEY_CACHE_SECONDS = env_int("TAKEDOWN_API_KEY_CACHE_SECONDS", 1, minimum=0)
# A matcher refreshes its in-memory index from the bank change log before matching when its last
# refresh is older than this. 1 s keeps the refresh queries off most requests under load while a committed
# bank change still shows within the bound of 2 s; 0: before every match (a few indexed queries).
TAKEDOWN_MATCH_REFRESH_SECONDS = env_int("TAKEDOWN_MATCH_REFRESH_SECONDS", 1, minimum=0)
# /readyz answers 503 when the oldest bank change this process has not applied is older than this (the
# issue's freshness bound: a committed change shows in matcher results within 2 s).
TAKEDOWN_MATCH_MAX_STALENESS_SECONDS = env_int("TAKEDOWN_MATCH_MAX_STALENESS_SECONDS", 2, minimum=1)
if TAKEDOWN_MATCH_REFRESH_SECONDS >= TAKEDOWN_MATCH_MAX_STALENESS_SECONDS:
    raise ImproperlyConfigured("TAKEDOWN_MATCH_REFRESH_SECONDS must be below TAKEDOWN_MATCH_MAX_STALENESS_SECONDS, "
                               "or bank changes would show in matches later than promised.")
# A change id missing below the checkpoint this long was rolled back (no transaction lives longer
# than CELERY_TASK_TIME_LIMIT or a web request); 600 s leaves a wide margin over both.
TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS = env_int("TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS", 600, minimum=1)
# Matcher shards (hashing.shards): 1 = this process holds the whole match index. N > 1 = shard k lives in
# the workers on queue matching.shard-<k> (`make worker-shard SHARD=k`), searched by scatter-gather over
# the Redis broker; a shard that does not answer within the timeout fails the search (no partial answer).
TAKEDOWN_MATCH_SHARDS = env_int("TAKEDOWN_MATCH_SHARDS", 1, minimum=1)
TAKEDOWN_MATCH_SHARD_TIMEOUT_SECONDS = env_int("TAKEDOWN_MATCH_SHARD_TIMEOUT_SECONDS", 10, minimum=1)
# Called on commit with the ids of entries that became active: starts the retroactive sweep.
TAKEDOWN_BANK_ENTRIES_ADDED_HOOK = "moderation.jobs.retroactive_sweep_enqueue"
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
# A Standard Webhooks secret: "whsec_" + base64 of 24-64 random bytes (docs/webhooks.md says how to make one).
TAKEDOWN_WEBHOOK_SECRET = env_str("TAKEDOWN_WEBHOOK_SECRET", "") or ""
# Per POST. Each call makes one attempt; the carry_out_action task retries it (backoff + jitter, 8 retries),
# then the delivery becomes a dead letter (docs/webhooks.md).
TAKEDOWN_WEBHOOK_TIMEOUT_SECONDS = env_int("TAKEDOWN_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# --- The generic "http" platform (TAKEDOWN_PLATFORM=http; docs/platforms.md, docs/platform-api.yaml) ---
# The platform's resolve endpoint; the hosts whose URLs are its content (canonical host first, then aliases);
# a regular expression their paths must match (empty: any path but "/"); the query parameters that identify
# content (all others are dropped); the hosts download URLs may use (empty: the resolver's and location hosts).
TAKEDOWN_HTTP_RESOLVE_URL = env_str("TAKEDOWN_HTTP_RESOLVE_URL", "") or ""
TAKEDOWN_HTTP_LOCATION_HOSTS = env_list("TAKEDOWN_HTTP_LOCATION_HOSTS", [])
TAKEDOWN_HTTP_LOCATION_PATHS = env_str("TAKEDOWN_HTTP_LOCATION_PATHS", "") or ""
TAKEDOWN_HTTP_KEEP_PARAMS = env_list("TAKEDOWN_HTTP_KEEP_PARAMS", [])
TAKEDOWN_HTTP_MEDIA_HOSTS = env_list("TAKEDOWN_HTTP_MEDIA_HOSTS", [])
# How resolve requests are authenticated: "signature" (Standard Webhooks under TAKEDOWN_WEBHOOK_SECRET) or
# "bearer" (Authorization: Bearer TAKEDOWN_HTTP_TOKEN).
TAKEDOWN_HTTP_AUTH = env_str("TAKEDOWN_HTTP_AUTH", "signature") or "signature"
TAKEDOWN_HTTP_TOKEN = env_str("TAKEDOWN_HTTP_TOKEN", "") or ""
# --- AT Protocol (TAKEDOWN_PLATFORM=atproto / TAKEDOWN_ENFORCER=atproto; docs/platforms.md, "AT Protocol") ---
# Where handles are resolved to DIDs (an AppView), and did:plc documents read (the PLC directory).
TAKEDOWN_ATPROTO_APPVIEW_URL = env_str("TAKEDOWN_ATPROTO_APPVIEW_URL", "https://public.api.bsky.app") or ""
TAKEDOWN_ATPROTO_PLC_URL = env_str("TAKEDOWN_ATPROTO_PLC_URL", "https://plc.directory") or ""
# The web app's hosts whose /profile/<handle>/post/<rkey> links are reported (canonical first).
TAKEDOWN_ATPROTO_WEB_HOSTS = env_list("TAKEDOWN_ATPROTO_WEB_HOSTS", ["bsky.app"])
# Empty: media are fetched from whichever PDS the author's DID document names (its address must be public).
# Host patterns (pds.example, *.host.bsky.network) narrow that to the PDSes listed.
TAKEDOWN_ATPROTO_PDS_HOSTS = env_list("TAKEDOWN_ATPROTO_PDS_HOSTS", [])
# The operator's Ozone moderation service: its URL, DID and admin password (Ozone's OZONE_ADMIN_PASSWORD).
TAKEDOWN_ATPROTO_OZONE_URL = env_str("TAKEDOWN_ATPROTO_OZONE_URL", "") or ""
TAKEDOWN_ATPROTO_OZONE_DID = env_str("TAKEDOWN_ATPROTO_OZONE_DID", "") or ""
TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD = env_str("TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD", "") or ""
# Private networks where the operator's own Ozone, AppView or PLC directory may be reached (an internal Ozone):
# only requests to those three services may go there, never the fetches of reported posts and their media.
TAKEDOWN_ATPROTO_SERVICE_NETWORKS = parse_networks("TAKEDOWN_ATPROTO_SERVICE_NETWORKS",
                                                   env_list("TAKEDOWN_ATPROTO_SERVICE_NETWORKS", []))
# The DID Ozone records as the author of Takedown's events (default: the moderation service's own DID).
TAKEDOWN_ATPROTO_MODERATOR_DID = env_str("TAKEDOWN_ATPROTO_MODERATOR_DID", "") or ""
# In-app reports with these reason types (the installed lexicons' NCII and sexual-deepfake reasons, and the older
# catch-all "sexual") become cases; pulled from Ozone every this many seconds when Ozone is configured.
TAKEDOWN_ATPROTO_REPORT_REASONS = env_list("TAKEDOWN_ATPROTO_REPORT_REASONS", [
    "tools.ozone.report.defs#reasonSexualNCII", "tools.ozone.report.defs#reasonSexualDeepfake",
    "com.atproto.moderation.defs#reasonSexual"])
TAKEDOWN_ATPROTO_REPORTS_SECONDS = env_int("TAKEDOWN_ATPROTO_REPORTS_SECONDS", 60, minimum=5)
# --- Proactive scanning: the firehose scanner (manage.py atproto_scan; docs/platforms.md "Proactive scanning") ---
# The repository event stream to scan: a PDS's or a relay's com.atproto.sync.subscribeRepos (wss://host/xrpc/
# com.atproto.sync.subscribeRepos). Empty: the scanner does not start. Images are downloaded from each author's PDS.
TAKEDOWN_ATPROTO_FIREHOSE_URL = env_str("TAKEDOWN_ATPROTO_FIREHOSE_URL", "") or ""
# The share (0 to 1) of automated takedowns whose case stays open for a person to review afterwards. 10 %: enough
# reviews a week to see a bank go wrong early, few enough that automation still saves the moderators' time.
TAKEDOWN_ATPROTO_SCAN_REVIEW_SAMPLE = env_float("TAKEDOWN_ATPROTO_SCAN_REVIEW_SAMPLE", 0.1, minimum=0.0, maximum=1.0)
# The cursor (the seq of the last event fully processed) is saved at most this often, in seconds (0: after every
# event). After a crash the events since are processed again, which opens nothing twice (services/automation.py).
TAKEDOWN_ATPROTO_SCAN_CURSOR_SAVE_SECONDS = env_int("TAKEDOWN_ATPROTO_SCAN_CURSOR_SAVE_SECONDS", 1, minimum=0)
# Reconnecting after the stream failed waits 1 s, doubling up to this many seconds (with jitter).
TAKEDOWN_ATPROTO_SCAN_RECONNECT_MAX_SECONDS = env_int("TAKEDOWN_ATPROTO_SCAN_RECONNECT_MAX_SECONDS", 60, minimum=1)
# An image whose PDS stays unavailable is tried this many rounds (each one the safe fetcher's own tries) before the
# scanner logs it, counts it and goes on; the stream waits meanwhile (backpressure, nothing dropped unseen).
TAKEDOWN_ATPROTO_SCAN_BLOB_ROUNDS = env_int("TAKEDOWN_ATPROTO_SCAN_BLOB_ROUNDS", 5, minimum=1)
# Port on which the scanner process serves its Prometheus metrics (0: none; with PROMETHEUS_MULTIPROC_DIR set they
# are part of /metrics instead).
TAKEDOWN_ATPROTO_SCAN_METRICS_PORT = env_int("TAKEDOWN_ATPROTO_SCAN_METRICS_PORT", 0, minimum=0)
# An item whose platform stayed unavailable through the fetch's retries is fetched again by the beat task
# items_refetch: first after this many seconds, then doubling up to the maximum, until it works.
TAKEDOWN_REFETCH_FIRST_SECONDS = env_int("TAKEDOWN_REFETCH_FIRST_SECONDS", 300, minimum=1)
TAKEDOWN_REFETCH_MAX_SECONDS = env_int("TAKEDOWN_REFETCH_MAX_SECONDS", 3600, minimum=1)
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
# --- Hash exchange with partners (exchange app; docs/exchange.md) ---
# This instance's Ed25519 private key (PKCS#8 PEM) that signs every feed page and pushed batch; partners pin
# its public key (manage.py exchange_key show). `make run` generates one under var/.
TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE = env_str("TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE") or str(
    VAR_DIR / "exchange_signing_key.pem")
# Records per feed page when the partner asks for none, and the most it may ask for.
TAKEDOWN_EXCHANGE_PAGE_SIZE = env_int("TAKEDOWN_EXCHANGE_PAGE_SIZE", 1000, minimum=1)
TAKEDOWN_EXCHANGE_MAX_PAGE_SIZE = env_int("TAKEDOWN_EXCHANGE_MAX_PAGE_SIZE", 10000, minimum=1)
# Rows one pushed batch may hold (one transaction).
TAKEDOWN_EXCHANGE_MAX_BATCH_ROWS = env_int("TAKEDOWN_EXCHANGE_MAX_BATCH_ROWS", 10000, minimum=1)
# Seconds the sync client waits for a remote's answer.
TAKEDOWN_EXCHANGE_TIMEOUT_SECONDS = env_int("TAKEDOWN_EXCHANGE_TIMEOUT_SECONDS", 30, minimum=1)
TAKEDOWN_EXCHANGE_SYNC_SECONDS = env_int("TAKEDOWN_EXCHANGE_SYNC_SECONDS", 300, minimum=10)
# --- StopNCII.org partner API (exchange/stopncii/; docs/exchange.md "StopNCII and ThreatExchange") ---
TAKEDOWN_STOPNCII_BASE_URL = env_str("TAKEDOWN_STOPNCII_BASE_URL", "https://api.stopncii.org/v1") or ""
# Keys StopNCII issues to a partner: one API-gateway subscription key and one function key per endpoint.
TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY = env_str("TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY", "") or ""
TAKEDOWN_STOPNCII_FETCH_HASHES_KEY = env_str("TAKEDOWN_STOPNCII_FETCH_HASHES_KEY", "") or ""
TAKEDOWN_STOPNCII_SUBMIT_HASHES_KEY = env_str("TAKEDOWN_STOPNCII_SUBMIT_HASHES_KEY", "") or ""
TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY = env_str("TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY", "") or ""
# Local bank fetched hashes go to (matches go to review), and the bank whose confirmed hashes we submit.
TAKEDOWN_STOPNCII_BANK = env_str("TAKEDOWN_STOPNCII_BANK", "stopncii") or "stopncii"
TAKEDOWN_STOPNCII_SUBMIT_BANK = env_str("TAKEDOWN_STOPNCII_SUBMIT_BANK", TAKEDOWN_CONFIRMED_BANK) or ""
# The Partner (moderation) standing for StopNCII.org itself, credited as the origin of fetched hashes.
TAKEDOWN_STOPNCII_PARTNER = env_str("TAKEDOWN_STOPNCII_PARTNER", "stopncii") or ""
# Page size, timeout and retries as Meta's reference client uses them (800 records, 60 s, 4 retries from 0.2 s).
TAKEDOWN_STOPNCII_PAGE_SIZE = env_int("TAKEDOWN_STOPNCII_PAGE_SIZE", 800, minimum=1)
TAKEDOWN_STOPNCII_TIMEOUT_SECONDS = env_int("TAKEDOWN_STOPNCII_TIMEOUT_SECONDS", 60, minimum=1)
TAKEDOWN_STOPNCII_ATTEMPTS = env_int("TAKEDOWN_STOPNCII_ATTEMPTS", 5, minimum=1)
TAKEDOWN_STOPNCII_BACKOFF_MS = env_int("TAKEDOWN_STOPNCII_BACKOFF_MS", 200, minimum=0)
# Checkpoints of the fetch / submit / feedback jobs (a small JSON file, replaced atomically).
TAKEDOWN_STOPNCII_STATE_FILE = env_str("TAKEDOWN_STOPNCII_STATE_FILE") or str(VAR_DIR / "stopncii-state.json")
# The scheduler's heartbeat: a beat task that a worker runs every this many seconds writes the time to the
# database; /readyz answers 503 naming the scheduler when it is older than TAKEDOWN_SCHEDULER_STALE_SECONDS
# (or, on a new installation, absent that long after the web process started). Not used without a broker.
TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS = env_int("TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS", 60, minimum=5)
TAKEDOWN_SCHEDULER_STALE_SECONDS = env_int("TAKEDOWN_SCHEDULER_STALE_SECONDS", 3 * TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS,
                                           minimum=1)
if TAKEDOWN_SCHEDULER_STALE_SECONDS <= TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("TAKEDOWN_SCHEDULER_STALE_SECONDS must be above TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS "
                               "(a few intervals), or /readyz would fail between two heartbeats.")
# How often the beat tasks run (seconds).
CELERY_BEAT_SCHEDULE = {
    "deadlines-check": {"task": "moderation.tasks.deadlines_check", "schedule": 300.0},
    "dsa-submit": {"task": "moderation.tasks.dsa_submit", "schedule": 3600.0},
    "media-purge": {"task": "moderation.tasks.media_purge", "schedule": 24 * 3600.0},
    "exchange-sync": {"task": "exchange.tasks.sync_partners", "schedule": float(TAKEDOWN_EXCHANGE_SYNC_SECONDS)},
    "outbox-sweep": {"task": "moderation.tasks.outbox_sweep", "schedule": 60.0},
    "scan-sweep": {"task": "moderation.tasks.scan_sweep", "schedule": 60.0},
    "items-refetch": {"task": "moderation.tasks.items_refetch", "schedule": 60.0},  # "platform unavailable" items
    "scheduler-heartbeat": {"task": "moderation.tasks.scheduler_heartbeat",
                            "schedule": float(TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS),
                            # a heartbeat nobody ran within an interval is dropped: the next one says the same
                            "options": {"expires": float(TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS)}},
}
# In-app AT Protocol reports are pulled from Ozone (and closed there after a decision) once Ozone is configured.
if TAKEDOWN_ATPROTO_OZONE_URL and TAKEDOWN_ATPROTO_REPORT_REASONS:
    CELERY_BEAT_SCHEDULE["atproto-reports"] = {"task": "moderation.tasks.atproto_reports_sync",
                                               "schedule": float(TAKEDOWN_ATPROTO_REPORTS_SECONDS)}
# StopNCII jobs run on the beat only once StopNCII's keys are configured (the base URL has a default).
TAKEDOWN_STOPNCII_FETCH_SECONDS = env_int("TAKEDOWN_STOPNCII_FETCH_SECONDS", 3600, minimum=60)
if TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY and TAKEDOWN_STOPNCII_FETCH_HASHES_KEY:
    CELERY_BEAT_SCHEDULE["stopncii-fetch"] = {"task": "exchange.tasks.stopncii_fetch",
                                              "schedule": float(TAKEDOWN_STOPNCII_FETCH_SECONDS)}
if TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY and TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY:
    CELERY_BEAT_SCHEDULE["stopncii-feedback"] = {"task": "exchange.tasks.stopncii_feedback",
                                                 "schedule": float(TAKEDOWN_STOPNCII_FETCH_SECONDS)}

# --- HMA-compatible API (moderation/hma; docs/hma.md) ---------------------------------------
# Where Meta's Hasher-Matcher-Actioner routes are served: /hma/h/hash, /hma/m/lookup, /hma/c/banks, ... A
# platform wired to HMA changes its base URL to https://<takedown>/hma. "" serves them at the root.
TAKEDOWN_HMA_PREFIX = (env_str("TAKEDOWN_HMA_PREFIX", "hma/") or "").strip("/")
TAKEDOWN_HMA_PREFIX = f"{TAKEDOWN_HMA_PREFIX}/" if TAKEDOWN_HMA_PREFIX else ""
# HMA has no authentication; these routes need a platform key (Authorization: Api-Key <key> or Bearer <key>).
# Callers from these networks (CIDRs, the client address as security/client.py reads it) may match and hash
# without one: a drop-in switch for a platform that cannot send a header yet. Off by default: anyone who can
# reach the server from such a network can then test whether content is banked (docs/hma.md, "Risks").
TAKEDOWN_HMA_ALLOW_NETWORKS = env_networks("TAKEDOWN_HMA_ALLOW_NETWORKS", [])
# Hosts that the routes taking a url= (GET /h/hash, GET /m/lookup, POST /c/bank/<name>/content) may fetch
# from, through the safe fetcher (moderation/platforms/fetch.py). Empty, the default: those calls are refused
# and the platform uploads the file instead; HMA fetches any URL unless its ALLOWED_HOSTNAMES says otherwise.
TAKEDOWN_HMA_FETCH_HOSTS = env_list("TAKEDOWN_HMA_FETCH_HOSTS", [])
# Banks of confirmed NCII: an HMA lookup that matches one counts in takedown_hma_confirmed_matches_total and
# calls TAKEDOWN_HMA_MATCH_HOOK. Default: the bank that reviewed takedowns fill.
TAKEDOWN_HMA_CONFIRMED_BANKS = env_list("TAKEDOWN_HMA_CONFIRMED_BANKS", [TAKEDOWN_CONFIRMED_BANK])
# The policy for such a match: a dotted path called after the answer with one HmaConfirmedMatch (bank, entry
# ids, API key id, route), e.g. to open a case. Empty, the default: counted only. HMA lookups carry no
# location on the platform and no notice, so Takedown opens no case by itself (docs/hma.md, "Cases").
TAKEDOWN_HMA_MATCH_HOOK = env_str("TAKEDOWN_HMA_MATCH_HOOK", "") or ""
CELERY_BEAT_SCHEDULE["hma-reenable"] = {"task": "moderation.tasks.hma_reenable", "schedule": 60.0}
# Delayed takedowns whose time has come (services/delayed_takedowns.py): a minute late at most.
CELERY_BEAT_SCHEDULE["delayed-takedowns"] = {"task": "moderation.tasks.delayed_takedowns_release", "schedule": 60.0}

# --- Metrics (docs/operations.md "Metrics") ----------------------------------------------------
# /metrics answers a scrape carrying "Authorization: Bearer <TAKEDOWN_METRICS_TOKEN>", and/or one from an address
# in TAKEDOWN_METRICS_ALLOW (CIDR networks; the client address as rate limits see it). With both set, both must
# hold; with neither, /metrics answers 404: never open by default.
TAKEDOWN_METRICS_TOKEN = env_str("TAKEDOWN_METRICS_TOKEN", "") or ""
TAKEDOWN_METRICS_ALLOW = env_networks("TAKEDOWN_METRICS_ALLOW", [])

# --- Logging: never log media, PINs, emails or keys -------------------------------------------
# "json": one JSON object a line (time, level, logger, message, request_id), for a log pipeline; "plain": one
# readable line. JSON unless DJANGO_DEBUG is on; `make run` asks for plain.
TAKEDOWN_LOG_FORMAT = (env_str("TAKEDOWN_LOG_FORMAT") or ("plain" if DEBUG else "json")).lower()
if TAKEDOWN_LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"TAKEDOWN_LOG_FORMAT must be json or plain; got {TAKEDOWN_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "moderation.observability.request_id.RequestIdFilter",
                               "missing": None if TAKEDOWN_LOG_FORMAT == "json" else "-"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": ["levelname", "name", "message", "request_id"],
                 "rename_fields": {"levelname": "level", "name": "logger"}, "timestamp": "time",
                 # Django's request log lines carry the request object: its repr holds the query string.
                 "reserved_attrs": [*RESERVED_ATTRS, "request"]},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": TAKEDOWN_LOG_FORMAT,
                             "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # runserver's request lines in the same format as the rest (Django gives them a handler of their own).
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # At DEBUG these two write template contexts (a new case's PIN) and SQL parameters (email
        # addresses); they stay at INFO whatever LOG_LEVEL says (tests/security/test_logs_leak_nothing.py).
        "django.template": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Embedding probe: learning from the moderators' decisions (docs/model-card.md, "Embedding probe") ------
# Nearest confirmed cases in embedding space shown beside the score (case number, decision, distance).
TAKEDOWN_EMBEDDING_NEIGHBOURS = env_int("TAKEDOWN_EMBEDDING_NEIGHBOURS", 3, minimum=0)
# The retraining job runs this often (weekly by default) and trains a candidate probe only when at least
# TAKEDOWN_PROBE_RETRAIN_MIN_NEW cases were confirmed since the last candidate; the candidate stays in shadow
# with its figures on the admin's Detector versions page until a person promotes it.
TAKEDOWN_PROBE_RETRAIN_SECONDS = env_int("TAKEDOWN_PROBE_RETRAIN_SECONDS", 7 * 24 * 3600, minimum=3600)
TAKEDOWN_PROBE_RETRAIN_MIN_NEW = env_int("TAKEDOWN_PROBE_RETRAIN_MIN_NEW", 20, minimum=1)
# Fewer confirmed examples of either class than this and no probe is trained (detection.learned.probe).
TAKEDOWN_PROBE_MIN_PER_CLASS = env_int("TAKEDOWN_PROBE_MIN_PER_CLASS", 10, minimum=2)
# Share of the latest confirmed cases held back to compare the candidate with the promoted probe (percent).
TAKEDOWN_PROBE_HOLD_BACK_PERCENT = env_int("TAKEDOWN_PROBE_HOLD_BACK_PERCENT", 20, minimum=5)
# Where retrained probes are written (one small JSON file each; its sha256 is registered).
TAKEDOWN_PROBE_DIR = env_str("TAKEDOWN_PROBE_DIR") or str(VAR_DIR / "probes")
CELERY_BEAT_SCHEDULE["probe-retrain"] = {"task": "moderation.tasks.probe_retrain",
                                         "schedule": float(TAKEDOWN_PROBE_RETRAIN_SECONDS)}
