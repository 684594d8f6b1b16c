"""A keyed call refused for quota (402 quota_exceeded) gets billing's notice on
its way out — `billing.middleware.QuotaRefusalMiddleware.anotice`, which
config.lean's flat chain calls for API-key calls as the middleware chain does
for the rest: the period's one 'included tokens used up' notice, claimed once
however many calls are refused."""

from __future__ import annotations

import httpx
from django.core import mail

from billing.limits import workspace_limits
from billing.models import BillingNotice, Tier
from billing.services.usage_hooks import exhausted_kind
from usage.models import UsageEvent


def test_a_keyed_402_claims_the_periods_notice_once(metered, workspace, owner, tiers, make_key):
    # Fewer included tokens than one call's estimate: refused before any usage,
    # so only the refusal's own hook can have claimed the notice.
    Tier.objects.filter(pk=tiers["free"].pk).update(included_tokens=10)
    _key, secret = make_key(owner.memberships.get())
    for _ in range(3):
        response = httpx.post(
            f"{metered}/api/v1/summaries",
            json={"text": "A call the quota can't cover.", "length": "short"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
        assert response.status_code == 402, response.text
        assert response.json()["error"]["code"] == "quota_exceeded"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert not UsageEvent.objects.filter(workspace=workspace, total_tokens__gt=0).exists()
    kind = exhausted_kind(workspace_limits(workspace))
    assert list(
        BillingNotice.objects.filter(workspace=workspace).values_list("kind", flat=True)
    ) == [kind]
    assert [m.to for m in mail.outbox] == [[owner.email]]
