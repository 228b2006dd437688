"""The console's users page: accounts with their roles, giving and taking roles, deactivation; all audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.models import AuditEvent
from moderation.roles import ADMIN, MODERATOR, SENIOR, TRIAGE
from tests.moderation.console_helpers import user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user: User, client: Client) -> Client:
    client.force_login(admin_user)
    return client


def test_the_page_lists_every_account_with_its_roles(admin_client: Client, moderator: User, outsider: User) -> None:
    page = admin_client.get("/console/admin/users")
    roles = {row.user.username: row.roles for row in page.context["rows"]}
    assert roles == {"ada-admin": [ADMIN], "mo-moderator": [MODERATOR], "olly-outsider": []}


def test_an_admin_gives_a_role_and_the_account_gets_its_rights(admin_client: Client, moderator: User) -> None:
    response = admin_client.post(f"/console/admin/users/{moderator.pk}/role", {"role": SENIOR, "change": "add"})
    assert response.status_code == 302
    fresh = User.objects.get(pk=moderator.pk)
    assert fresh.has_perm("moderation.view_dashboard")
    event = AuditEvent.objects.get(action="user.role_added")
    assert (event.object_id, event.data, event.after) == (str(moderator.pk), {"role": SENIOR},
                                                          {"roles": sorted([MODERATOR, SENIOR])})


def test_an_admin_takes_a_role_away(admin_client: Client, moderator: User) -> None:
    admin_client.post(f"/console/admin/users/{moderator.pk}/role", {"role": MODERATOR, "change": "remove"})
    assert not User.objects.get(pk=moderator.pk).has_perm("moderation.view_queue")
    assert AuditEvent.objects.get(action="user.role_removed").before == {"roles": [MODERATOR]}


def test_the_last_active_admin_keeps_the_admin_role(admin_client: Client, admin_user: User) -> None:
    page = admin_client.post(f"/console/admin/users/{admin_user.pk}/role", {"role": ADMIN, "change": "remove"},
                             follow=True)
    assert "the last active admin" in page.content.decode()
    assert admin_user.groups.filter(name=ADMIN).exists()


def test_with_a_second_admin_the_first_can_step_down(admin_client: Client, admin_user: User) -> None:
    user_with_role("second-admin", ADMIN)
    admin_client.post(f"/console/admin/users/{admin_user.pk}/role", {"role": ADMIN, "change": "remove"})
    assert not admin_user.groups.filter(name=ADMIN).exists()


def test_a_deactivated_account_is_logged_out_and_audited(admin_client: Client, moderator: User) -> None:
    theirs = Client()
    theirs.force_login(moderator)
    assert theirs.get("/console/").status_code == 200
    admin_client.post(f"/console/admin/users/{moderator.pk}/active", {"active": "0"})
    assert not User.objects.get(pk=moderator.pk).is_active
    assert "/accounts/login/" in theirs.get("/console/")["Location"]
    assert AuditEvent.objects.get(action="user.deactivated").after == {"is_active": False}
    admin_client.post(f"/console/admin/users/{moderator.pk}/active", {"active": "1"})
    assert User.objects.get(pk=moderator.pk).is_active
    assert AuditEvent.objects.filter(action="user.reactivated").count() == 1


def test_nobody_deactivates_their_own_account(admin_client: Client, admin_user: User) -> None:
    user_with_role("second-admin", ADMIN)
    page = admin_client.post(f"/console/admin/users/{admin_user.pk}/active", {"active": "0"}, follow=True)
    assert "cannot deactivate your own account" in page.content.decode()
    assert User.objects.get(pk=admin_user.pk).is_active


def test_an_unknown_role_is_refused(admin_client: Client, moderator: User) -> None:
    page = admin_client.post(f"/console/admin/users/{moderator.pk}/role", {"role": "superuser", "change": "add"},
                             follow=True)
    assert "Choose a role" in page.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="user.").exists()


def test_the_user_list_costs_the_same_few_queries_for_many_users(admin_client: Client,
                                                                django_assert_max_num_queries: Any) -> None:
    for n in range(30):
        user_with_role(f"person-{n}", [TRIAGE, MODERATOR, SENIOR][n % 3])
    with django_assert_max_num_queries(7):
        page = admin_client.get("/console/admin/users")
    assert len(page.context["rows"]) == 31
