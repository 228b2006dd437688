"""Settings for the test suite: the real settings, with test-only defaults."""

import os
from pathlib import Path

_VAR = Path(__file__).resolve().parent.parent / "var"
os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
# Per test run, so concurrent runs on one machine never wipe each other's files.
os.environ.setdefault("TAKEDOWN_MEDIA_ROOT", str(_VAR / f"test-media-{os.getpid()}"))
# Media is encrypted at rest in tests too (a fixed test-only key); tests of the limits lower these.
os.environ.setdefault("TAKEDOWN_MEDIA_KEYS", "test-1:dGVzdHMtb25seS1tZWRpYS1rZXktMzItYnl0ZXMhISE=")
os.environ.setdefault("TAKEDOWN_RATE_REPORTS_PER_HOUR", "1000000")
os.environ.setdefault("TAKEDOWN_RATE_LOOKUPS_PER_HOUR", "1000000")

from moderation.settings import *  # noqa: E402,F403
from moderation.settings import LOGGING, STATIC_ROOT  # noqa: E402

# Pipelines run in-process; the end-to-end test points Celery at a real broker itself.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
# Tests change a bank and match in the same instant: refresh before every match. The production default (1 s)
# is exercised by tests/moderation/test_scan_async.py with a clock moved forward.
TAKEDOWN_MATCH_REFRESH_SECONDS = 0
# Logins in tests need no key stretching.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Each test run counts rate limits and lockouts in its own memory, even where REDIS_URL is set for other
# reasons: tests clear the cache, and must never flush a Redis that other runs share.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
