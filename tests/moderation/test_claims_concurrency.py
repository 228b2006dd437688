"""Two moderators pressing "next case" at once never get the same case (real threads, real DB)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, connections

from moderation.models import ReviewTask
from moderation.roles import MODERATOR, roles_sync
from moderation.services.claims import task_next
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload

MODERATORS = 6
CASES = 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_next_case_calls_never_hand_out_the_same_case(demo: Any) -> None:
    roles_sync()
    for n in range(CASES):
        report_submit(notice=Notice(**{**notice_payload(), "locations": [f"demo://content/{20 + n}"]}))  # type: ignore[arg-type]
    users = []
    for n in range(MODERATORS):
        user = User.objects.create_user(username=f"racer{n}")
        user.groups.add(Group.objects.get(name=MODERATOR))
        users.append(user)
    barrier = threading.Barrier(MODERATORS)
    got: dict[int, int | None] = {}
    errors: list[BaseException] = []

    def press_next(user: User) -> None:
        try:
            barrier.wait(timeout=10)
            task = task_next(user=user)
            got[user.pk] = task.pk if task else None
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press_next, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    handed_out = [pk for pk in got.values() if pk is not None]
    assert len(handed_out) == len(set(handed_out)) == CASES, (connection.vendor, got)
    assert list(got.values()).count(None) == MODERATORS - CASES
    for user_pk, task_pk in got.items():
        if task_pk is not None:
            assert ReviewTask.objects.get(pk=task_pk).assignee_id == user_pk
