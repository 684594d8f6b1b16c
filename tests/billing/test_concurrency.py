"""Two admins confirming the same upgrade at the same moment → one upgrade
(the workspace's billing row is locked; Stripe gets an idempotency key)."""

from __future__ import annotations

import threading

from django.db import connection
from django.test import Client

from billing.models import ConsentRecord, Subscription
from tests.billing.test_flow import api_upgrade, subscribe


def test_two_admins_consenting_at_once_produce_one_upgrade(
    transactional_db, make_member, workspace, stripe_tiers, stripe_env
):
    subscribe(workspace, stripe_tiers["pro"], stripe_env)
    admins = [make_member(workspace=workspace, role=role) for role in ("owner", "admin")]
    barrier = threading.Barrier(len(admins))
    results: list = []

    def consent(membership):
        client = Client()
        client.force_login(membership.user)
        barrier.wait()
        try:
            response = api_upgrade(client, "team")
            results.append((response.status_code, response.json()["outcome"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=consent, args=(m,)) for m in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(results) == [(200, "already_requested"), (201, "upgraded")]
    assert ConsentRecord.objects.count() == 1
    sub = Subscription.objects.get(workspace=workspace)
    assert sub.tier.slug == "team"
    changes = [
        e
        for e in stripe_env.events("invoice.created")
        if e["data"]["object"]["billing_reason"] == "subscription_update"
    ]
    assert len(changes) == 1  # one proration invoice: Stripe was asked once


def test_two_admins_upgrading_from_free_share_one_checkout(
    client, make_member, workspace, stripe_tiers, stripe_env
):
    first, second = (make_member(workspace=workspace, role=r) for r in ("owner", "admin"))
    client.force_login(first.user)
    one = api_upgrade(client, "pro").json()
    client.force_login(second.user)
    two = api_upgrade(client, "pro").json()
    assert one["outcome"] == two["outcome"] == "checkout_required"
    assert one["checkout_url"] == two["checkout_url"]  # one Checkout, so one subscription
    assert ConsentRecord.objects.count() == 1
    assert len(stripe_env.client().v1.checkout.sessions.list().data) == 1
    assert one["subscription"]["plan"] == "free"
    assert two["subscription"]["pending_plan"] == "pro"
