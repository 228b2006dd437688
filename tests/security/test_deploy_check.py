"""``manage.py check --deploy`` is clean with production settings: DEBUG off, a real SECRET_KEY, HTTPS on
(TAKEDOWN_HTTPS=1: redirect, HSTS, secure cookies) and a media key. Without them it says what is missing."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "TAKEDOWN_", "SECURE_", "SECRET_KEY", "ALLOWED_HOSTS"))}
    env.update({"DJANGO_SETTINGS_MODULE": "moderation.settings", "TAKEDOWN_VAR_DIR": str(ROOT / "var"), **extra})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = _check({
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TAKEDOWN_HTTPS": "1",
        "TAKEDOWN_MEDIA_KEYS": f"k1:{base64.b64encode(os.urandom(32)).decode()}",
        "ALLOWED_HOSTS": "takedown.example.org",
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_names_what_is_missing_without_https_and_a_media_key() -> None:
    result = _check({"SECRET_KEY": secrets.token_urlsafe(50)})
    assert result.returncode != 0
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016", "takedown.W001"):
        assert check_id in result.stderr, (check_id, result.stderr)


def test_a_malformed_media_key_stops_the_process_with_its_position_named() -> None:
    result = _check({"SECRET_KEY": secrets.token_urlsafe(50), "TAKEDOWN_MEDIA_KEYS": "k1:dG9vLXNob3J0"})
    assert result.returncode != 0
    assert "TAKEDOWN_MEDIA_KEYS entry 1 (k1)" in result.stderr and "32 bytes" in result.stderr
