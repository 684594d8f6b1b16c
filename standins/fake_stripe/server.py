"""The HTTP side: a threaded server speaking Stripe's wire format on /v1, hosted
pages on /c (Checkout), /p (Portal), /i (invoices), and test controls on /_control."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import traceback
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import checkout, pages
from .context import Ctx
from .errors import StripeFakeError
from .events import API_VERSION, Deliverer, sign
from .forms import decode
from .metering import meter_for_event, meter_total
from .routes import Rendered, api_routes
from .state import State, new_id
from .subscriptions import advance, exhaust_retries


class FakeStripe:
    """A stateful Stripe-compatible server. `with FakeStripe() as fake:` runs it on a
    free loopback port; point `StripeClient(..., base_addresses={"api": fake.url})` at it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        public_url: str | None = None,
        webhook_attempts: int = 1,
        quiet: bool = True,
    ) -> None:
        self.state = State()
        self.deliverer = Deliverer(attempts=webhook_attempts)
        self.api_key = api_key
        self.quiet = quiet
        self.routes = api_routes(self.deliverer)
        self.httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self.httpd.daemon_threads = True
        self.url = public_url or f"http://{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None
        self._pdfs: dict[str, bytes] = {}  # rendered once per document (not state)

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> FakeStripe:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            args=(0.05,),
            name="stripe-fake-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.deliverer.flush(timeout=5)
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- test controls (also reachable over HTTP under /_control) ----------------

    def reset(self) -> None:
        """Forget every object, event, endpoint and queued failure."""
        self.deliverer.reset()
        self.state.reset()
        self._pdfs.clear()

    def add_webhook_endpoint(self, url: str, secret: str, events: list[str] | None = None):
        return self.deliverer.add_endpoint(url, secret, events)

    def flush(self, timeout: float = 30) -> bool:
        """Wait until every webhook queued so far has been delivered (or failed)."""
        return self.deliverer.flush(timeout)

    def advance(self, subscription_id: str) -> dict:
        """Move a subscription to its next billing period (a test clock)."""
        return self._run(lambda: advance(self.state, subscription_id, self.url))

    def configure_account(self, **details) -> dict:
        """The account's public details (name, country, address dict, tax_id
        {"type","value"}, email), as printed on invoice PDFs."""
        from .finance import configure_account

        with self.state.lock:
            return dict(configure_account(self.state, **details))

    def set_tax_rate(self, country: str, percentage: str | None) -> None:
        """Tax (exclusive) for customers whose address is in `country`; None removes it."""
        from .finance import set_tax_rate

        with self.state.lock:
            set_tax_rate(self.state, country, percentage)

    def pdf(self, object_id: str) -> bytes:
        """The PDF of a finalized invoice (`in_…`) or a credit note (`cn_…`)."""
        from .invoice_pdf import credit_note_html, invoice_html, render_pdf

        if object_id not in self._pdfs:
            with self.state.lock:
                if object_id.startswith("cn_"):
                    html = credit_note_html(self.state, self.state.get("credit_note", object_id))
                else:
                    invoice = self.state.get("invoice", object_id)
                    if invoice["status"] == "draft":
                        raise StripeFakeError(404, "A draft invoice has no PDF.")
                    html = invoice_html(self.state, invoice)
            self._pdfs[object_id] = render_pdf(html)
        return self._pdfs[object_id]

    def exhaust_retries(self, subscription_id: str) -> dict:
        """past_due → unpaid, as when Stripe's last payment retry fails."""
        return self._run(lambda: exhaust_retries(self.state, subscription_id))

    def fail_next_payment(self, count: int = 1) -> None:
        with self.state.lock:
            self.state.fail_next_payments += count

    def set_card_failing(self, customer_id: str, fails: bool = True) -> None:
        with self.state.lock:
            self.state.get("customer", customer_id)
            if fails:
                self.state.failing_customers.add(customer_id)
            else:
                self.state.failing_customers.discard(customer_id)

    def events(self, type: str | None = None) -> list[dict]:
        """Every event so far, oldest first (optionally one type)."""
        with self.state.lock:
            found = self.state.find("event")[::-1]
            return [self.state.render(e) for e in found if type in (None, e["type"])]

    @property
    def deliveries(self) -> list[dict]:
        return list(self.deliverer.deliveries)

    def resend(self, event_id: str) -> None:
        with self.state.lock:
            event = self.state.get("event", event_id)
        self.deliverer.enqueue([event])

    def signed_payload(self, event: dict, secret: str) -> tuple[bytes, str]:
        """(body, Stripe-Signature header) exactly as a webhook delivery would send."""
        payload = json.dumps(event, indent=2)
        return payload.encode(), sign(payload, secret)

    def meter_total(self, customer_id: str, event_name: str) -> Decimal:
        """Sum of the customer's meter events for `event_name` (duplicates counted once)."""
        with self.state.lock:
            meter = meter_for_event(self.state, event_name)
            return meter_total(self.state, meter_id=meter["id"], customer_id=customer_id)

    def client(self, api_key: str = "sk_test_fake_tollgate", **options):
        """A real `stripe.StripeClient` pointed at this server."""
        import stripe

        base = {"api": self.url, "meter_events": self.url, "files": self.url, "connect": self.url}
        return stripe.StripeClient(api_key, base_addresses=base, **options)

    def inject_fault(self, status: int = 500, path_prefix: str = "/v1/", count: int = 1) -> None:
        """The next `count` API requests under `path_prefix` answer `status`."""
        with self.state.lock:
            self.state.faults.append({"status": status, "prefix": path_prefix, "count": count})

    def _run(self, action):
        with self.state.lock:
            try:
                return action()
            finally:
                self._release_events()

    def _release_events(self) -> None:
        events, self.state.pending_events = self.state.pending_events, []
        self.deliverer.enqueue(events)


