"""In-memory state of the fake Stripe account, guarded by one re-entrant lock.

Objects are stored as plain dicts in their API shape, keyed by id. References
to other objects are ids; `render()` expands what the request asked for."""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .errors import invalid, missing

# The account's public details as a new fake Stripe starts with them.
DEFAULT_ACCOUNT = {
    "name": "Tollgate (fake Stripe)",
    "country": "US",
    "address": {
        "line1": None,
        "line2": None,
        "postal_code": None,
        "city": None,
        "state": None,
        "country": "US",
    },
    "tax_id": None,  # {"type": "eu_vat", "value": "DE123456789"}
    "email": None,
}

_ALPHABET = string.ascii_letters + string.digits

# id prefix -> (store kind, human name used in "No such ..." errors)
PREFIXES = {
    "cus_": ("customer", "customer"),
    "prod_": ("product", "product"),
    "price_": ("price", "price"),
    "sub_": ("subscription", "subscription"),
    "si_": ("subscription_item", "subscription item"),
    "in_": ("invoice", "invoice"),
    "ii_": ("invoiceitem", "invoice item"),
    "cs_": ("checkout.session", "checkout.session"),
    "bps_": ("billing_portal.session", "billing portal session"),
    "evt_": ("event", "event"),
    "mtr_": ("billing.meter", "billing meter"),
    "we_": ("webhook_endpoint", "webhook endpoint"),
    "pm_": ("payment_method", "payment method"),
    "txi_": ("tax_id", "tax id"),
    "txr_": ("tax_rate", "tax rate"),
    "di_": ("discount", "discount"),
    "pi_": ("payment_intent", "payment_intent"),
    "ch_": ("charge", "charge"),
    "re_": ("refund", "refund"),
    "cn_": ("credit_note", "credit note"),
}


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, dict[str, dict]] = {}
            self.order: dict[str, float] = {}  # id -> insertion sequence, for stable lists
            self.seq = 0
            self.clock_offset = 0
            self.meter_events: list[dict] = []
            self.meter_identifiers: dict[str, dict] = {}
            self.failing_customers: set[str] = set()
            self.fail_next_payments = 0
            self.pending_events: list[dict] = []  # emitted inside a request, sent after it
            self.idempotency: dict[tuple[str, str], tuple[str, int, bytes]] = {}
            self.faults: list[dict] = []
            self.pending_updates: dict[str, dict] = {}  # sub id -> held item change
            self.checkout_lines: dict[str, list[dict]] = {}
            # The account's public details (invoice PDFs) and tax per customer country.
            self.account: dict = copy.deepcopy(DEFAULT_ACCOUNT)
            self.tax_rates: dict[str, str] = {}  # "DE" -> "19"

    # --- time -------------------------------------------------------------------

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    # --- objects ----------------------------------------------------------------

    def add(self, kind: str, obj: dict) -> dict:
        self.seq += 1
        self.objects.setdefault(kind, {})[obj["id"]] = obj
        self.order[obj["id"]] = self.seq
        return obj

    def get(self, kind: str, object_id: Any, param: str = "id") -> dict:
        obj = self.objects.get(kind, {}).get(object_id) if isinstance(object_id, str) else None
        if obj is None:
            name = next((n for k, n in PREFIXES.values() if k == kind), kind)
            raise missing(name, str(object_id), param)
        return obj

    def find(self, kind: str) -> list[dict]:
        """All objects of a kind, newest first (Stripe's list order)."""
        objs = self.objects.get(kind, {}).values()
        return sorted(objs, key=lambda o: self.order[o["id"]], reverse=True)

    def lookup(self, object_id: str) -> dict | None:
        for prefix, (kind, _) in PREFIXES.items():
            if object_id.startswith(prefix):
                return self.objects.get(kind, {}).get(object_id)
        # Custom ids (`POST /v1/products id=tier_pro`) have no prefix.
        return next((objs[object_id] for objs in self.objects.values() if object_id in objs), None)

    # --- rendering --------------------------------------------------------------

    def render(self, obj: dict, expand: Iterable[str] = ()) -> dict:
        """A deep copy of `obj` with the requested `expand[]` paths resolved."""
        out = {k: v for k, v in copy.deepcopy(obj).items() if not k.startswith("_")}
        for path in expand:
            out = self._expand(out, path.split("."))
        return out

    def _expand(self, node: Any, parts: list[str]) -> Any:
        if not parts or not isinstance(node, dict):
            return node
        head, rest = parts[0], parts[1:]
        if head == "data" and isinstance(node.get("data"), list):
            node["data"] = [self._expand(item, rest) for item in node["data"]]
            return node
        value = node.get(head)
        if isinstance(value, str):
            target = self.lookup(value)
            if target is None:
                return node
            value = self.render(target)
        node[head] = self._expand(value, rest) if rest else value
        return node


def paginate(
    objects: list[dict],
    params: dict,
    url: str,
    render: Callable[[dict], dict],
) -> dict:
    """Stripe's cursor pagination: `limit` (1..100, default 10), `starting_after`,
    `ending_before`, newest first."""
    from .forms import get_int

    limit = get_int(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit")
    ids = [o["id"] for o in objects]
    start, end = 0, len(objects)
    if params.get("starting_after"):
        start = _cursor_index(ids, params["starting_after"], "starting_after") + 1
    if params.get("ending_before"):
        end = _cursor_index(ids, params["ending_before"], "ending_before")
        start = max(start, end - limit)
    page = objects[start:end][:limit]
    has_more = (start + len(page)) < end if not params.get("ending_before") else start > 0
    return {
        "object": "list",
        "data": [render(o) for o in page],
        "has_more": has_more,
        "url": url,
    }


def _cursor_index(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise missing("object", cursor, param) from None
