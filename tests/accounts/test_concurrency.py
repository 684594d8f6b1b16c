"""A workspace always keeps an owner, even when two owners act at the same
moment (PostgreSQL row locks, real threads and connections)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts import selectors, services
from accounts.models import Membership
from config.errors import ApiError
from tests.factories import MembershipFactory, WorkspaceFactory


def _run_together(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call):
        try:
            barrier.wait()
            call()
            outcomes.append("ok")
        except ApiError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_two_owners_leaving_at_once_leave_one_owner_behind():
    workspace = WorkspaceFactory()
    a = MembershipFactory(workspace=workspace, role="owner")
    b = MembershipFactory(workspace=workspace, role="owner")
    outcomes = _run_together(
        lambda: services.workspace_leave(membership=Membership.objects.get(pk=a.pk)),
        lambda: services.workspace_leave(membership=Membership.objects.get(pk=b.pk)),
    )
    assert outcomes == ["invalid_request", "ok"]
    assert selectors.workspace_owner_count(workspace=workspace) == 1


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    workspace = WorkspaceFactory()
    a = MembershipFactory(workspace=workspace, role="owner")
    b = MembershipFactory(workspace=workspace, role="owner")
    outcomes = _run_together(
        lambda: services.membership_change_role(actor=a, membership=b, role="member"),
        lambda: services.membership_change_role(actor=b, membership=a, role="member"),
    )
    assert "ok" in outcomes
    assert selectors.workspace_owner_count(workspace=workspace) == 1
