"""Read and key-management endpoints (DRF, one APIView per resource with
nested Input/Output serializers). The hot feature path is async elsewhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Perm
from config import clock
from config.errors import InvalidRequest, NotFound
from config.pagination import Cursor
from config.schema import DATE_PARAM, listed
from usage import selectors, services
from usage.limits import get_workspace_limits
from usage.models import ApiKey, CapPeriod

MAX_RANGE_DAYS = 366
TOTALS = ("requests", "input_tokens", "cached_input_tokens", "output_tokens", "total_tokens")

# The documented ranges are what the columns hold (bigint / integer).
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class KeyOutput(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", default=None)
    status = serializers.CharField()
    used_tokens = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "token_cap", "cap_period", "rpm_limit", "tpm_limit",
                  "expires_at", "revoked_at", "last_used_at", "created_at", "created_by",
                  "status", "used_tokens"]  # fmt: skip

    def get_used_tokens(self, key: ApiKey) -> int:
        return self.context.get("used", {}).get(key.pk, 0)


def _future(value):
    if value is not None and value <= clock.now():
        raise serializers.ValidationError("Must be in the future.")
    return value


class KeyListApi(APIView):
    required_perm = Perm.MANAGE_OWN_KEYS
    parser_classes = [JSONParser]  # API.md: JSON bodies (a form's "" is no null)

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        token_cap = serializers.IntegerField(
            min_value=1, max_value=BIGINT_MAX, required=False, allow_null=True
        )
        cap_period = serializers.ChoiceField(choices=CapPeriod.values, default=CapPeriod.MONTH)
        rpm_limit = serializers.IntegerField(
            min_value=1, max_value=INT_MAX, required=False, allow_null=True
        )
        tpm_limit = serializers.IntegerField(
            min_value=1, max_value=INT_MAX, required=False, allow_null=True
        )
        expires_at = serializers.DateTimeField(
            required=False, allow_null=True, validators=[_future]
        )

    class CreatedSerializer(KeyOutput):
        secret = serializers.SerializerMethodField()

        class Meta(KeyOutput.Meta):
            fields = [*KeyOutput.Meta.fields, "secret"]

        def get_secret(self, key) -> str:
            return self.context["secret"]

    @extend_schema(operation_id="keys_list", responses=listed("KeyList", KeyOutput))
    def get(self, request):
        keys = list(selectors.keys_for(membership=request.membership))
        used = selectors.key_used_tokens(keys=keys, limits=get_workspace_limits(request.workspace))
        return Response({"results": KeyOutput(keys, many=True, context={"used": used}).data})

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.key_create(membership=request.membership, **data.validated_data)
        body = self.CreatedSerializer(created.key, context={"secret": created.secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class KeyDetailApi(APIView):
    parser_classes = [JSONParser]
    required_perm = Perm.MANAGE_OWN_KEYS

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        token_cap = serializers.IntegerField(
            min_value=1, max_value=BIGINT_MAX, required=False, allow_null=True
        )
        cap_period = serializers.ChoiceField(choices=CapPeriod.values, required=False)
        rpm_limit = serializers.IntegerField(
            min_value=1, max_value=INT_MAX, required=False, allow_null=True
        )
        tpm_limit = serializers.IntegerField(
            min_value=1, max_value=INT_MAX, required=False, allow_null=True
        )
        expires_at = serializers.DateTimeField(
            required=False, allow_null=True, validators=[_future]
        )

    def _key(self, request, key_id: int) -> ApiKey:
        key = selectors.keys_for(membership=request.membership).filter(pk=key_id).first()
        if key is None:
            raise NotFound("No such API key.")
        return key

    @extend_schema(responses=KeyOutput)
    def get(self, request, key_id: int):
        key = self._key(request, key_id)
        used = selectors.key_used_tokens(keys=[key], limits=get_workspace_limits(request.workspace))
        return Response(KeyOutput(key, context={"used": used}).data)

    @extend_schema(request=InputSerializer, responses=KeyOutput)
    def patch(self, request, key_id: int):
        key = self._key(request, key_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if key.revoked_at is not None:
            raise InvalidRequest("This key is revoked; create a new one.")
        key = services.key_update(key=key, changes=dict(data.validated_data))
        used = selectors.key_used_tokens(keys=[key], limits=get_workspace_limits(request.workspace))
        return Response(KeyOutput(key, context={"used": used}).data)

    @extend_schema(responses=KeyOutput)
    def delete(self, request, key_id: int):
        key = services.key_revoke(key=self._key(request, key_id), acting_user=request.user)
        return Response(KeyOutput(key).data)


class QuotaOutput(serializers.Serializer):
    plan = serializers.CharField()
    plan_name = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    included_tokens = serializers.IntegerField()
    used_tokens = serializers.IntegerField()
    reserved_tokens = serializers.IntegerField()
    remaining_tokens = serializers.IntegerField()
    percent_used = serializers.DecimalField(max_digits=4, decimal_places=1, coerce_to_string=False)
    overage_policy = serializers.ChoiceField(choices=["stop", "metered"])
    hard_token_limit = serializers.IntegerField(allow_null=True)
    upgrade_url = serializers.CharField()
    next_plan = serializers.CharField(allow_null=True)


class QuotaApi(APIView):
    @extend_schema(responses=QuotaOutput)
    def get(self, request):
        return Response(selectors.quota(workspace=request.workspace))


# --- usage reads -----------------------------------------------------------------------


def _parse_bound(raw: str | None, name: str, *, end: bool) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        moment = parse_datetime(raw)
        day = parse_date(raw) if moment is None and len(raw) == 10 else None
    except ValueError:  # well-formed but impossible, e.g. month 13
        moment = day = None
    if moment is not None:
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
    if day is None:
        raise InvalidRequest(
            f"`{name}` must be a date (YYYY-MM-DD) or an ISO 8601 date-time.",
            details={name: ["Not a date."]},
        )
    start_of_day = datetime.combine(day, time.min, tzinfo=UTC)
    return start_of_day + timedelta(days=1) if end else start_of_day


def parse_range(request) -> tuple[datetime, datetime]:
    """start (inclusive) and end (exclusive; a plain date means the whole day).
    Default: the current billing period up to now."""
    params = request.query_params
    start = _parse_bound(params.get("start"), "start", end=False)
    end = _parse_bound(params.get("end"), "end", end=True)
    if start is None:
        start = get_workspace_limits(request.workspace).period_start
    if end is None:
        end = clock.now() + timedelta(seconds=1)
    if start >= end:
        raise InvalidRequest("`start` must be before `end`.", details={"start": ["After end."]})
    if end - start > timedelta(days=MAX_RANGE_DAYS + 1):
        raise InvalidRequest(
            f"The range may span at most {MAX_RANGE_DAYS} days.", details={"end": ["Too far."]}
        )
    return start, end


def own_only(request):
    """Members see their own usage; owners, admins and finance see everyone's."""
    return None if selectors.sees_everyone(request.membership) else request.user


