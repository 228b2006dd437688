from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from moderation.audit import audit_record
from moderation.models import ApiKey, AuditEvent, DemoContentItem
from moderation.services.api_keys import api_key_authenticate
from moderation.services.demo import demo_image_bytes
from tests.conftest import AS_ADMIN, make_image_bytes


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_hash_prints_one_json_line_per_file_and_carries_on_after_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(make_image_bytes(seed=1))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    lines = [json.loads(line) for line in run("hash", "--json", str(good), str(bad), str(missing), str(good))
             .splitlines()]
    assert [line["path"] for line in lines] == [str(good), str(bad), str(missing), str(good)]
    assert set(lines[0]) == {"path", "pdq", "pdq_quality", "phash", "dhash", "md5", "sha256"}
    assert len(lines[0]["pdq"]) == 64 and len(lines[0]["phash"]) == 16 and len(lines[0]["dhash"]) == 16
    assert 0 <= lines[0]["pdq_quality"] <= 100
    assert set(lines[1]) == {"path", "error"} and set(lines[2]) == {"path", "error"}
    assert lines[3] == lines[0]


def test_score_prints_score_signals_and_model_version(tmp_path: Path) -> None:
    ai = tmp_path / "ai.png"
    ai.write_bytes(demo_image_bytes(3)[0])
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(make_image_bytes(seed=3))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"")
    lines = [json.loads(line) for line in run("score", "--json", str(ai), str(plain), str(broken)).splitlines()]
    assert set(lines[0]) == {"path", "score", "signals", "model_version"}
    assert lines[0]["score"] > 0.9 > lines[1]["score"]
    assert {"name", "value", "weight", "detail"} <= set(lines[0]["signals"][0])
    assert "error" in lines[2]


@pytest.mark.django_db
def test_seed_demo_is_idempotent() -> None:
    run("seed_demo")
    counts = (DemoContentItem.objects.count(), AuditEvent.objects.count())
    output = run("seed_demo")
    assert (DemoContentItem.objects.count(), AuditEvent.objects.count()) == counts
    assert counts[0] == 36
    assert "0 items" in output


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_user")
def test_create_api_key_prints_a_working_key_on_its_last_line_and_stores_only_its_hash() -> None:
    key = run("create_api_key", *AS_ADMIN, "--kind", "platform", "--name", "Example").strip().splitlines()[-1]
    row = ApiKey.objects.get()
    assert key not in (row.key_hash, row.prefix) and row.key_hash != key
    assert api_key_authenticate(key, kind="platform") == row
    assert api_key_authenticate(key, kind="partner") is None


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_user")
def test_revoke_api_key_refuses_the_key_at_once_and_is_audited() -> None:
    key = run("create_api_key", *AS_ADMIN, "--kind", "platform", "--name", "Example").strip().splitlines()[-1]
    assert api_key_authenticate(key, kind="platform") is not None  # now in this process's key cache
    prefix = key.split("_")[1]
    output = run("revoke_api_key", *AS_ADMIN, prefix)
    assert f"prefix {prefix}" in output and key not in output
    assert api_key_authenticate(key, kind="platform") is None
    event = AuditEvent.objects.get(action="api_key.revoked")
    assert event.data == {"kind": "platform", "name": "Example", "prefix": prefix}
    with pytest.raises(CommandError, match="revoked already"):
        run("revoke_api_key", *AS_ADMIN, key)  # the whole key works too; only its prefix is read
    with pytest.raises(CommandError, match="No API key has the prefix"):
        run("revoke_api_key", *AS_ADMIN, "ffffffff")


@pytest.mark.django_db
def test_verify_audit_passes_on_an_intact_chain() -> None:
    for n in range(5):
        audit_record(actor="system", action="test.event", object_type="thing", object_id=n, data={"n": n})
    assert "5 events verified" in run("verify_audit")


def _tamper(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE moderation_auditevent DISABLE TRIGGER moderation_auditevent_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE moderation_auditevent ENABLE TRIGGER moderation_auditevent_append_only")


@pytest.mark.django_db(transaction=True)
def test_verify_audit_names_the_first_rewritten_event() -> None:
    events = [audit_record(actor="system", action="test.event", object_type="thing", object_id=n, data={"n": n})
              for n in range(4)]
    _tamper("UPDATE moderation_auditevent SET data = %s WHERE id = %s", ['{"n": 99}', events[2].pk])
    with pytest.raises(CommandError, match=f"event {events[2].pk}"):
        run("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_verify_audit_notices_a_deleted_event() -> None:
    events = [audit_record(actor="system", action="test.event", object_type="thing", object_id=n) for n in range(4)]
    _tamper("DELETE FROM moderation_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match=f"event {events[2].pk}"):
        run("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_to_rewrite_the_audit_log() -> None:
    from django.db import DatabaseError, transaction

    event = audit_record(actor="system", action="test.event", object_type="thing", object_id=1)
    if connection.vendor != "postgresql":
        # SQLite has no trigger: the chain check is the guard there (tested above).
        assert AuditEvent.objects.filter(pk=event.pk).update(actor="mallory") == 1
        return
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor="mallory")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
