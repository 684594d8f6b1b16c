"""The usage dashboard reads the ledger: its numbers match UsageEvent to the
token; members see their own requests, owners and admins everyone's."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from tests.factories import MembershipFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db
_ids = itertools.count()


def event(membership, *, feature="chat", model="gpt-4o-mini", tokens=(100, 20, 50), days_ago=0):
    input_tokens, cached, output = tokens
    return UsageEvent.objects.create(
        workspace=membership.workspace,
        user=membership.user,
        feature=feature,
        model=model,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output,
        total_tokens=input_tokens + output,
        latency_ms=120,
        request_id=f"req_test_{next(_ids)}",
        created_at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def ledger(workspace, owner, feature_member):
    owner_membership = owner.memberships.get()
    event(owner_membership, feature="extract", tokens=(1234, 0, 99))
    event(owner_membership, tokens=(50, 0, 7), days_ago=0)
    event(feature_member, tokens=(300, 128, 41), model="gpt-4.1-mini")
    event(feature_member, feature="summarize", tokens=(77, 0, 13))
    event(MembershipFactory(role="owner"), tokens=(999_999, 0, 1))  # another tenant
    return UsageEvent.objects.for_workspace(workspace).filter(
        created_at__gte=timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )


def sums(events):
    return events.aggregate(
        total=Sum("total_tokens"), input=Sum("input_tokens"), output=Sum("output_tokens")
    )


def test_owner_sees_everyone_matching_the_ledger(ledger, owner, api_client):
    response = api_client(owner).get("/usage/")
    assert response.status_code == 200
    ctx = response.context
    expected = sums(ledger)
    assert ctx["totals"]["total_tokens"] == expected["total"]
    assert ctx["totals"]["input_tokens"] == expected["input"]
    assert ctx["totals"]["requests"] == ledger.count() == 4
    assert sum(day["total_tokens"] for day in ctx["daily"]) == expected["total"]
    by = {key: rows for key, _label, rows in ctx["breakdowns"]}
    assert set(by) == {"feature", "member", "key", "model"}
    for rows in by.values():
        assert sum(r["total_tokens"] for r in rows) == expected["total"]
    members = {r["name"]: r["total_tokens"] for r in by["member"]}
    assert members[owner.email] == sums(ledger.filter(user=owner))["total"]
    assert ctx["quota"].used == expected["total"]
    assert f"{expected['total']:,}".encode() in response.content


def test_member_sees_only_their_own(ledger, feature_member, api_client):
    response = api_client(feature_member.user).get("/usage/")
    ctx = response.context
    mine = ledger.filter(user=feature_member.user)
    assert ctx["totals"]["total_tokens"] == sums(mine)["total"]
    assert ctx["totals"]["requests"] == 2
    assert "member" not in {key for key, _l, _r in ctx["breakdowns"]}
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(
                    api_client(feature_member.user).get("/usage/export.csv").streaming_content
                ).decode()
            )
        )
    )
    assert {r["member"] for r in rows} == {feature_member.user.email}
    assert sum(int(r["total_tokens"]) for r in rows) == sums(mine)["total"]


def test_filters_and_csv_export(ledger, owner, api_client):
    client = api_client(owner)
    response = client.get("/usage/?feature=chat")
    chat = ledger.filter(feature="chat")
    assert response.context["totals"]["total_tokens"] == sums(chat)["total"]
    export = client.get("/usage/export.csv?feature=chat")
    assert export["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == chat.count()
    assert sum(int(r["input_tokens"]) for r in rows) == sums(chat)["input"]
    assert {r["request_id"] for r in rows} == set(chat.values_list("request_id", flat=True))


def test_empty_state_and_projection(owner, api_client):
    response = api_client(owner).get("/usage/")
    assert b"No usage in this range yet" in response.content
    assert response.context["quota"].used == 0
    assert response.context["quota"].runs_out_on is None
