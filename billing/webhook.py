"""POST /stripe/webhook/ — verify with the SDK, store once, answer fast."""

from __future__ import annotations

import logging

import stripe
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import stripe_api
from billing.services.webhooks import event_store

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    if not stripe_api.webhooks_configured():
        return _error(503, "billing_unavailable", "Stripe webhooks are not configured.")
    try:
        event = stripe_api.construct_event(request.body, request.headers.get("Stripe-Signature"))
    except stripe.SignatureVerificationError:
        logger.warning("stripe webhook with a bad signature")
        return _error(400, "invalid_signature", "The Stripe signature could not be verified.")
    except ValueError as exc:  # not JSON, not UTF-8, or not an event object
        detail = str(exc) if isinstance(exc, stripe_api.NotAnEvent) else "not valid JSON"
        return _error(400, "invalid_request", f"The body is not a Stripe event: {detail}.")
    stored = event_store(event=event, payload=request.body)
    return JsonResponse({"received": True, "duplicate": stored is None})
