"""Billing over the API (API.md "Usage, quota, keys, billing")."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Perm
from billing import selectors
from billing.limits import effective_tier
from billing.models import ConsentRecord, Subscription, Tier
from billing.services.upgrades import upgrade_consent
from billing.terms import TERMS_VERSION
from config import clock
from config.errors import InvalidRequest


class PlanOutput(serializers.ModelSerializer):
    plan = serializers.CharField(source="slug")
    next_plan = serializers.SlugRelatedField(source="next_tier", slug_field="slug", read_only=True)
    monthly_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    overage_price_per_million = serializers.DecimalField(max_digits=10, decimal_places=4)

    class Meta:
        model = Tier
        fields = [
            "plan",
            "name",
            "description",
            "monthly_price",
            "currency",
            "included_tokens",
            "rpm_limit",
            "tpm_limit",
            "features",
            "overage_policy",
            "overage_price_per_million",
            "overage_spend_cap",
            "next_plan",
        ]


class PlansOutput(serializers.Serializer):
    plans = PlanOutput(many=True)
    terms_version = serializers.CharField()


class SubscriptionOutput(serializers.Serializer):
    plan = serializers.CharField()
    plan_name = serializers.CharField()
    status = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    cancel_at_period_end = serializers.BooleanField()
    included_tokens = serializers.IntegerField()
    used_tokens = serializers.IntegerField()
    overage_policy = serializers.CharField()
    next_plan = serializers.CharField(allow_null=True)
    pending_plan = serializers.CharField(allow_null=True)
    scheduled_plan = serializers.CharField(allow_null=True)
    upgrade_url = serializers.CharField()


class PlansApi(APIView):
    """Public tiers, cheapest first, and the terms version an upgrade must accept."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(operation_id="billing_plans", responses=PlansOutput)
    def get(self, request: Request) -> Response:
        plans = PlanOutput(selectors.public_tiers(), many=True).data
        return Response({"plans": plans, "terms_version": TERMS_VERSION})


def subscription_data(request: Request, sub: Subscription | None) -> dict:
    usage = selectors.period_usage(request.workspace)
    limits = usage.limits
    _tier, paid = effective_tier(sub, clock.now())
    return {
        "plan": limits.plan,
        "plan_name": limits.plan_name,
        "status": (sub.status if sub and paid else "free"),
        "period_start": limits.period_start,
        "period_end": limits.period_end,
        "cancel_at_period_end": bool(sub and paid and sub.cancel_at_period_end),
        "included_tokens": limits.included_tokens,
        "used_tokens": usage.used,
        "overage_policy": limits.overage_policy,
        "next_plan": limits.next_plan,
        "pending_plan": sub.pending_upgrade.slug if sub and sub.pending_upgrade else None,
        "scheduled_plan": sub.scheduled_tier.slug if sub and sub.scheduled_tier else None,
        "upgrade_url": request.build_absolute_uri(limits.upgrade_url),
    }


class SubscriptionApi(APIView):
    @extend_schema(operation_id="billing_subscription", responses=SubscriptionOutput)
    def get(self, request: Request) -> Response:
        return Response(subscription_data(request, selectors.subscription(request.workspace)))


class ConsentOutput(serializers.ModelSerializer):
    from_plan = serializers.SlugRelatedField(source="from_tier", slug_field="slug", read_only=True)
    to_plan = serializers.SlugRelatedField(source="to_tier", slug_field="slug", read_only=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "user_email",
            "from_plan",
            "to_plan",
            "price_shown",
            "currency",
            "included_tokens_shown",
            "amount_due_now_shown",
            "terms_version",
            "terms_sha256",
            "channel",
            "created_at",
        ]


class UpgradeRequestSerializer(serializers.Serializer):
    plan = serializers.SlugField()
    accept_terms = serializers.BooleanField(required=False, default=False)
    terms_version = serializers.CharField(required=False, default="", allow_blank=True)


class UpgradeResultSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        ["upgraded", "pending_payment", "checkout_required", "already_requested"]
    )
    consent = ConsentOutput(allow_null=True)
    subscription = SubscriptionOutput()
    checkout_url = serializers.URLField(required=False)


class UpgradeApi(APIView):
    """Consent to a pricier tier. Owners and admins only. 201 with the consent
    record; 200 when the upgrade was already requested (nothing new recorded)."""

    required_perm = Perm.MANAGE_BILLING

    @extend_schema(
        operation_id="billing_upgrade",
        request=UpgradeRequestSerializer,
        responses={201: UpgradeResultSerializer, 200: UpgradeResultSerializer},
    )
    def post(self, request: Request) -> Response:
        data = UpgradeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tier = selectors.tier_by_slug(data.validated_data["plan"])
        if tier is None:
            raise InvalidRequest("There is no such plan.", details={"plan": ["unknown plan"]})
        overview = request.build_absolute_uri(reverse("billing:overview"))
        result = upgrade_consent(
            workspace=request.workspace,
            membership=request.membership,
            to_tier=tier,
            accept_terms=data.validated_data["accept_terms"],
            terms_version=data.validated_data["terms_version"],
            proration_date=None,
            channel="api",
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
            success_url=f"{overview}?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=overview,
        )
        body = {
            "outcome": result.outcome,
            "consent": ConsentOutput(result.consent).data if result.consent else None,
            "subscription": subscription_data(request, result.subscription),
        }
        if result.checkout_url:
            body["checkout_url"] = result.checkout_url
        return Response(body, status=201 if result.consent else 200)
