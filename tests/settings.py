"""Settings for the test suite: the real settings, with test-only defaults."""

import os
from pathlib import Path

_VAR = Path(__file__).resolve().parent.parent / "var"
os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
# Per test run, so concurrent runs on one machine never wipe each other's files.
os.environ.setdefault("TAKEDOWN_MEDIA_ROOT", str(_VAR / f"test-media-{os.getpid()}"))

from moderation.settings import *  # noqa: E402,F403
from moderation.settings import LOGGING, STATIC_ROOT  # noqa: E402

# Pipelines run in-process; the end-to-end test points Celery at a real broker itself.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
# Logins in tests need no key stretching.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
