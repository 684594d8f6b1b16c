"""The one place that builds the Stripe client from settings, so the same code
talks to api.stripe.com or to a Stripe-compatible server (STRIPE_API_BASE)."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

from config.errors import ApiError


class StripeNotConfigured(ApiError):
    status, code = 503, "billing_unavailable"
    default_message = (
        "Payments are not configured on this server (STRIPE_SECRET_KEY is not set), "
        "so plans can't be bought or changed right now."
    )


class StripeFailed(ApiError):
    status, code = 502, "payment_provider_error"
    default_message = "The payment provider could not complete the request. Nothing was changed."


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def webhooks_configured() -> bool:
    return bool(settings.STRIPE_WEBHOOK_SECRET)


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, api_version: str) -> stripe.StripeClient:
    kwargs: dict[str, Any] = {"max_network_retries": 2}
    if api_base:
        base = api_base.rstrip("/")
        kwargs["base_addresses"] = {"api": base, "files": base, "connect": base}
    if api_version:
        kwargs["stripe_version"] = api_version
    return stripe.StripeClient(api_key, **kwargs)


def client() -> stripe.StripeClient:
    """The SDK client for the current settings (rebuilt when they change)."""
    if not is_configured():
        raise StripeNotConfigured()
    return _client(
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_API_VERSION
    )


class NotAnEvent(ValueError):
    """A validly signed body that is not a Stripe event object."""


def construct_event(payload: bytes, sig_header: str | None) -> stripe.Event:
    """Verify the signature, then check the body is an event object (a dict with a
    string `id` and `type`) before the SDK builds it: a signed list, `null` or an
    object without an id is refused (NotAnEvent), never a crash. Raises
    SignatureVerificationError or ValueError."""
    text = payload.decode("utf-8")  # UnicodeDecodeError is a ValueError
    stripe.WebhookSignature.verify_header(
        text, sig_header or "", settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
    )
    data = json.loads(text)
    if not isinstance(data, dict):
        raise NotAnEvent(f"the body is a JSON {type(data).__name__}, not an event object")
    for key in ("id", "type"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise NotAnEvent(f"the event has no {key}")
    if data.get("object", "event") != "event":
        raise NotAnEvent("the body is not an event object")
    if not isinstance(data.get("data", {}), dict):
        raise NotAnEvent("the event's data is not an object")
    return stripe.Webhook.construct_event_without_verification(text)


def from_timestamp(value: int | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read a field from a StripeObject (which is not a dict in stripe>=16)."""
    try:
        value = obj[name]
    except (KeyError, TypeError, AttributeError):
        return default
    return default if value is None else value


def object_id(value: Any) -> str:
    """An expandable field is either an id string or an expanded object."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return field(value, "id", "")
