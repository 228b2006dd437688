"""The console pages: queue filters, counts, pagination and query count; the case page; wellness; dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from moderation.models import ConsolePreference, Decision, MediaExposure, ReviewTask
from moderation.roles import MODERATOR, SENIOR, TRIAGE
from moderation.services import exposure
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db

PDQ_A = "f" * 64
PDQ_NEAR = "f" * 62 + "00"  # 8 bits away from PDQ_A
PDQ_FAR = "0" * 64


def rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-task="(\d+)"', html)]


@pytest.fixture
def mod_client(client: Client) -> tuple[Client, User]:
    user = user_with_role("mo", MODERATOR)
    client.force_login(user)
    return client, user


def test_the_queue_lists_undecided_cases_by_priority_with_their_reasons(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    low = make_case(priority=5)
    high = make_case(priority=50, reasons=[{"code": "match", "points": 30, "detail": "pdq match at distance 2"}])
    make_case(priority=99, state=ReviewTask.State.DECIDED)
    html = client.get("/console/").content.decode()
    assert rows(html) == [high.pk, low.pk]
    assert "pdq match at distance 2 (+30)" in html


def test_the_queue_shows_counts_per_state(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    make_case()
    make_case()
    make_case(state=ReviewTask.State.ESCALATED)
    html = client.get("/console/").content.decode()
    assert re.search(r'data-state="open">Open: <span class="n">2</span>', html)
    assert re.search(r'data-state="escalated">Escalated: <span class="n">1</span>', html)


@pytest.mark.parametrize(("query", "expected"), [
    ("state=escalated", ["escalated"]),
    ("reason=match", ["matched"]),
    ("deadline=breached", ["breached"]),
    ("deadline=under_12h", ["soon"]),
    ("source=esafety", ["esafety"]),
    ("has_match=yes", ["matched"]),
    ("score_min=0.8", ["scored"]),
    ("score_min=0.1&score_max=0.5", []),
    ("assignee=none&deadline=later", ["plain"]),
])
def test_each_queue_filter_narrows_the_list(mod_client: tuple[Client, User], query: str,
                                            expected: list[str]) -> None:
    client, _ = mod_client
    made = {
        "escalated": make_case(state=ReviewTask.State.ESCALATED),
        "matched": make_case(match=True, reasons=[{"code": "match", "points": 30, "detail": "m"}]),
        "breached": make_case(hours_left=-2),
        "soon": make_case(hours_left=5),
        "esafety": make_case(source="esafety"),
        "scored": make_case(score=0.9),
        "plain": make_case(hours_left=60),
    }
    html = client.get(f"/console/?{query}").content.decode()
    assert sorted(rows(html)) == sorted(made[name].pk for name in expected)


def test_the_assignee_filter_finds_my_cases(mod_client: tuple[Client, User]) -> None:
    client, user = mod_client
    mine = make_case()
    make_case()
    client.post(f"/console/case/{mine.pk}/claim")
    assert rows(client.get("/console/?assignee=me").content.decode()) == [mine.pk]
    assert rows(client.get(f"/console/?assignee={user.username}").content.decode()) == [mine.pk]


def test_a_bad_filter_value_is_named_and_the_queue_still_shows(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    make_case()
    html = client.get("/console/?score_min=2").content.decode()
    assert 'role="alert"' in html and "score_min" in html
    assert len(rows(html)) == 1


def test_the_queue_pages_keep_the_filters(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    for _ in range(55):
        make_case(source="esafety")
    make_case()
    first = client.get("/console/?source=esafety").content.decode()
    assert len(rows(first)) == 50
    assert 'href="?source=esafety&amp;page=2"' in first
    second = client.get("/console/?source=esafety&page=2").content.decode()
    assert len(rows(second)) == 5
    assert 'rel="next"' not in second and 'href="?source=esafety&amp;page=1" rel="prev"' in second
    unfiltered = client.get("/console/").content.decode()
    assert "Page 1 of 2 (56 cases)" in unfiltered


def test_the_queue_page_runs_the_same_number_of_queries_for_5_or_60_cases(
        mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/console/?has_match=no").status_code == 200
        return len(ctx.captured_queries)

    for n in range(5):
        make_case(score=0.5, pdq=f"{n:064x}")
    few = queries()
    for n in range(55):
        make_case(score=0.5, pdq=f"{n + 100:064x}")
    many = queries()
    assert many == few
    assert many <= 10  # session, user, permissions, page count, page rows, state counts, exposure


def test_the_case_page_groups_near_duplicates_and_identical_media(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case(pdq=PDQ_A)
    near = make_case(pdq=PDQ_NEAR)
    far = make_case(pdq=PDQ_FAR)
    same_sha = make_case(sha256=case.report.items.get().media.sha256)
    html = client.get(f"/console/case/{case.pk}").content.decode()
    grouped = [int(x) for x in re.findall(r'<tr class="near-duplicate" data-task="(\d+)"', html)]
    assert grouped == [same_sha.pk, near.pk]
    assert far.pk not in grouped
    assert "identical (sha256)" in html and "pdq distance 8" in html


def test_a_group_is_decided_at_once_from_the_case_page(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case(pdq=PDQ_A)
    near = make_case(pdq=PDQ_NEAR)
    client.post(f"/console/case/{case.pk}/claim")
    response = client.post(f"/console/case/{case.pk}/decide",
                           {"decision": "no_violation", "reason": "not_intimate", "also": [str(near.pk)]})
    assert response.status_code == 302
    assert ReviewTask.objects.get(pk=case.pk).state == ReviewTask.State.DECIDED
    assert ReviewTask.objects.get(pk=near.pk).state == ReviewTask.State.DECIDED
    assert Decision.objects.get(task=near).reason == "not_intimate"


def test_the_case_page_applies_the_users_media_preferences(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case(pdq=PDQ_A)
    html = client.get(f"/console/case/{case.pk}").content.decode()
    assert 'class="media-wrap concealed"' in html and 'data-blur="24" data-grey="1"' in html
    assert 'data-mode="click"' in html
    assert client.post("/console/preferences", {"blur_px": "40", "reveal_mode": "hold"}).status_code == 302
    html = client.get(f"/console/case/{case.pk}").content.decode()
    assert 'data-blur="40" data-grey="0"' in html and 'data-mode="hold"' in html and "Hold to reveal" in html


def test_a_blur_beyond_the_limit_is_refused_with_the_field_named(mod_client: tuple[Client, User]) -> None:
    client, user = mod_client
    html = client.post("/console/preferences", {"blur_px": "500", "reveal_mode": "click"}).content.decode()
    assert "at most 64 pixels" in html
    assert not ConsolePreference.objects.filter(user=user).exists()


def test_the_case_page_shows_the_deadline_countdown_and_the_shortcuts(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case(hours_left=10)
    html = client.get(f"/console/case/{case.pk}").content.decode()
    assert re.search(r'id="deadline" data-deadline="\d{4}-\d\d-\d\dT', html)
    assert "<kbd>t</kbd> take down" in html and "console/console.js" in html


def test_revealing_media_counts_once_per_item_and_day(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    a, b = make_case(pdq=PDQ_A), make_case(pdq=PDQ_FAR)
    media_a, media_b = a.report.items.get().media_id, b.report.items.get().media_id
    assert client.post(f"/console/media/{media_a}/reveal", {"task": a.pk}).json()["revealed_today"] == 1
    assert client.post(f"/console/media/{media_a}/reveal", {"task": a.pk}).json()["revealed_today"] == 1
    assert client.post(f"/console/media/{media_b}/reveal").json()["revealed_today"] == 2
    assert "You revealed <strong>2</strong> media items today" in client.get("/console/exposure").content.decode()


def test_the_daily_cap_refuses_a_new_item_but_not_one_already_seen(
        mod_client: tuple[Client, User], settings: Any) -> None:
    client, user = mod_client
    settings.TAKEDOWN_EXPOSURE_DAILY_CAP = 1
    a, b = make_case(pdq=PDQ_A), make_case(pdq=PDQ_FAR)
    media_a, media_b = a.report.items.get().media_id, b.report.items.get().media_id
    assert client.post(f"/console/media/{media_a}/reveal").status_code == 200
    refused = client.post(f"/console/media/{media_b}/reveal")
    assert refused.status_code == 429 and "daily limit" in refused.json()["detail"]
    assert client.post(f"/console/media/{media_a}/reveal").status_code == 200
    assert MediaExposure.objects.filter(user=user).count() == 1


def test_leads_see_every_moderators_exposure_and_moderators_only_their_own(client: Client) -> None:
    mo, lead = user_with_role("mo", MODERATOR), user_with_role("lead", SENIOR)
    media = make_case(pdq=PDQ_A).report.items.get().media_id
    exposure.exposure_record(user=mo, media_id=media)
    client.force_login(mo)
    assert 'id="team-exposure"' not in client.get("/console/exposure").content.decode()
    client.force_login(lead)
    html = client.get("/console/exposure").content.decode()
    assert re.search(r"<td>mo</td><td>1</td>", html)


def test_triage_sees_no_media_on_the_case_page(client: Client) -> None:
    client.force_login(user_with_role("tri", TRIAGE))
    case = make_case(pdq=PDQ_A)
    html = client.get(f"/console/case/{case.pk}").content.decode()
    assert "data-media=" not in html and "Your role does not show reported media." in html


def test_the_dashboard_draws_cases_by_state_and_deadline_band_and_counts_breaches(client: Client) -> None:
    client.force_login(user_with_role("lead", SENIOR))
    make_case(hours_left=-1)
    make_case(hours_left=5)
    make_case(state=ReviewTask.State.ESCALATED, hours_left=30)
    late = make_case(hours_left=-3, state=ReviewTask.State.DECIDED)
    decided = Decision.objects.create(task=late, report=late.report, outcome="no_violation", reason="not_intimate")
    late.report.received_at = timezone.now() - timedelta(hours=50)
    late.report.save()
    html = client.get("/console/dashboard").content.decode()
    assert decided.pk
    assert html.count("<svg") == 3 + 3  # and one service-level chart per measure (tests/moderation/test_sla.py)
    assert 'data-label="Open" data-value="2"' in html and 'data-label="Escalated" data-value="1"' in html
    assert 'data-label="deadline passed" data-value="1"' in html
    assert 'data-label="under 12 h left" data-value="1"' in html
    assert re.search(r'id="breaches-late"><strong>1</strong>', html)
    assert re.search(r'id="breaches-open"><strong>1</strong>', html)
    assert re.search(r'id="median"><strong>50\.0 h</strong>', html)


def test_each_queue_row_shows_its_items_matches_and_top_score(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    task = make_case(match=True, score=0.87)
    html = client.get("/console/").content.decode()
    row = html[html.index(f'<tr data-task="{task.pk}"'):]
    row = row[:row.index("</tr>")]
    assert re.search(r"<td>1</td><td>1</td>\s*<td>0\.87</td>", row), row


def test_an_admin_overrides_a_message_template_and_moderators_get_the_new_text(client: Client) -> None:
    from moderation.services.message_templates import message_render

    admin = user_with_role("ada", "admin")
    client.force_login(admin)
    form = client.get("/console/templates?key=reporter-removed-ncii").content.decode()
    assert 'value="reporter-removed-ncii"' in form
    response = client.post("/console/templates", {
        "key": "reporter-removed-ncii", "audience": "reporter", "reason": "ncii", "title": "Removed (NCII)",
        "subject": "Removed: {{ case_number }}", "text": "Gone.\n\nBlocked too.", "active": "on"})
    assert response.status_code == 302
    message = message_render(key="reporter-removed-ncii", context={"case_number": "TD-1"})
    assert message is not None and message.subject == "Removed: TD-1"
    assert message.html == "<p>Gone.</p><p>Blocked too.</p>"
    client.force_login(user_with_role("sam", SENIOR))
    assert client.get("/console/templates").status_code == 403


def test_the_closed_list_pages_without_counting_all_history(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    closed = make_case(state=ReviewTask.State.DECIDED)
    html = client.get("/console/?state=decided").content.decode()
    assert rows(html) == [closed.pk]
    assert 'data-state="decided">Closed</a>' in html and "Page 1</p>" not in html and "Page 1\n" in html
