"""The meter's data: the rate card, our API keys, limit counters and
reservations, the append-only usage ledger with its rollup, and moderation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from accounts.tenancy import WorkspaceQuerySet, WorkspaceScopedManager
from config import clock

# Lifetime caps count from the beginning of time.
LIFETIME_START = datetime(2000, 1, 1, tzinfo=UTC)
KEY_PREFIX = "tg_live_"
PRICE = {"max_digits": 12, "decimal_places": 6}


class CapPeriod(models.TextChoices):
    MONTH = "month", "Per billing period"
    LIFETIME = "lifetime", "Lifetime"


# --- Rate card ---------------------------------------------------------------------


class RateCard(models.Model):
    """USD per 1M tokens for one model from `effective_from` on. A price change
    is a new row with a later date: history is never rewritten."""

    model = models.CharField(max_length=100, db_index=True)
    input_per_million = models.DecimalField(**PRICE, help_text="USD per 1M input tokens")
    cached_input_per_million = models.DecimalField(
        **PRICE, help_text="USD per 1M cached input tokens"
    )
    output_per_million = models.DecimalField(**PRICE, help_text="USD per 1M output tokens")
    effective_from = models.DateTimeField(default=clock.now)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "effective_from"], name="one_price_per_instant"
            ),
            models.CheckConstraint(
                condition=models.Q(input_per_million__gte=0)
                & models.Q(cached_input_per_million__gte=0)
                & models.Q(output_per_million__gte=0),
                name="prices_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from:%Y-%m-%d %H:%M}"


# --- Our API keys ------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    # Keys carry ≥ 190 bits of randomness, so a fast hash is enough (no salt needed).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    # Not a column: the stamp of the cache entry a request was authenticated
    # from (usage.apikeys), set by usage.authentication for the meter to check.
    cache_stamp: str = ""

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="api_keys"
    )
    # The member who created it: if they leave the workspace the key stops working.
    membership = models.ForeignKey(
        "accounts.Membership", null=True, on_delete=models.SET_NULL, related_name="api_keys"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="Visible start of the key")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_cap = models.PositiveBigIntegerField(null=True, blank=True)
    cap_period = models.CharField(max_length=10, choices=CapPeriod.choices, default=CapPeriod.MONTH)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= clock.now():
            return "expired"
        if self.membership_id is None:
            return "orphaned"
        return "active"


class MemberCap(models.Model):
    """A token cap on one member of a workspace (set by owners/admins)."""

    membership = models.OneToOneField(
        "accounts.Membership", on_delete=models.CASCADE, related_name="token_cap"
    )
    token_cap = models.PositiveBigIntegerField()
    cap_period = models.CharField(max_length=10, choices=CapPeriod.choices, default=CapPeriod.MONTH)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.membership}: {self.token_cap} tokens / {self.cap_period}"


# --- Limits: counters and reservations -----------------------------------------------


class CounterScope(models.TextChoices):
    WORKSPACE = "workspace"
    MEMBER = "member"
    KEY = "key"


class UsageCounter(models.Model):
    """Tokens used and reserved for one scope in one period. Rows are locked
    `FOR UPDATE` in id order while reserving (usage.limits_store)."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=10, choices=CounterScope.choices)
    scope_id = models.BigIntegerField()
    period_start = models.DateTimeField()
    used = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)

    objects = WorkspaceScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "scope_id", "period_start"], name="one_counter_per_scope_period"
            ),
            models.CheckConstraint(
                condition=models.Q(used__gte=0) & models.Q(reserved__gte=0),
                name="counter_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.scope_id} from {self.period_start:%Y-%m-%d}"


class Reservation(models.Model):
    """Tokens held for one in-flight request; removed when it settles. A row
    that outlives its request (a crashed process) is released by a task:
    charged at its amount if its call was `sent` upstream, freed if not — so
    it also carries what that charge needs (who, which feature and model)."""

    request_id = models.CharField(max_length=64)  # unique: see Meta.constraints
    # A queue of the calls in flight (a row lives for one call), written and
    # deleted on every metered call: no foreign-key check (each locked the
    # workspace row, a WAL record per call) and no index but the request id's;
    # the workspace's deletion and the stale-reservation task scan the few
    # rows in flight.
    workspace = models.ForeignKey(
        "accounts.Workspace",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    tokens = models.BigIntegerField()
    counter_ids = models.JSONField()
    created_at = models.DateTimeField(default=clock.now)
    # Set by the reservation statement itself when nothing stands between it
    # and the upstream call (moderation runs before it): no round trip of its own.
    sent = models.BooleanField(default=False)
    user_id = models.BigIntegerField(null=True)
    api_key_id = models.BigIntegerField(null=True)
    feature = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.BigIntegerField(default=0)  # the estimate, for the split

    class Meta:
        # A constraint, not `unique=True`: no second (LIKE-pattern) index.
        constraints = [
            models.UniqueConstraint(fields=["request_id"], name="usage_reservation_request_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.tokens} tokens"


# --- The ledger -------------------------------------------------------------------------


class AppendOnlyError(RuntimeError):
    pass


class UsageEventQuerySet(WorkspaceQuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Usage events are append-only")

    def delete(self):
        raise AppendOnlyError("Usage events are append-only")


class EventStatus(models.TextChoices):
    OK = "ok", "OK"
    INCOMPLETE = "incomplete", "Incomplete (no usage reported: reservation charged)"
    ERROR = "error", "Upstream error (not charged)"
    REFUSED = "refused", "Refused by moderation (not charged)"
    CANCELLED = "cancelled", "Cancelled before the upstream answered"
    UNSETTLED = "unsettled", "Unsettled (sent, never settled: reservation charged, to reconcile)"
    STOPPED = "stopped", "Stopped by the caller (what was produced is charged)"


class UsageEvent(models.Model):
    """One metered request. Inserted once, never changed (the code refuses)."""

    # Indexed by the (workspace, -created_at, -id) index below.
    workspace = models.ForeignKey(
        "accounts.Workspace",
        on_delete=models.PROTECT,
        related_name="usage_events",
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="usage_events"
    )
    feature = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    reserved_tokens = models.PositiveIntegerField(default=0)
    # The prices this event was charged at (USD per 1M tokens) and the result.
    input_price = models.DecimalField(**PRICE, default=Decimal(0))
    cached_input_price = models.DecimalField(**PRICE, default=Decimal(0))
    output_price = models.DecimalField(**PRICE, default=Decimal(0))
    cost = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=64)  # unique: see Meta.constraints
    upstream_request_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=EventStatus.choices, default=EventStatus.OK)
    error_code = models.CharField(max_length=40, blank=True)
    flagged = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=200, blank=True)
    streamed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)
    # The workspace's tokens used in the period including this event, as the
    # settle statement left its counter (exact: the row was locked). Billing's
    # after-settle hook works from it, and so can its sweeper after a crash.
    workspace_used_after = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = models.Manager.from_queryset(UsageEventQuerySet)()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"]),
            # Day ranges across all workspaces (reconciliation): the ledger is
            # appended in time order, so a tiny BRIN index serves them.
            BrinIndex(fields=["created_at"], name="usage_event_created_brin", autosummarize=True),
            # Every call inserts a row: only the few flagged ones enter this index.
            models.Index(
                fields=["-created_at"], condition=Q(flagged=True), name="usage_event_flagged"
            ),
        ]
        # A constraint, not `unique=True`: the same unique index without the
        # second (LIKE-pattern) index Django adds for unique text columns.
        constraints = [
            models.UniqueConstraint(fields=["request_id"], name="usage_event_request_id_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.feature} {self.total_tokens} tokens"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Usage events are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Usage events are append-only")


class UsageRollup(models.Model):
    """Per workspace/day/feature/person/key/model sums, upserted in the same
    transaction as each event: the usage reads never scan the ledger."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    feature = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    user_id = models.BigIntegerField(default=0)  # 0: nobody (deleted)
    api_key_id = models.BigIntegerField(default=0)  # 0: browser / session
    requests = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal(0))

    objects = WorkspaceScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "feature", "model", "user_id", "api_key_id"],
                name="one_rollup_row",
            )
        ]
        # Month ranges across all workspaces (margin, the upstream budget).
        indexes = [BrinIndex(fields=["day"], name="usage_rollup_day_brin", autosummarize=True)]

    def __str__(self) -> str:
        return f"{self.day} {self.feature} {self.total_tokens} tokens"


# --- Moderation ---------------------------------------------------------------------------


class ModerationSettings(models.Model):
    """Operator settings for the pre-screen (one row, edited in admin)."""

    enabled = models.BooleanField(default=True, help_text="Screen every input before the model")
    suspend_after_flags = models.PositiveIntegerField(
        default=5, help_text="Suspend a person after this many flags (0: never)"
    )
    log_retention_days = models.PositiveIntegerField(
        default=30,
        help_text="Excerpts of moderation log entries older than this are blanked "
        "(the flag and categories stay)",
    )

    class Meta:
        verbose_name = verbose_name_plural = "moderation settings"

    def __str__(self) -> str:
        return "Moderation settings"

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.log_retention_days == 0:
            raise ValidationError({"log_retention_days": "Keep logs at least one day."})

    @classmethod
    def current(cls) -> ModerationSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class ModerationLog(models.Model):
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    request_id = models.CharField(max_length=64)  # indexed in Meta (no LIKE index)
    flagged = models.BooleanField(default=False)
    categories = models.JSONField(default=list, blank=True)
    excerpt = models.CharField(max_length=300, blank=True)
    model = models.CharField(max_length=100, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # partial, in Meta: only reviewed rows have one
    )
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["request_id"], name="usage_modlog_request_id"),
            models.Index(
                fields=["reviewed_by"],
                condition=Q(reviewed_by__isnull=False),
                name="usage_modlog_reviewed_by",
            ),
            # Written on every screened call; only flagged rows are looked up.
            models.Index(
                fields=["-created_at"], condition=Q(flagged=True), name="usage_modlog_flagged"
            ),
        ]

    def __str__(self) -> str:
        return f"{'FLAGGED' if self.flagged else 'ok'} {self.request_id}"


# --- Idempotency --------------------------------------------------------------------------


class IdempotencyRecord(models.Model):
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    done = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="one_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({'done' if self.done else 'pending'})"
