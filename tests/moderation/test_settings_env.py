from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from moderation.env import env_bool, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_reads_the_usual_spellings_and_refuses_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "Yes")
    assert env_bool("X_FLAG") is True
    monkeypatch.setenv("X_FLAG", "off")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")


def test_env_int_refuses_text_and_values_below_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_NUM", "12")
    assert env_int("X_NUM", 1) == 12
    monkeypatch.setenv("X_NUM", "twelve")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("X_NUM", 5, minimum=1)


def test_secrets_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_str("X_SECRET") == "s3cret"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_str("X_SECRET")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST", []) == ["a", "b", "c"]


def _load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"SECRET_KEY", "DJANGO_DEBUG", "DATABASE_URL", "CELERY_BROKER_URL"}}
    clean.update(env)
    code = ("import django, json; from django.conf import settings; django.setup(); "
            "print(json.dumps([settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER, "
            "settings.DEBUG]))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean,
                          "DJANGO_SETTINGS_MODULE": "moderation.settings"}, capture_output=True, text=True,
                          timeout=60)


def test_nothing_set_but_a_key_gives_sqlite_eager_celery_and_debug_off(tmp_path: Path) -> None:
    result = _load_settings({"SECRET_KEY": "k" * 50, "TAKEDOWN_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '["django_prometheus.db.backends.sqlite3", true, false]'  # counted SQLite


def test_postgres_and_redis_urls_switch_to_real_services(tmp_path: Path) -> None:
    result = _load_settings({"SECRET_KEY": "k" * 50, "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
                             "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '["django_prometheus.db.backends.postgresql", false, false]'


def test_debug_off_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    result = _load_settings({"TAKEDOWN_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_bad_database_url_refuses_to_start(tmp_path: Path) -> None:
    result = _load_settings({"SECRET_KEY": "k" * 50, "DATABASE_URL": "mysql://nope/x"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
