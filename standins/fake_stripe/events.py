"""Events and webhook delivery with real `Stripe-Signature` headers.

Events are recorded inside the request that caused them and handed to a single
delivery thread once the state lock is released, so a webhook handler may call
back into this server (to re-fetch the object) without deadlocking. Delivery is
in order; `flush()` waits until everything queued has been attempted."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from .state import State, new_id

API_VERSION = "2026-10-28.endive"


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value: `t=<unix>,v1=<hex hmac-sha256>`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def emit(state: State, event_type: str, obj: dict, previous: dict | None = None) -> dict:
    """Record an event (caller holds the lock); it is delivered after the request."""
    data: dict = {"object": state.render(obj)}
    if previous is not None:
        data["previous_attributes"] = changed_attributes(previous, data["object"])
    event = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": state.now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": new_id("req_", 14), "idempotency_key": None},
        "type": event_type,
    }
    state.add("event", event)
    state.pending_events.append(event)
    return event


def changed_attributes(before: dict, after: dict) -> dict:
    return {k: v for k, v in before.items() if after.get(k) != v}


@dataclass
class Endpoint:
    url: str
    secret: str
    id: str = field(default_factory=lambda: new_id("we_"))
    enabled_events: list[str] = field(default_factory=lambda: ["*"])

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "secret": self.secret,
            "enabled_events": self.enabled_events,
            "status": "enabled",
            "api_version": API_VERSION,
            "livemode": False,
        }


class Deliverer:
    """One background thread POSTing events to endpoints, in order."""

    def __init__(self, *, attempts: int = 1, backoff: float = 0.5, timeout: float = 30) -> None:
        self.endpoints: list[Endpoint] = []
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.deliveries: list[dict] = []  # one row per attempt, for tests to inspect
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stripe-fake-webhooks", daemon=True)
        self._thread.start()

    def add_endpoint(self, url: str, secret: str, events: list[str] | None = None) -> Endpoint:
        endpoint = Endpoint(url=url, secret=secret, enabled_events=events or ["*"])
        with self._lock:
            self.endpoints.append(endpoint)
        return endpoint

    def reset(self) -> None:
        self.flush()
        with self._lock:
            self.endpoints.clear()
            self.deliveries.clear()

    def enqueue(self, events: list[dict]) -> None:
        with self._lock:
            targets = list(self.endpoints)
        for event in events:
            for endpoint in targets:
                if endpoint.wants(event["type"]):
                    event["pending_webhooks"] += 1
                    self._queue.put((event, endpoint))

    def flush(self, timeout: float = 30) -> bool:
        """Wait until every queued delivery has been attempted."""
        done = threading.Event()
        self._queue.put((None, done))
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            event, target, *attempt = self._queue.get()
            if event is None:
                target.set()
                continue
            if target not in self.endpoints:  # removed by a reset meanwhile
                continue
            self._deliver(event, target, attempt[0] if attempt else 1)

    def _deliver(self, event: dict, endpoint: Endpoint, attempt: int) -> None:
        """One attempt; a failure is retried later (out of order, as Stripe does) so a
        receiver that is down does not hold up the events behind it."""
        status, error = self._post(endpoint, json.dumps(event, indent=2))
        with self._lock:
            self.deliveries.append(
                {
                    "event": event["id"],
                    "type": event["type"],
                    "url": endpoint.url,
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                }
            )
        if status is not None and 200 <= status < 300:
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        elif attempt < self.attempts:
            retry = threading.Timer(
                self.backoff * 2 ** (attempt - 1),
                self._queue.put,
                args=((event, endpoint, attempt + 1),),
            )
            retry.daemon = True
            retry.start()

    def _post(self, endpoint: Endpoint, payload: str) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - URLs come from the test/dev config
            endpoint.url,
            data=payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(payload, endpoint.secret),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")[:500]
        except OSError as exc:
            return None, str(exc)
