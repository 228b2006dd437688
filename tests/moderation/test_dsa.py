"""DSA statements of reasons: Art. 17 elements, Transparency Database fields and enums (checked here by
an independent validator and by a stub server on loopback), the command, and the batch client."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from moderation import http
from moderation.models import AuditEvent, Decision, Report, ReportedItem, StatementOfReasons
from moderation.services.dsa import (
    SUBMIT_RETRY,
    statement_build,
    statements_for_decision,
    statements_submit,
    submit_client,
)
from tests.moderation.legal_helpers import Received, loopback_server, submit, take_down

# The Transparency Database's rules as LEGAL.md states them, written out independently of the code under test.
ENUMS = {
    "decision_ground": {"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"},
    "category": {"STATEMENT_CATEGORY_CYBER_VIOLENCE", "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN"},
    "source_type": {"SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION",
                    "SOURCE_VOLUNTARY"},
    "automated_detection": {"Yes", "No"},
    "automated_decision": {"AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY",
                           "AUTOMATED_DECISION_NOT_AUTOMATED"},
}
LIST_ENUMS = {
    "content_type": {"CONTENT_TYPE_IMAGE", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_SYNTHETIC_MEDIA"},
    "category_specification": {"KEYWORD_NON_CONSENSUAL_IMAGE_SHARING", "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE"},
    "decision_visibility": {"DECISION_VISIBILITY_CONTENT_REMOVED"},
}
TOKEN = "dsa-test-token"


def schema_problems(statement: dict[str, Any]) -> list[str]:
    problems = []
    for name, allowed in ENUMS.items():
        if statement.get(name) not in allowed:
            problems.append(f"{name}={statement.get(name)!r}")
    for name, allowed in LIST_ENUMS.items():
        values = statement.get(name)
        if not isinstance(values, list) or not values or not set(values) <= allowed:
            problems.append(f"{name}={values!r}")
    ground = statement.get("decision_ground")
    if ground == "DECISION_GROUND_ILLEGAL_CONTENT" and not (
            statement.get("illegal_content_legal_ground") and statement.get("illegal_content_explanation")):
        problems.append("illegal ground without legal ground/explanation")
    for name in ("content_date", "application_date"):
        try:
            date.fromisoformat(statement.get(name, ""))
        except (TypeError, ValueError):
            problems.append(name)
    facts = statement.get("decision_facts")
    if not isinstance(facts, str) or not facts or len(facts) > 5000:
        problems.append("decision_facts")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,500}", str(statement.get("puid", ""))):
        problems.append("puid")
    return problems


def stub_database(received: Received, n: int) -> tuple[int, dict[str, Any]]:
    """What the Transparency Database checks: the token, the batch size, and every statement."""
    if received.headers.get("authorization") != f"Bearer {TOKEN}":
        return 401, {"message": "Unauthenticated."}
    if received.path != "/api/v1/statements":
        return 404, {}
    statements = received.json().get("statements", [])
    if not 1 <= len(statements) <= 100:
        return 422, {"message": "between 1 and 100 statements"}
    errors = {i: schema_problems(s) for i, s in enumerate(statements) if schema_problems(s)}
    if errors:
        return 422, {"errors": errors}
    return 201, {"statements": [{"puid": s["puid"], "uuid": f"uuid-{s['puid']}"} for s in statements]}


@pytest.fixture
def removed(demo: Any, moderator: User) -> Decision:
    report = submit(locations=["demo://content/3", "demo://content/11"],
                    reporter_name="Alex Private-Name", reporter_email="alex.private@example.org").report
    return take_down(report, moderator, reason="synthetic_ncii")


@pytest.mark.django_db(transaction=True)
def test_every_removed_item_gets_one_valid_statement_without_personal_data(removed: Decision) -> None:
    statements = list(StatementOfReasons.objects.filter(decision=removed).order_by("id"))
    assert len(statements) == 2
    for statement in statements:
        assert schema_problems(statement.payload) == []
        text = json.dumps(statement.payload)
        for personal in ("Alex", "Private-Name", "alex.private@example.org", "demo://content", "demo-user"):
            assert personal not in text
    first = statements[0].payload
    assert first["source_type"] == "SOURCE_ARTICLE_16"
    assert first["content_type"] == ["CONTENT_TYPE_IMAGE", "CONTENT_TYPE_SYNTHETIC_MEDIA"]
    assert "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE" in first["category_specification"]
    # Item 3 is in the demo bank: hash matching took part in detection, a person decided.
    assert first["automated_detection"] == "Yes" and first["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"


@pytest.mark.django_db(transaction=True)
def test_the_puid_is_stable_and_making_statements_again_changes_nothing(removed: Decision) -> None:
    before = list(StatementOfReasons.objects.values_list("puid", "payload"))
    statements_for_decision(decision_id=removed.pk)
    assert list(StatementOfReasons.objects.values_list("puid", "payload")) == before
    item = ReportedItem.objects.filter(report=removed.report).order_by("id").first()
    assert before[0][0] == f"takedown-d{removed.pk}-i{item.pk}"  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
def test_a_trusted_flagger_notice_is_labelled_as_such() -> None:
    from moderation.services.demo import seed_demo

    seed_demo()
    user = User.objects.get(username="moderator")
    report = submit(locations=["demo://content/20"], source="trusted_flagger").report
    decision = take_down(report, user)
    payload = StatementOfReasons.objects.get(decision=decision).payload
    assert payload["source_type"] == "SOURCE_TRUSTED_FLAGGER"
    assert payload["automated_detection"] == "No"
    assert payload["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert payload["content_type"] == ["CONTENT_TYPE_IMAGE"]


@pytest.mark.django_db(transaction=True)
def test_the_uploader_gets_the_statement_with_every_art_17_element(removed: Decision) -> None:
    sent = [m for m in mail.outbox if "statement of reasons" in m.subject]
    assert len(sent) == 2
    body = sent[0].body
    assert sent[0].to[0].endswith("@demo.invalid")
    for element in ("(a) What we did", "Where: worldwide", "For how long", "(b) Facts and circumstances",
                    "Removed following a notice", "(c) Automated means", "(d) Legal ground", "TAKE IT DOWN Act",
                    "(e) Contractual ground", "Terms of service", "(f) Your options", "/appeal/",
                    "out-of-court dispute settlement", "The courts"):
        assert element in body, element
    html = str(sent[0].alternatives[0][0])  # type: ignore[index]
    assert "(f)" in html and "/appeal/" in html


@pytest.mark.django_db(transaction=True)
def test_the_reporter_gets_the_decision_with_the_redress_options(removed: Decision) -> None:
    [decision_mail] = [m for m in mail.outbox if m.subject.startswith("Decision on report")]
    assert decision_mail.to == ["alex.private@example.org"]
    assert "We decided to remove the content you reported." in decision_mail.body
    assert "out-of-court dispute settlement" in decision_mail.body and "go to court" in decision_mail.body
    assert "A person made this decision" in decision_mail.body  # Art. 16(6)


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_one_statement_per_line_since_a_date(removed: Decision) -> None:
    out = io.StringIO()
    call_command("dsa_statements", "--since", "2000-01-01", "--json", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert all(schema_problems(json.loads(line)) == [] for line in lines)
    later = io.StringIO()
    call_command("dsa_statements", "--since", "2999-01-01", "--json", stdout=later)
    assert later.getvalue() == ""


@pytest.mark.django_db
def test_the_command_rejects_a_date_it_cannot_read() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("dsa_statements", "--since", "last tuesday", "--json")


def _many_statements(count: int) -> None:
    from moderation.services.demo import seed_demo

    seed_demo()
    user = User.objects.get(username="moderator")
    report = submit(locations=["demo://content/20"]).report
    decision = take_down(report, user)
    item = ReportedItem.objects.get(report=report)
    base = StatementOfReasons.objects.get(decision=decision).payload
    for n in range(count - 1):
        payload = {**base, "puid": f"takedown-bulk-{n}"}
        StatementOfReasons.objects.create(decision=decision, item=item, puid=payload["puid"], payload=payload)


@pytest.mark.django_db(transaction=True)
def test_the_client_submits_in_batches_of_at_most_100_with_the_bearer_token() -> None:
    _many_statements(150)
    with loopback_server(stub_database) as server:
        result = statements_submit(endpoint=server.url, token=TOKEN)
    assert [len(r.json()["statements"]) for r in server.requests] == [100, 50]
    assert result.submitted == 150 and result.failed == 0
    assert not StatementOfReasons.objects.filter(submitted_at__isnull=True).exists()
    with loopback_server(stub_database) as server:
        assert statements_submit(endpoint=server.url, token=TOKEN).submitted == 0  # nothing left to send
    assert server.requests == []


def _counting_client(sleeps: list[float]) -> http.HttpClient:
    """The submitter's own client and retry policy, its waits recorded instead of slept."""
    return dataclasses.replace(submit_client(), sleep=sleeps.append)


