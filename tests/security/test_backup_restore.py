"""Backup and restore (docs/operations.md): a pg_dump of a database with cases and audit events, restored into
another database, still passes ``manage.py verify_audit``; a row tampered in the copy makes it fail.

It uses the machine's PostgreSQL (127.0.0.1:5432, user postgres) directly and makes its own two databases,
so it does not depend on DATABASE_URL (marked own_databases: CI runs it in its first pass only). Without that
server it skips, and fails in CI (TAKEDOWN_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.faults.services import ROOT, app_env, missing, need_binary

pytestmark = [pytest.mark.postgres, pytest.mark.own_databases]

SERVER = os.environ.get("TAKEDOWN_BACKUP_TEST_SERVER", "postgres://postgres@127.0.0.1:5432")

# Cases with items, a decision and its removal: every step records audit events.
POPULATE = """
from django.core.management import call_command
call_command("migrate", "--noinput", verbosity=0)
from moderation.services.demo import seed_demo
from moderation.services.intake import Notice, report_submit
from moderation.services.claims import task_claim
from moderation.services.decisions import decision_make
from moderation.roles import MODERATOR, roles_sync
from django.contrib.auth.models import Group, User
seed_demo()
roles_sync()
mo = User.objects.create_user("backup-moderator", password="pw-backup-moderator")
mo.groups.add(Group.objects.get(name=MODERATOR))
reports = [report_submit(notice=Notice(
    reporter_name="Alex Example", reporter_email="alex@example.org", relationship="self",
    statement="An intimate image of me posted without my consent.", good_faith=True,
    signature="Alex Example", adult_confirmed=True, locations=[f"demo://content/{n}"])).report for n in (2, 3)]
task = reports[0].tasks.get()
task_claim(task_id=task.pk, user=mo)
decision_make(task_id=task.pk, user=mo, outcome="takedown", reason="ncii")
"""


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "manage.py", *args, env=app_env(database_url))


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases on the server: the source and the restore target; dropped afterwards."""
    need_binary("pg_dump")
    need_binary("pg_restore")
    try:
        admin = psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL is not reachable at {SERVER} ({exc})")
    names = (f"takedown_backup_src_{os.getpid()}", f"takedown_backup_copy_{os.getpid()}")
    with admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{SERVER}/{names[0]}", f"{SERVER}/{names[1]}"
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_dump_restored_into_another_database_passes_verify_audit_and_tampering_in_the_copy_is_caught(
        databases: tuple[str, str], tmp_path: Path) -> None:
    source, copy = databases
    populated = manage(source, "shell", "-c", POPULATE)  # migrate, then cases through the services
    assert populated.returncode == 0, populated.stderr[-3000:]

    dump = tmp_path / "takedown.dump"
    dumped = run("pg_dump", "--format=custom", "--no-owner", f"--file={dump}", f"--dbname={source}")
    assert dumped.returncode == 0, dumped.stderr
    restored = run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={copy}", str(dump))
    assert restored.returncode == 0, restored.stderr

    with psycopg.connect(source) as src, psycopg.connect(copy) as dst:
        for table in ("moderation_report", "moderation_auditevent", "moderation_decision", "moderation_mediahash"):
            expected = src.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
            assert expected is not None and expected[0] > 0, table
            assert dst.execute(f"SELECT count(*) FROM {table}").fetchone() == expected, table  # noqa: S608
    verified = manage(copy, "verify_audit")
    assert verified.returncode == 0, verified.stderr
    assert "Audit chain intact" in verified.stdout

    # The restored copy keeps the append-only trigger; an owner who disables it can rewrite a row, and
    # verify_audit then names the event.
    with psycopg.connect(copy) as dst:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            dst.execute("UPDATE moderation_auditevent SET actor = 'someone-else' WHERE id = "
                        "(SELECT min(id) FROM moderation_auditevent)")
        dst.rollback()
        dst.execute("ALTER TABLE moderation_auditevent DISABLE TRIGGER USER")
        row = dst.execute("SELECT id FROM moderation_auditevent WHERE action = 'decision.made' "
                          "ORDER BY id LIMIT 1").fetchone()
        assert row is not None
        dst.execute("UPDATE moderation_auditevent SET data = '{\"outcome\": \"keep\"}' WHERE id = %s", row)
        dst.commit()
    tampered = manage(copy, "verify_audit")
    assert tampered.returncode != 0
    assert f"BROKEN at event {row[0]}" in tampered.stderr
