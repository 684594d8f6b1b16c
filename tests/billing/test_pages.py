"""Billing pages, portal, downgrade and the demo seed."""

from __future__ import annotations

from billing import demo
from billing.limits import workspace_limits
from billing.models import Subscription, Tier
from tests.billing.helpers import deliver
from tests.billing.test_flow import subscribe


def test_pages_explain_when_stripe_is_not_configured(client, owner, tiers, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(owner)
    for path in ["/pricing/", "/billing/", "/billing/upgrade/?plan=pro"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Payments are not configured" in response.content.decode()
    assert client.post("/billing/portal/").status_code == 302  # back with a message


def test_plans_page_is_public(client, tiers):
    page = client.get("/pricing/").content.decode()
    assert "Free" in page and "Pro" in page and "29.00" in page and "No card needed" in page


def test_portal_redirects_to_stripe(client, owner, workspace, stripe_tiers, stripe_env):
    subscribe(workspace, stripe_tiers["pro"], stripe_env)
    client.force_login(owner)
    response = client.post("/billing/portal/")
    assert response.status_code == 302 and response.url.startswith(stripe_env.url)


def test_downgrade_takes_effect_at_period_end(
    client, owner, workspace, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    subscribe(workspace, stripe_tiers["team"], stripe_env)
    client.force_login(owner)
    assert client.post("/billing/downgrade/", {"plan": "pro"}).status_code == 302
    sub = Subscription.objects.get(workspace=workspace)
    assert (sub.tier.slug, sub.scheduled_tier.slug) == ("team", "pro")
    # Stripe's update event (already showing the cheaper price) changes nothing yet.
    for event in stripe_env.events("customer.subscription.updated"):
        with django_capture_on_commit_callbacks(execute=True):
            deliver(client, stripe_env, event)
    assert workspace_limits(workspace).plan == "team"
    # The next period starts: now it is Pro.
    stripe_env.advance(sub.stripe_subscription_id)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, stripe_env, stripe_env.events("customer.subscription.updated")[-1])
    sub.refresh_from_db()
    assert (sub.tier.slug, sub.scheduled_tier) == ("pro", None)


def test_demo_seed_is_idempotent(db):
    demo.seed()
    demo.seed()
    assert list(Tier.objects.values_list("slug", flat=True)) == ["free", "pro", "team"]
    assert Tier.objects.get(slug="free").next_tier.slug == "pro"


def test_lost_webhooks_are_caught_up_by_the_refresh_task(workspace, stripe_tiers, stripe_env):
    from datetime import timedelta

    from django.utils import timezone

    from billing.tasks import refresh_due_subscriptions

    sub = subscribe(workspace, stripe_tiers["pro"], stripe_env)
    real_end = sub.current_period_end
    past = timezone.now() - timedelta(days=1)
    Subscription.objects.filter(pk=sub.pk).update(current_period_end=past)
    assert refresh_due_subscriptions.delay().get() == 1
    sub.refresh_from_db()
    assert sub.current_period_end == real_end


def test_owner_lowers_the_overage_spend_cap(client, owner, workspace, stripe_tiers, stripe_env):
    subscribe(workspace, stripe_tiers["team"], stripe_env)
    client.force_login(owner)
    assert "spend-cap-form" in client.get("/billing/").content.decode()
    client.post("/billing/spend-cap/", {"cap": "16.00"})
    assert workspace_limits(workspace).overage_token_allowance == 2_000_000  # $16 / $8 per 1M
    client.post("/billing/spend-cap/", {"cap": "500"})  # above the plan's $40: refused
    assert workspace_limits(workspace).overage_token_allowance == 2_000_000
    client.post("/billing/spend-cap/", {"cap": ""})  # back to the plan's default
    assert workspace_limits(workspace).overage_token_allowance == 5_000_000
