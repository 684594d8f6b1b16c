"""Webhooks as a transactional outbox, with a real broker pulled out from under
them: the broker (a throwaway Redis of this test's own) is stopped while Stripe
delivers and resends; every event is stored and answered 200; once the broker is
back, Stripe's resend and the beat sweeper queue the stored events again, a real
Celery worker runs them, and each is processed exactly once."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
import pytest

from billing.models import StripeEvent, Subscription
from billing.services.subscriptions import ensure_customer
from billing.services.webhooks import events_requeue_unprocessed
from bin.localservices import _port_open, _wait_for, free_port, redis_server_binary
from config.celery import app as celery_app
from tests.billing.helpers import deliver


class Broker:
    """A redis-server on a fixed port that can be stopped and started again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: _port_open(self.port), "redis-server (broker)")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def celery_on(broker_url: str):
    """The app publishes to `broker_url` for real (not eagerly), failing fast."""
    conf = celery_app.conf
    saved = {
        key: conf.get(key)
        for key in (
            "task_always_eager",
            "broker_url",
            "task_publish_retry",
            "broker_transport_options",
            "broker_connection_timeout",
        )
    }
    conf.update(
        task_always_eager=False,
        broker_url=broker_url,
        task_publish_retry=False,
        broker_transport_options={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.1,
        },
        broker_connection_timeout=1,
    )
    _fresh_connections()
    try:
        yield celery_app
    finally:
        conf.update(saved)
        _fresh_connections()


def _fresh_connections() -> None:
    """Forget pooled broker connections so the next publish uses the current URL."""
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_broker_down_while_webhooks_arrive_then_exactly_once(
    transactional_db, client, workspace, stripe_tiers, stripe_env, tmp_path, settings
):
    from celery.contrib.testing.worker import start_worker

    settings.TOLLGATE_WEBHOOK_SWEEP_AFTER_SECONDS = 0
    broker = Broker(tmp_path)
    broker.start()
    try:
        with celery_on(broker.url):
            customer = ensure_customer(workspace=workspace, email="billing@example.com")
            stripe_env.client().v1.subscriptions.create(
                {
                    "customer": customer,
                    "items": [{"price": stripe_tiers["pro"].stripe_price_id}],
                    "metadata": {"workspace_id": str(workspace.pk)},
                }
            )
            events = stripe_env.events()
            assert len(events) >= 5

            broker.stop()  # the plug is pulled while Stripe delivers and resends
            for event in events + events[:3]:  # (+ Stripe's resends of three)
                response = deliver(client, stripe_env, event)
                assert response.status_code == 200, response.content
            assert StripeEvent.objects.count() == len(events)
            assert not StripeEvent.objects.filter(processed_at__isnull=False).exists()
            assert Subscription.objects.get(workspace=workspace).tier is None  # still Free

            broker.start()
            # Stripe resends one event: it is queued again at once…
            assert deliver(client, stripe_env, events[0]).json()["duplicate"] is True
            # …and the beat sweeper queues every stored, unprocessed event.
            assert events_requeue_unprocessed() == len(events)
            with start_worker(celery_app, pool="solo", perform_ping_check=False):
                done = wait_until(
                    lambda: not StripeEvent.objects.filter(processed_at__isnull=True).exists()
                )
            assert done, list(StripeEvent.objects.values("type", "attempts", "last_error"))
    finally:
        broker.stop()

    # Exactly once: the event queued twice ran its handler once.
    assert set(StripeEvent.objects.values_list("attempts", flat=True)) == {1}
    sub = Subscription.objects.get(workspace=workspace)
    assert (sub.tier.slug, sub.status) == ("pro", "active")
    assert events_requeue_unprocessed() == 0