def _handler_class(fake: FakeStripe):
    class Handler(_Handler):
        server_fake = fake

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeStripe

    def log_message(self, format: str, *args) -> None:
        if not self.server_fake.quiet:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ---------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        try:
            if split.path.startswith("/v1/"):
                self._api(method, split.path, split.query, body)
            elif split.path.startswith("/_control/"):
                self._control(method, split.path, split.query, body)
            elif split.path == "/healthz":
                self._send(200, b'{"ok": true}', "application/json")
            else:
                self._page(method, split.path, body)
        except StripeFakeError as exc:
            self._json(exc.status, exc.as_json())
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"error": {"type": "api_error", "message": f"Fake Stripe bug: {exc}"}})

    def _send(self, status: int, data: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        data = json.dumps(payload, indent=2, default=str).encode()
        self._send(status, data, "application/json", headers)

    def _html(self, status: int, html: str) -> None:
        self._send(status, html.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(303, b"", "text/plain", {"Location": location})

    # --- /v1 --------------------------------------------------------------------

    def _api(self, method: str, path: str, query: str, body: str) -> None:
        fake = self.server_fake
        self._authenticate()
        params = decode(query if method in ("GET", "DELETE") else body or query)
        handler, args = self._route(method, path)
        idem_key = self.headers.get("Idempotency-Key") if method == "POST" else None
        with fake.state.lock:
            self._check_faults(path)
            if idem_key:
                replay = self._replay(idem_key, method, path, body)
                if replay:
                    return self._send(
                        replay[0], replay[1], "application/json", {"Idempotent-Replayed": "true"}
                    )
            status, payload = self._call(handler, Ctx(fake.state, params, fake.url, path, args))
            data = json.dumps(payload, indent=2, default=str).encode()
            if idem_key:
                fingerprint = hashlib.sha256(f"{method} {path} {body}".encode()).hexdigest()
                fake.state.idempotency[(self._api_key, idem_key)] = (fingerprint, status, data)
        headers = {"Request-Id": new_id("req_", 14), "Stripe-Version": API_VERSION}
        self._send(status, data, "application/json", headers)

    def _call(self, handler, ctx: Ctx) -> tuple[int, dict]:
        try:
            result = handler(ctx)
            if isinstance(result, Rendered) or result.get("object") in ("list", "search_result"):
                return 200, dict(result)
            return 200, ctx.render(result)
        except StripeFakeError as exc:
            return exc.status, exc.as_json()
        finally:
            self.server_fake._release_events()

    @property
    def _api_key(self) -> str:
        auth = self.headers.get("Authorization") or ""
        return auth.removeprefix("Bearer ").strip()

    def _authenticate(self) -> None:
        key = self._api_key
        expected = self.server_fake.api_key
        if not key:
            raise StripeFakeError(
                401, "You did not provide an API key. Provide it as a Bearer token."
            )
        if (expected and key != expected) or not key.startswith(("sk_test_", "rk_test_")):
            raise StripeFakeError(
                401,
                f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}",
                code="api_key_invalid",
            )

    def _route(self, method: str, path: str):
        allowed = False
        for route_method, pattern, handler in self.server_fake.routes:
            match = pattern.match(path)
            if match:
                allowed = True
                if route_method == method:
                    return handler, match.groupdict()
        if allowed:
            raise StripeFakeError(405, f"Method {method} is not allowed on {path}.")
        raise StripeFakeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _check_faults(self, path: str) -> None:
        faults = self.server_fake.state.faults
        for fault in faults:
            if path.startswith(fault["prefix"]) and fault["count"] > 0:
                fault["count"] -= 1
                raise StripeFakeError(
                    fault["status"], "An injected fault (fake Stripe).", type="api_error"
                )

    def _replay(self, key: str, method: str, path: str, body: str):
        stored = self.server_fake.state.idempotency.get((self._api_key, key))
        if stored is None:
            return None
        fingerprint = hashlib.sha256(f"{method} {path} {body}".encode()).hexdigest()
        if stored[0] != fingerprint:
            raise StripeFakeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
                type="idempotency_error",
            )
        return stored[1], stored[2]

    # --- /_control --------------------------------------------------------------

    def _control(self, method: str, path: str, query: str, body: str) -> None:
        fake = self.server_fake
        data = json.loads(body) if body.strip() else {}
        args = dict(parse_qsl(query))
        for route_method, pattern, action in _CONTROL:
            match = re.match(f"^/_control{pattern}$", path)
            if match and route_method == method:
                result = action(fake, data | args, *match.groups())
                return self._json(200, result if result is not None else {"ok": True})
        raise StripeFakeError(404, f"Unknown control endpoint ({method}: {path}).")

    # --- hosted pages -----------------------------------------------------------

    def _page(self, method: str, path: str, body: str) -> None:
        fake = self.server_fake
        form = dict(parse_qsl(body))
        for route_method, pattern, action in _PAGES:
            match = re.match(f"^{pattern}$", path)
            if match and route_method == method:
                return action(self, fake, form, *match.groups())
        self._html(404, pages.layout("Not found", "<h1>Not found</h1>"))


