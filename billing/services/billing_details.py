"""The customer's billing details: validated (python-stdnum for tax ids), synced
to the Stripe customer (name, email, address, tax_ids) so Stripe prints them on
the next invoice, then saved and audited. Stripe first: if it refuses or is
down, nothing changes locally either."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from stdnum import get_cc_module
from stdnum.exceptions import ValidationError as StdnumError

from accounts.models import AuditEvent, Membership, Workspace
from accounts.roles import Perm
from billing import stripe_api
from billing.models_invoices import BillingDetails
from billing.stripe_api import StripeFailed
from config import clock
from config.errors import Forbidden, InvalidRequest

logger = logging.getLogger(__name__)

EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
# Stripe tax id type and the python-stdnum module that checks it, per country.
NON_EU_TAX_IDS = {
    "GB": ("gb_vat", "vat"),
    "CH": ("ch_vat", "vat"),
    "NO": ("no_vat", "mva"),
    "US": ("us_ein", "ein"),
    "AU": ("au_abn", "abn"),
    "CA": ("ca_bn", "bn"),
}


@dataclass(frozen=True)
class DetailsInput:
    legal_name: str
    address_line1: str
    address_line2: str
    postal_code: str
    city: str
    state: str
    country: str
    tax_id: str
    invoice_email: str


def billing_details(workspace: Workspace) -> BillingDetails:
    """The workspace's details (unsaved, empty, before the first edit)."""
    found = BillingDetails.objects.filter(workspace=workspace).first()
    return found or BillingDetails(workspace=workspace)


def normalize_tax_id(country: str, raw: str) -> tuple[str, str]:
    """(stripe type, compact value) or InvalidRequest. EU VAT ids carry their
    country prefix (Greece: EL) and are checked with stdnum.eu.vat."""
    value = raw.strip()
    if not value:
        return "", ""
    if not country:
        raise InvalidRequest(
            "Choose the country before entering a tax id.", details={"tax_id": ["country first"]}
        )
    try:
        if country in EU_COUNTRIES:
            from stdnum.eu import vat

            compact = vat.compact(value)
            prefix = "EL" if country == "GR" else country
            if not compact.startswith(prefix):
                compact = prefix + compact
            return "eu_vat", vat.validate(compact)
        if country in NON_EU_TAX_IDS:
            stripe_type, module_name = NON_EU_TAX_IDS[country]
            module = get_cc_module(country.lower(), module_name)
            assert module is not None  # NON_EU_TAX_IDS names only modules stdnum has
            return stripe_type, module.validate(value)
    except StdnumError as exc:
        raise InvalidRequest(
            f"That is not a valid tax id for {country}: {exc}",
            details={"tax_id": [f"invalid for {country}"]},
        ) from None
    raise InvalidRequest(
        f"Tax ids for {country} are not supported yet; leave it empty.",
        details={"tax_id": [f"unsupported country {country}"]},
    )


def _validated(data: DetailsInput) -> DetailsInput:
    errors: dict[str, list[str]] = {}
    country = data.country.strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        errors["country"] = ["a two-letter ISO country code, e.g. DE"]
    email = data.invoice_email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["invoice_email"] = ["not an email address"]
    if (data.address_line1 or data.city) and not country:
        errors["country"] = ["required with an address"]
    if errors:
        raise InvalidRequest("Some billing details are not valid.", details=errors)
    return DetailsInput(
        legal_name=data.legal_name.strip(),
        address_line1=data.address_line1.strip(),
        address_line2=data.address_line2.strip(),
        postal_code=data.postal_code.strip(),
        city=data.city.strip(),
        state=data.state.strip(),
        country=country,
        tax_id=data.tax_id,
        invoice_email=email,
    )


def _sync_customer(details: BillingDetails, customer_id: str) -> str:
    """Update the Stripe customer; replace its tax id when it changed. Returns the
    Stripe tax id's id."""
    client = stripe_api.client()
    address: dict[str, Any] = {
        "line1": details.address_line1,
        "line2": details.address_line2,
        "postal_code": details.postal_code,
        "city": details.city,
        "state": details.state,
        "country": details.country,
    }
    params: dict[str, Any] = {"name": details.legal_name or details.workspace.name}
    params["address"] = address if details.country else ""
    if details.invoice_email:
        params["email"] = details.invoice_email
    client.v1.customers.update(customer_id, params)
    current = {
        t.id: (t.type, t.value)
        for t in client.v1.customers.tax_ids.list(customer_id, {"limit": 100}).data
    }
    wanted = (details.tax_id_type, details.tax_id)
    keep = next((tid for tid, v in current.items() if v == wanted), "")
    for tid in current:
        if tid != keep:
            client.v1.customers.tax_ids.delete(customer_id, tid)
    if details.tax_id and not keep:
        created = client.v1.customers.tax_ids.create(
            customer_id, {"type": details.tax_id_type, "value": details.tax_id}
        )
        keep = created.id
    return keep


def billing_details_update(
    *, workspace: Workspace, actor: Membership, data: DetailsInput
) -> BillingDetails:
    if not actor.can(Perm.EDIT_BILLING_DETAILS):
        raise Forbidden("Only owners, admins and finance members can change billing details.")
    clean = _validated(data)
    tax_type, tax_value = normalize_tax_id(clean.country, clean.tax_id)
    details = billing_details(workspace)
    for name, value in clean.__dict__.items():
        setattr(details, name, value)
    details.tax_id, details.tax_id_type = tax_value, tax_type
    if stripe_api.is_configured():
        from billing.services.subscriptions import ensure_customer

        try:
            customer_id = ensure_customer(workspace=workspace, email=clean.invoice_email)
            details.stripe_tax_id_id = _sync_customer(details, customer_id)
        except stripe.InvalidRequestError as exc:
            logger.info("stripe refused billing details: %s", exc.user_message)
            raise InvalidRequest(
                f"Stripe refused these details: {exc.user_message or 'invalid'}",
                details={exc.param or "billing_details": [exc.user_message or "invalid"]},
            ) from None
        except stripe.StripeError as exc:
            logger.warning("stripe customer update failed: %s", type(exc).__name__)
            raise StripeFailed() from exc
        details.synced_at = clock.now()
    with transaction.atomic():
        details.save()
        AuditEvent.objects.create(
            workspace=workspace,
            actor=actor.user,
            action="billing.details_updated",
            target=details.legal_name or workspace.name,
            data={"country": details.country, "tax_id_type": details.tax_id_type},
        )
    return details
