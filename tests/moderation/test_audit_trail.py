"""The audit trail's new fields (role, source IP, reason, before/after), their tamper evidence, and the viewer."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from moderation.audit import GENESIS_HASH, audit_record, audit_verify, event_hash
from moderation.models import AuditEvent
from moderation.observability.request_id import request_id_bound
from moderation.roles import MODERATOR, SENIOR
from moderation.services import claims
from tests.moderation.console_helpers import make_case, user_with_role


def _old_encoding_hash(event: AuditEvent) -> str:
    """The foundation's encoding, written out: events from before the new fields must still verify."""
    payload = json.dumps({"prev": event.prev_hash, "created_at": event.created_at.astimezone(UTC).isoformat(),
                          "actor": event.actor, "action": event.action, "object_type": event.object_type,
                          "object_id": event.object_id, "data": event.data},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _tamper(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE moderation_auditevent DISABLE TRIGGER moderation_auditevent_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE moderation_auditevent ENABLE TRIGGER moderation_auditevent_append_only")


@pytest.mark.django_db
def test_events_without_the_new_fields_hash_exactly_as_the_foundation_encoded_them() -> None:
    event = audit_record(actor="system", action="test.event", object_type="thing", object_id=1, data={"n": 1})
    assert event.prev_hash == GENESIS_HASH
    assert event.hash == _old_encoding_hash(event)
    assert audit_verify().ok


@pytest.mark.django_db
def test_existing_callers_still_work_and_new_keyword_arguments_are_stored() -> None:
    event = audit_record(actor="user:7", action="test.event", object_type="thing", object_id=1,
                         role="moderator", source_ip="192.0.2.4", reason="ncii",
                         before={"state": "open"}, after={"state": "decided"})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.role, stored.source_ip, stored.reason) == ("moderator", "192.0.2.4", "ncii")
    assert stored.before == {"state": "open"} and stored.after == {"state": "decided"}
    assert stored.hash != _old_encoding_hash(stored)  # the new fields are covered by the hash
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("column", "value"), [
    ("role", "admin"), ("source_ip", "198.51.100.9"), ("reason", "not_intimate"), ("after", '{"state": "open"}'),
    ("before", None), ("request_id", "forged-request-0001"),
])
def test_rewriting_any_new_field_is_caught_by_verify_audit(column: str, value: Any) -> None:
    audit_record(actor="system", action="test.event", object_type="thing", object_id=0)
    target = audit_record(actor="user:1", action="test.event", object_type="thing", object_id=1, role="moderator",
                          source_ip="192.0.2.4", reason="ncii", before={"state": "open"},
                          after={"state": "decided"})
    audit_record(actor="system", action="test.event", object_type="thing", object_id=2)
    _tamper(f"UPDATE moderation_auditevent SET {column} = %s WHERE id = %s", [value, target.pk])  # noqa: S608
    with pytest.raises(CommandError, match=f"event {target.pk}"):
        call_command("verify_audit", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_adding_a_role_to_an_old_style_event_is_caught() -> None:
    target = audit_record(actor="system", action="test.event", object_type="thing", object_id=1)
    _tamper("UPDATE moderation_auditevent SET role = %s WHERE id = %s", ["admin", target.pk])
    result = audit_verify()
    assert not result.ok and result.first_broken_id == target.pk


@pytest.mark.django_db
def test_a_console_decision_records_actor_role_source_ip_reason_and_before_after(client: Client) -> None:
    user = user_with_role("mo", MODERATOR)
    task = make_case()
    client.force_login(user)
    client.post(f"/console/case/{task.pk}/claim", REMOTE_ADDR="203.0.113.5")
    client.post(f"/console/case/{task.pk}/decide", {"decision": "no_violation", "reason": "not_intimate"},
                REMOTE_ADDR="203.0.113.5")
    event = AuditEvent.objects.get(action="decision.made")
    assert event.actor == f"user:{user.pk}" and event.role == "moderator"
    assert event.source_ip == "203.0.113.5" and event.reason == "not_intimate"
    assert event.before["task_state"] == "claimed" and event.after["task_state"] == "decided"
    assert event.after["report_status"] == "no_violation"
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_api_decision_by_token_records_the_role_and_ip_too() -> None:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = user_with_role("mo", MODERATOR)
    task = make_case()
    api = APIClient(REMOTE_ADDR="203.0.113.7")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api.post(f"/api/v1/queue/{task.pk}/claim").status_code == 200
    event = AuditEvent.objects.get(action="task.claimed")
    assert (event.role, event.source_ip) == ("moderator", "203.0.113.7")


@pytest.mark.django_db
def test_system_and_reporter_events_carry_no_role_and_no_ip(client: Client) -> None:
    audit_record(actor="system", action="test.event", object_type="thing", object_id=1)
    anonymous = audit_record(actor="anonymous", action="report.received", object_type="report", object_id=1)
    assert AuditEvent.objects.get(pk=anonymous.pk).source_ip is None
    assert set(AuditEvent.objects.values_list("role", flat=True)) == {""}


@pytest.fixture
def lead_client(client: Client) -> tuple[Client, User]:
    user = user_with_role("lead", SENIOR)
    client.force_login(user)
    return client, user


@pytest.mark.django_db
def test_the_audit_viewer_filters_by_actor_action_and_object(lead_client: tuple[Client, User]) -> None:
    client, _ = lead_client
    mo = user_with_role("mo", MODERATOR)
    task = make_case()
    claims.task_claim(task_id=task.pk, user=mo)
    audit_record(actor="system", action="other.thing", object_type="thing", object_id=5)
    html = client.get(f"/console/audit?actor=user:{mo.pk}").content.decode()
    assert "task.claimed" in html and "other.thing" not in html
    html = client.get("/console/audit?action=other.").content.decode()
    assert "other.thing" in html and "task.claimed" not in html
    html = client.get(f"/console/audit?object_type=task&object_id={task.pk}").content.decode()
    assert html.count('class="audit-event"') == 1


@pytest.mark.django_db
def test_the_csv_export_has_every_selected_event_with_its_hashes(lead_client: tuple[Client, User]) -> None:
    client, lead = lead_client
    for n in range(3):
        with request_id_bound(f"csv-request-{n:04d}"):
            audit_record(actor="system", action="test.event", object_type="thing", object_id=n, reason=f"r{n}")
    response = client.get("/console/audit.csv?action=test.")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "private, no-store"
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["reason"] for r in table] == ["r0", "r1", "r2"]
    for row in table:
        event = AuditEvent.objects.get(pk=int(row["id"]))
        assert row["request_id"] == event.request_id == f"csv-request-{row['object_id'].zfill(4)}"
        assert row["hash"] == event.hash == event_hash(
            prev_hash=event.prev_hash, created_at=event.created_at, actor=event.actor, action=event.action,
            object_type=event.object_type, object_id=event.object_id, data=event.data, reason=event.reason,
            request_id=row["request_id"])
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == f"user:{lead.pk}" and exported.role == "senior_moderator"