@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_becomes_a_dead_letter_that_the_next_run_does_not_send_again() -> None:
    _many_statements(3)
    StatementOfReasons.objects.filter(puid="takedown-bulk-0").update(
        payload={**StatementOfReasons.objects.get(puid="takedown-bulk-0").payload, "category": "STATEMENT_CATEGORY_X"})
    sleeps: list[float] = []
    with loopback_server(stub_database) as server:
        result = statements_submit(endpoint=server.url, token=TOKEN, client=_counting_client(sleeps))
    assert len(server.requests) == 1 and sleeps == []  # a 4xx is not retried
    assert (result.refused, result.failed, result.submitted) == (3, 3, 0) and "422" in result.errors[0]
    refused = StatementOfReasons.objects.filter(submitted_at__isnull=True, submit_refused_at__isnull=False)
    assert refused.count() == 3
    assert all("HTTP 422" in s.submit_error and "category" in s.submit_error for s in refused)
    assert AuditEvent.objects.filter(action="statements.refused").count() == 1

    with loopback_server(stub_database) as server:  # the next (hourly) run
        again = statements_submit(endpoint=server.url, token=TOKEN)
    assert server.requests == [] and (again.submitted, again.failed) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_refused_statement_is_listed_and_sent_again_only_when_asked(settings: Any) -> None:
    _many_statements(2)
    with loopback_server(lambda r, n: (400, {"message": "The puid field format is invalid."})) as server:
        statements_submit(endpoint=server.url, token=TOKEN)
    listed = io.StringIO()
    call_command("dsa_statements", "--refused", stdout=listed)
    lines = listed.getvalue().splitlines()
    assert len(lines) == 2 and all("HTTP 400" in line and "puid field format" in line for line in lines)

    with loopback_server(stub_database) as server:
        settings.TAKEDOWN_DSA_ENDPOINT, settings.TAKEDOWN_DSA_TOKEN = server.url, TOKEN
        out = io.StringIO()
        call_command("dsa_statements", "--submit", stdout=out)  # not without --retry-refused
        assert server.requests == [] and "submitted 0" in out.getvalue()
        call_command("dsa_statements", "--submit", "--retry-refused", stdout=out)
    assert len(server.requests) == 1 and "submitted 2" in out.getvalue()
    assert not StatementOfReasons.objects.filter(submitted_at__isnull=True).exists()
    assert not StatementOfReasons.objects.exclude(submit_refused_at=None).exists()
    after = io.StringIO()
    call_command("dsa_statements", "--refused", stdout=after)
    assert after.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_the_admin_filters_refused_statements_and_sends_them_again(client: Any, settings: Any) -> None:
    _many_statements(2)
    StatementOfReasons.objects.filter(puid="takedown-bulk-0").update(
        submit_refused_at=timezone.now(), submit_error="HTTP 422: category is invalid")
    admin = User.objects.create_superuser("root-admin", "root@example.org", "pw-root")
    client.force_login(admin)
    page = client.get("/admin/moderation/statementofreasons/?submission=refused").content.decode()
    assert "takedown-bulk-0" in page and "HTTP 422: category is invalid" in page
    assert "takedown-d" not in page  # the pending statement is not a dead letter
    refused = StatementOfReasons.objects.get(puid="takedown-bulk-0")
    with loopback_server(stub_database) as server:
        settings.TAKEDOWN_DSA_ENDPOINT, settings.TAKEDOWN_DSA_TOKEN = server.url, TOKEN
        client.post("/admin/moderation/statementofreasons/", {
            "action": "send_again", "_selected_action": [refused.pk]})
    assert [s["puid"] for s in server.requests[0].json()["statements"]] == ["takedown-bulk-0"]
    refused.refresh_from_db()
    assert refused.submitted_at is not None and refused.submit_refused_at is None