# --- control actions -----------------------------------------------------------------


def _control_endpoint(fake: FakeStripe, data: dict) -> dict:
    return fake.add_webhook_endpoint(data["url"], data["secret"], data.get("events")).as_json()


def _control_events(fake: FakeStripe, data: dict) -> dict:
    return {"data": fake.events(data.get("type")), "deliveries": fake.deliveries}


def _control_meter_total(fake: FakeStripe, data: dict) -> dict:
    return {"total": str(fake.meter_total(data["customer"], data["event_name"]))}


_CONTROL = [
    ("POST", "/reset", lambda f, d: f.reset()),
    ("POST", "/webhook_endpoints", _control_endpoint),
    ("GET", "/webhook_endpoints", lambda f, d: [e.as_json() for e in f.deliverer.endpoints]),
    ("POST", "/webhooks/flush", lambda f, d: {"flushed": f.flush(float(d.get("timeout", 30)))}),
    ("GET", "/events", _control_events),
    ("POST", r"/events/([A-Za-z0-9_]+)/resend", lambda f, d, i: f.resend(i)),
    ("POST", r"/subscriptions/([A-Za-z0-9_]+)/advance", lambda f, d, i: f.advance(i)),
    (
        "POST",
        r"/subscriptions/([A-Za-z0-9_]+)/exhaust_retries",
        lambda f, d, i: f.exhaust_retries(i),
    ),
    ("POST", "/payments/fail_next", lambda f, d: f.fail_next_payment(int(d.get("count", 1)))),
    (
        "POST",
        r"/customers/([A-Za-z0-9_]+)/card",
        lambda f, d, i: f.set_card_failing(i, bool(d.get("fails", True))),
    ),
    ("GET", "/meter_totals", _control_meter_total),
    ("POST", "/account", lambda f, d: f.configure_account(**d)),
    ("POST", "/tax_rates", lambda f, d: f.set_tax_rate(d["country"], d.get("percentage"))),
    (
        "POST",
        "/faults",
        lambda f, d: f.inject_fault(
            int(d.get("status", 500)), d.get("path_prefix", "/v1/"), int(d.get("count", 1))
        ),
    ),
]