class UsageRowOutput(serializers.Serializer):
    group = serializers.CharField()
    label = serializers.CharField()
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class UsageOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.ChoiceField(choices=selectors.GROUPS)
    rows = UsageRowOutput(many=True)
    totals = serializers.DictField(child=serializers.IntegerField())


class UsageApi(APIView):
    required_perm = Perm.VIEW_OWN_USAGE

    @extend_schema(
        parameters=[
            OpenApiParameter("start", DATE_PARAM, description="YYYY-MM-DD or ISO date-time"),
            OpenApiParameter(
                "end", DATE_PARAM, description="YYYY-MM-DD (inclusive) or ISO date-time"
            ),
            OpenApiParameter("group_by", str, enum=list(selectors.GROUPS)),
        ],
        responses=UsageOutput,
    )
    def get(self, request):
        group_by = request.query_params.get("group_by", "day")
        if group_by not in selectors.GROUPS:
            raise InvalidRequest(
                f"`group_by` must be one of: {', '.join(selectors.GROUPS)}.",
                details={"group_by": [f"Unknown grouping “{group_by}”."]},
            )
        start, end = parse_range(request)
        last_day: date = (end - timedelta(microseconds=1)).date()
        rows = selectors.usage_rows(
            workspace=request.workspace,
            start=start.date(),
            end=last_day,
            group_by=group_by,
            user=own_only(request),
        )
        totals = {f: sum(getattr(r, f) for r in rows) for f in TOTALS}
        return Response(
            {
                "start": start.date().isoformat(),
                "end": last_day.isoformat(),
                "group_by": group_by,
                "rows": [r.__dict__ for r in rows],
                "totals": totals,
            }
        )


class EventPagination(Cursor):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


class EventOutput(serializers.Serializer):
    request_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    feature = serializers.CharField()
    model = serializers.CharField()
    member = serializers.EmailField(source="user.email", default=None)
    key = serializers.SerializerMethodField()
    input_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    latency_ms = serializers.IntegerField()
    status = serializers.CharField()
    flagged = serializers.BooleanField()
    error_code = serializers.CharField()

    def get_key(self, event) -> dict | None:
        key = event.api_key
        return None if key is None else {"id": key.pk, "name": key.name, "prefix": key.prefix}


class UsageEventsApi(APIView):
    required_perm = Perm.VIEW_OWN_USAGE
    pagination_class = EventPagination  # read by the schema: {next, previous, results}

    @extend_schema(responses=EventOutput(many=True))
    def get(self, request):
        start, end = parse_range(request)
        events = selectors.events(
            workspace=request.workspace, start=start, end=end, user=own_only(request)
        )
        paginator = EventPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventOutput(page, many=True).data)