@pytest.mark.django_db(transaction=True)
def test_a_503_is_retried_with_backoff_within_the_run_and_then_submitted() -> None:
    _many_statements(2)
    sleeps: list[float] = []

    def busy_then_up(received: Received, n: int) -> tuple[int, dict[str, Any]]:
        return (503, {"message": "maintenance"}) if n < 2 else stub_database(received, n)

    with loopback_server(busy_then_up) as server:
        result = statements_submit(endpoint=server.url, token=TOKEN, client=_counting_client(sleeps))
    assert len(server.requests) == 3 and (result.submitted, result.failed) == (2, 0)
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # doubling, jittered
    assert not StatementOfReasons.objects.filter(submitted_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_database_that_stays_down_or_a_wrong_token_leaves_the_statements_for_the_next_run() -> None:
    _many_statements(2)
    sleeps: list[float] = []
    with loopback_server(lambda r, n: (503, {})) as server:
        down = statements_submit(endpoint=server.url, token=TOKEN, client=_counting_client(sleeps))
    assert len(server.requests) == SUBMIT_RETRY.attempts and (down.failed, down.refused) == (2, 0)
    with loopback_server(stub_database) as server:
        wrong = statements_submit(endpoint=server.url, token="wrong")
    assert (wrong.failed, wrong.refused) == (2, 0)  # our set-up, not the statements: no dead letter
    assert "401" in StatementOfReasons.objects.first().submit_error  # type: ignore[union-attr]
    assert not StatementOfReasons.objects.exclude(submit_refused_at=None).exists()
    with loopback_server(stub_database) as server:
        assert statements_submit(endpoint=server.url, token=TOKEN).submitted == 2


@pytest.mark.django_db
def test_a_statement_with_a_bad_enum_value_is_caught_before_it_is_stored() -> None:
    from moderation.services.dsa import statement_validate

    report = Report(case_number="TD-AAAA-BBBB", source="web")
    problems = statement_validate({"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT", "puid": "has space",
                                   "automated_detection": "maybe", "content_type": ["CONTENT_TYPE_PHOTO"]})
    assert any("automated_detection" in p for p in problems)
    assert any("content_type" in p for p in problems)
    assert any("puid" in p for p in problems)
    assert any("category is required" in p for p in problems)
    assert report.source == "web"
    assert callable(statement_build)
