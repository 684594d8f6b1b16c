"""Reconciliation against the loopback upstream's organization Usage and Costs
APIs, read with the real openai SDK (admin key); the ledger is filled by real
metered feature calls through the ASGI app."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth import get_user_model

from billing import upstream_admin
from billing.models import OperatorNotice, ReconciliationRun
from billing.services.reconciliation import reconcile_day
from config import clock
from standins.fake_openai.org_billing import key_id

TEXT = "Tollgate meters every token. " * 20
ADMIN_KEY = "sk-admin-" + "fake-tollgate-admin-key"


@pytest.fixture
def admin_api(settings, fake_upstream):
    settings.OPENAI_ADMIN_KEY = ADMIN_KEY
    settings.OPENAI_ADMIN_BASE_URL = fake_upstream.base_url
    settings.OPENAI_UPSTREAM_KEY_ID = key_id(fake_upstream.api_key)
    return fake_upstream


def _operator():
    return get_user_model().objects.create_user(
        email="ops@example.com", password="x", is_staff=True
    )


def _summarize(base: str, secret: str, n: int) -> None:
    for i in range(n):
        response = httpx.post(
            f"{base}/api/v1/summaries",
            json={"text": f"{TEXT} #{i}", "length": "short"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=20,
        )
        assert response.status_code == 201, response.text


def test_a_matching_day_then_injected_disagreement_alerted_once(
    metered, admin_api, make_member, make_key, mailoutbox
):
    _operator()
    _key, secret = make_key(make_member())
    _summarize(metered, secret, 3)
    today = clock.now().date()
    admin_api.fail_next("500", endpoint="org")  # the SDK retries the usage fetch

    run = reconcile_day(day=today)

    assert (run.status, run.max_drift_percent) == ("matched", Decimal(0))
    assert run.grouped_by == "day x model x key"
    assert run.our_requests == run.their_requests == 3
    (line,) = run.lines.all()
    assert line.upstream_scope == key_id(admin_api.api_key)
    assert line.differences() == {
        "requests": 0,
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "output_tokens": 0,
    }
    # The upstream's float, taken through str(): equal to the ledger to 1e-8 USD.
    assert abs(line.upstream_cost - line.ledger_cost) < Decimal("0.00000002")
    assert run.upstream_cost > 0 and not mailoutbox

    admin_api.state.org.faults = {"drop_requests": 1, "extra_input_tokens": 500}
    drifted = reconcile_day(day=today)
    again = reconcile_day(day=today)  # the nightly retry or a re-run: no second email

    assert drifted.pk == again.pk and drifted.status == "drift"
    (line,) = again.lines.all()
    assert line.their_requests == line.our_requests - 1
    assert line.differences()["requests"] == -1
    assert line.differences()["input_tokens"] > 0  # 500 extra minus the dropped call's
    assert again.max_drift_percent > Decimal(1)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ops@example.com"]
    assert "drift" in mailoutbox[0].subject.lower() and str(today) in mailoutbox[0].subject
    assert ReconciliationRun.objects.get().alerted_at is not None


def test_usage_pages_follow_next_page_with_the_sdk(admin_api, db):
    admin_api.state.org.record(
        at=(clock.now() - timedelta(days=2)).timestamp(),
        model="gpt-4o-mini",
        key=admin_api.api_key,
        usage={"prompt_tokens": 10, "completion_tokens": 5},
    )
    start = int((clock.now() - timedelta(days=4)).timestamp())
    api = upstream_admin.client().admin.organization.usage
    pages = list(
        upstream_admin._pages(
            api.completions, {"start_time": start, "bucket_width": "1d", "limit": 2}
        )
    )
    assert len(pages) >= 2 and pages[0].has_more and pages[0].next_page
    buckets = [b for page in pages for b in page.data]
    assert sum(r.num_model_requests for b in buckets for r in b.results) == 1
    assert admin_api.last_request is None or "admin" not in str(admin_api.last_request)


def test_without_an_admin_key_it_says_so_once_and_skips(
    settings, db, mailoutbox, django_capture_on_commit_callbacks
):
    settings.OPENAI_ADMIN_KEY = ""
    _operator()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert reconcile_day(day=clock.now().date()) is None
    assert len(mailoutbox) == 1 and "OPENAI_ADMIN_KEY" in mailoutbox[0].subject
    assert OperatorNotice.objects.filter(kind="no_admin_key").count() == 1
    assert not ReconciliationRun.objects.exists()
