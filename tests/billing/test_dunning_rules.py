"""The dunning rules that need no Stripe round trip: metered overage stops
after the operator's grace period; a suspended workspace's owner still reaches
billing and invoices (nobody else, nothing else)."""

from __future__ import annotations

from datetime import timedelta

from accounts.services import workspace_suspend
from billing.limits import workspace_limits
from billing.models import DunningState, EconomicsSettings, Subscription
from config import clock


def test_past_due_metered_overage_stops_after_the_grace_period(tiers, workspace):
    now = clock.now()
    sub = Subscription.objects.create(
        workspace=workspace,
        tier=tiers["team"],
        status="past_due",
        stripe_subscription_id="sub_x",
        current_period_start=now - timedelta(days=5),
        current_period_end=now + timedelta(days=25),
    )
    EconomicsSettings.objects.create(pk=1, past_due_overage_grace_days=3)
    state = DunningState.objects.create(
        subscription=sub, workspace=workspace, status="past_due", past_due_since=now
    )
    fresh = workspace_limits(workspace)
    assert fresh.refusal is None and fresh.overage_token_allowance == 5_000_000  # 40 $ at 8 $/M
    assert fresh.hard_token_limit == 10_000_000

    state.past_due_since = now - timedelta(days=3, minutes=1)
    state.save()
    late = workspace_limits(workspace)
    assert late.refusal is None  # still full access to the included tokens
    assert late.overage_token_allowance == 0 and late.hard_token_limit == 5_000_000


def test_a_suspended_workspaces_owner_still_reaches_billing_and_invoices(
    client, workspace, owner, make_member
):
    admin = make_member(workspace=workspace, role="admin")
    workspace_suspend(workspace=workspace, reason="Payment overdue", operator=None)

    client.force_login(owner)
    assert client.get("/billing/").status_code == 200
    assert client.get("/api/v1/invoices").status_code == 200
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/api/v1/keys").status_code == 403

    client.force_login(admin.user)
    assert client.get("/billing/").status_code == 403
