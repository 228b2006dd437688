"""Decisions and second reviews under concurrency: real threads, real database connections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from moderation.models import Decision, ProposedDecision
from moderation.roles import MODERATOR, SENIOR
from moderation.services import claims, decisions
from tests.moderation.console_helpers import make_case, user_with_role

WORKERS = 4


def race(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_moderators_deciding_one_case_at_once_produce_exactly_one_decision() -> None:
    task = make_case()
    users = [user_with_role(f"racer{n}", MODERATOR) for n in range(WORKERS)]
    results, errors = race([
        (lambda u=u: decisions.decision_make(task_id=task.pk, user=u, outcome="no_violation", reason="not_intimate"))
        for u in users])
    assert len(results) == 1
    assert len(errors) == WORKERS - 1 and all(isinstance(e, claims.ReviewError) for e in errors), errors
    assert Decision.objects.filter(task=task).count() == 1


@pytest.mark.django_db(transaction=True)
def test_seniors_confirming_one_proposal_at_once_produce_exactly_one_decision() -> None:
    task = make_case()
    proposer = user_with_role("proposer", MODERATOR)
    proposal = decisions.decision_propose(task_id=task.pk, user=proposer, outcome="child_safety",
                                       reason="possible_minor")
    seniors = [user_with_role(f"senior{n}", SENIOR) for n in range(WORKERS)]
    results, errors = race([(lambda u=u: decisions.proposal_confirm(proposal_id=proposal.pk, user=u)) for u in seniors])
    assert len(results) == 1
    assert all(isinstance(e, claims.ReviewError) for e in errors) and len(errors) == WORKERS - 1, errors
    assert Decision.objects.filter(task=task).count() == 1
    assert ProposedDecision.objects.get(pk=proposal.pk).state == ProposedDecision.State.CONFIRMED
