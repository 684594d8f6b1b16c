"""The billing banner: shown to everyone in a workspace whose stop-and-ask quota
is used up (owners and admins get the upgrade button, members are told whom to ask)."""

from __future__ import annotations

from django.conf import settings
from django.utils.functional import SimpleLazyObject


def _banner(request):
    workspace = getattr(request, "workspace", None)
    membership = getattr(request, "membership", None)
    if workspace is None or membership is None:
        return None
    from billing.models import BillingNotice
    from billing.selectors import period_usage
    from billing.services.usage_hooks import exhausted_kind

    usage = period_usage(workspace)
    refused = BillingNotice.objects.for_workspace(workspace).filter(
        kind=exhausted_kind(usage.limits), period_start=usage.limits.period_start
    )
    if not (usage.is_exhausted or refused.exists()):
        return None
    from accounts.roles import Perm

    return {"usage": usage, "can_upgrade": membership.can(Perm.MANAGE_BILLING)}


def _dunning_banner(request):
    """past_due (or refused for an overdue payment): owners, admins and finance
    members see it on every page, with the way to pay."""
    workspace = getattr(request, "workspace", None)
    membership = getattr(request, "membership", None)
    if workspace is None or membership is None:
        return None
    from accounts.roles import Perm

    if not (membership.can(Perm.MANAGE_BILLING) or membership.can(Perm.VIEW_BILLING)):
        return None
    from billing.models import Subscription

    sub = Subscription.objects.for_workspace(workspace).select_related("dunning").first()
    dunning = getattr(sub, "dunning", None) if sub is not None else None
    if dunning is None or not (dunning.refused or dunning.status == "past_due"):
        return None
    return {
        "status": dunning.status,
        "refused": dunning.refused,
        "since": dunning.past_due_since,
        "can_pay": membership.can(Perm.MANAGE_BILLING),
    }


def billing(request):
    return {
        "billing_banner": SimpleLazyObject(lambda: _banner(request) or {}),
        "dunning_banner": SimpleLazyObject(lambda: _dunning_banner(request) or {}),
        "stripe_demo_mode": settings.STRIPE_DEMO_MODE,
    }