# --- page actions ----------------------------------------------------------------------


def _checkout_get(handler: _Handler, fake: FakeStripe, form: dict, session_id: str) -> None:
    with fake.state.lock:
        session = fake.state.get("checkout.session", session_id)
        lines = fake.state.checkout_lines[session_id]
        handler._html(200, pages.checkout_page(fake.state, session, lines))


def _checkout_pay(handler: _Handler, fake: FakeStripe, form: dict, session_id: str) -> None:
    """Pay, then wait for the webhooks to be delivered before redirecting, so the
    success page sees the subscription (as it usually does with real Stripe)."""

    def pay():
        session = fake.state.get("checkout.session", session_id)
        error = checkout.complete_checkout(
            fake.state, session, fake.url, form.get("card", ""), form.get("email", "")
        )
        return session, error

    session, error = fake._run(pay)
    if error:
        with fake.state.lock:
            lines = fake.state.checkout_lines[session_id]
            return handler._html(402, pages.checkout_page(fake.state, session, lines, error))
    fake.flush()
    handler._redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))


def _portal_get(handler: _Handler, fake: FakeStripe, form: dict, session_id: str, **notes):
    with fake.state.lock:
        session = fake.state.get("billing_portal.session", session_id)
        handler._html(200, pages.portal_page(fake.state, session, **notes))


def _portal_action(action: str):
    def run(handler: _Handler, fake: FakeStripe, form: dict, session_id: str, sub_id: str):
        def change():
            session = fake.state.get("billing_portal.session", session_id)
            checkout.portal_set_cancel(fake.state, session, sub_id, action == "cancel")

        fake._run(change)
        fake.flush()
        message = "Your plan was canceled." if action == "cancel" else "Your plan was renewed."
        _portal_get(handler, fake, form, session_id, message=message)

    return run


def _portal_card(handler: _Handler, fake: FakeStripe, form: dict, session_id: str) -> None:
    def change():
        session = fake.state.get("billing_portal.session", session_id)
        return checkout.portal_update_card(fake.state, session, form.get("card", ""))

    error = fake._run(change)
    fake.flush()
    notes = {"error": error} if error else {"message": "Your card was updated."}
    _portal_get(handler, fake, form, session_id, **notes)


def _pdf_get(handler: _Handler, fake: FakeStripe, form: dict, object_id: str) -> None:
    handler._send(200, fake.pdf(object_id), "application/pdf")


def _invoice_get(handler: _Handler, fake: FakeStripe, form: dict, invoice_id: str) -> None:
    with fake.state.lock:
        invoice = fake.state.get("invoice", invoice_id)
        handler._html(200, pages.invoice_page(fake.state, invoice))


_PAGES = [
    ("GET", r"/c/pay/([A-Za-z0-9_]+)", _checkout_get),
    ("POST", r"/c/pay/([A-Za-z0-9_]+)", _checkout_pay),
    ("GET", r"/p/session/([A-Za-z0-9_]+)", _portal_get),
    (
        "POST",
        r"/p/session/([A-Za-z0-9_]+)/subscriptions/([A-Za-z0-9_]+)/cancel",
        _portal_action("cancel"),
    ),
    (
        "POST",
        r"/p/session/([A-Za-z0-9_]+)/subscriptions/([A-Za-z0-9_]+)/renew",
        _portal_action("renew"),
    ),
    ("POST", r"/p/session/([A-Za-z0-9_]+)/card", _portal_card),
    ("GET", r"/i/([A-Za-z0-9_]+)", _invoice_get),
    ("GET", r"/i/([A-Za-z0-9_]+)/pdf", _pdf_get),
    ("GET", r"/cn/([A-Za-z0-9_]+)/pdf", _pdf_get),
]
