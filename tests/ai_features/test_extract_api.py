"""POST /api/v1/extractions: validated JSON in exactly the requested fields,
bad input as API errors, a malformed answer retried once and metered."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ai_features.models_features import Extraction
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

INVOICE = (
    "Invoice from ACME.\nvendor: ACME Tools\ntotal: 1,250.50\ndue_date: 2026-03-01\npaid: yes\n"
)
FIELDS = [
    {"name": "vendor", "description": "who issued it", "type": "string"},
    {"name": "total", "description": "amount due", "type": "number"},
    {"name": "due_date", "description": "", "type": "date"},
    {"name": "paid", "description": "", "type": "boolean"},
]


def post(client, body, **extra):
    return client.post(
        "/api/v1/extractions", json.dumps(body), content_type="application/json", **extra
    )


def test_extracts_exactly_the_fields_and_meters_it(
    fake_upstream, rate_card, owner, async_api_client
):
    response = post(async_api_client(owner), {"text": INVOICE, "fields": FIELDS})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "data", "model", "usage"}
    assert body["data"] == {
        "vendor": "ACME Tools",
        "total": 1250.5,
        "due_date": "2026-03-01",
        "paid": True,
    }
    event = UsageEvent.objects.get()
    assert event.feature == "extract"
    assert response["X-Request-Id"] == event.request_id
    assert body["usage"] == {
        "input_tokens": event.input_tokens,
        "cached_input_tokens": event.cached_input_tokens,
        "output_tokens": event.output_tokens,
        "total_tokens": event.total_tokens,
    }
    # Structured outputs were asked for with a strict schema of exactly these fields.
    fmt = fake_upstream.last_request["body"]["response_format"]
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["vendor", "total", "due_date", "paid"]
    assert Extraction.objects.get().data == body["data"]


def test_works_with_an_api_key(fake_upstream, rate_card, owner, workspace, make_key):
    from django.test import Client

    from accounts.models import Membership

    client = Client()
    _key, secret = make_key(Membership.objects.get(user=owner, workspace=workspace))
    response = post(
        client,
        {"text": "total: 3", "fields": [{"name": "total", "type": "number"}]},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 201, response.content
    assert response.json()["data"] == {"total": 3}
    assert UsageEvent.objects.get().api_key_id == _key.pk


BAD_INPUT = (
    ({"text": "", "fields": FIELDS}, "text"),
    ({"text": "   ", "fields": FIELDS}, "text"),
    ({"text": 42, "fields": FIELDS}, "text"),
    ({"text": INVOICE, "fields": []}, "fields"),
    ({"text": INVOICE}, "fields"),
    ({"text": INVOICE, "fields": "vendor"}, "fields"),
    ({"text": INVOICE, "fields": [{"name": "a"}, {"name": "A"}]}, "fields[1].name"),
    ({"text": INVOICE, "fields": [{"name": "a", "type": "money"}]}, "fields[0].type"),
    ({"text": INVOICE, "fields": [{"name": "", "type": "string"}]}, "fields[0].name"),
    ({"text": INVOICE, "fields": [{"name": "a", "description": 5}]}, "fields[0].description"),
    ({"text": INVOICE, "fields": [{"name": f"f{i}"} for i in range(26)]}, "fields"),
    ({"text": INVOICE, "fields": ["vendor"]}, "fields[0]"),
)


def test_bad_input_is_400_naming_the_field(fake_upstream, rate_card, owner, async_api_client):
    client = async_api_client(owner)
    for body, detail in BAD_INPUT:
        response = post(client, body)
        assert response.status_code == 400, (body, response.content)
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert detail in error["details"], (body, error)
    assert not UsageEvent.objects.exists()


def test_malformed_json_body_is_400(owner, async_api_client):
    response = async_api_client(owner).post(
        "/api/v1/extractions", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_oversize_text_is_413(fake_upstream, rate_card, owner, async_api_client):
    response = post(async_api_client(owner), {"text": "x" * 200_001, "fields": FIELDS})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_malformed_answer_is_retried_once_then_502_and_both_attempts_metered(
    fake_upstream, rate_card, owner, async_api_client
):
    # The fake copies "due_date: …" into the date field: not a date, twice.
    response = post(
        async_api_client(owner),
        {"text": "due_date: sometime soon", "fields": [{"name": "due_date", "type": "date"}]},
    )

    assert response.status_code == 502, response.content
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert "counted" in error["message"]
    events = list(UsageEvent.objects.order_by("created_at"))
    assert len(events) == 2
    assert all(e.total_tokens > 0 and e.feature == "extract" for e in events)
    assert error["details"]["usage"]["total_tokens"] == sum(e.total_tokens for e in events)
    assert not Extraction.objects.exists()


def test_uploaded_document_is_the_source(fake_upstream, rate_card, owner, async_api_client):
    upload = SimpleUploadedFile("invoice.txt", INVOICE.encode(), content_type="text/plain")
    response = async_api_client(owner).post(
        "/api/v1/extractions", {"document": upload, "fields": json.dumps(FIELDS[:2])}
    )
    assert response.status_code == 201, response.content
    assert response.json()["data"] == {"vendor": "ACME Tools", "total": 1250.5}
    assert Extraction.objects.get().source_name == "invoice.txt"


def test_unsupported_upload_is_415(fake_upstream, rate_card, owner, async_api_client):
    upload = SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    response = async_api_client(owner).post(
        "/api/v1/extractions", {"document": upload, "fields": json.dumps(FIELDS)}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not UsageEvent.objects.exists()


def test_someone_elses_document_is_404(
    fake_upstream, rate_card, owner, feature_member, async_api_client
):
    from ai_features.models_features import Document

    theirs = Document.objects.create(
        workspace=feature_member.workspace,
        uploaded_by=feature_member.user,
        name="private.txt",
        kind="txt",
        size=5,
        text="total: 5",
    )
    response = post(async_api_client(owner), {"document_id": theirs.pk, "fields": FIELDS})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_feature_not_in_plan_is_403(plan_without_extract_and_chat, owner, async_api_client):
    response = post(async_api_client(owner), {"text": INVOICE, "fields": FIELDS})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "not included" in error["message"]
    assert error["details"]["upgrade_url"]


def test_downloads_csv_and_json(fake_upstream, rate_card, owner, async_api_client, feature_member):
    client = async_api_client(owner)
    extraction_id = post(client, {"text": INVOICE, "fields": FIELDS}).json()["id"]

    csv_response = client.get(f"/extract/runs/{extraction_id}/download.csv")
    assert csv_response.status_code == 200
    assert csv_response.content.decode().splitlines() == [
        "vendor,total,due_date,paid",
        "ACME Tools,1250.5,2026-03-01,True",
    ]
    json_response = client.get(f"/extract/runs/{extraction_id}/download.json")
    assert json.loads(json_response.content)["vendor"] == "ACME Tools"
    # Neither another member of the workspace nor another workspace can read it.
    from tests.factories import MembershipFactory

    for user in (feature_member.user, MembershipFactory(role="owner").user):
        other = async_api_client(user)
        assert other.get(f"/extract/runs/{extraction_id}/download.csv").status_code == 404
        assert other.get(f"/extract/runs/{extraction_id}/").status_code == 404
        assert other.get(f"/api/v1/extractions/{extraction_id}").status_code == 404


def test_idempotency_key_returns_the_first_result_charged_once(
    fake_upstream, rate_card, owner, async_api_client
):
    client = async_api_client(owner)
    body = {"text": INVOICE, "fields": FIELDS}
    first = post(client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    again = post(client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert UsageEvent.objects.count() == 1 and Extraction.objects.count() == 1
    other = post(client, {**body, "text": "total: 1"}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert other.status_code == 400


def test_csv_cells_never_become_formulas(fake_upstream, rate_card, owner, async_api_client):
    client = async_api_client(owner)
    response = post(client, {"text": "vendor: =HYPERLINK(1)", "fields": [{"name": "vendor"}]})
    rows = client.get(f"/extract/runs/{response.json()['id']}/download.csv").content.decode()
    assert rows.splitlines()[1] == "'=HYPERLINK(1)"


def test_a_downgrade_applies_to_the_next_call_before_its_screen(
    metered, fake_upstream, make_member, make_key, settings, redis_client
):
    """The feature pre-check trusts the limits this process keeps, and the meter
    checks the feature again under their current version before it screens or
    reserves: a plan change made a moment ago refuses the very next call."""
    import httpx

    from usage import limits

    _key, secret = make_key(make_member(role="owner"))
    call = lambda text: httpx.post(  # noqa: E731
        f"{metered}/api/v1/extractions",
        json={"text": text, "fields": FIELDS},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=20,
    )
    assert call(INVOICE).status_code == 201
    upstream_calls = fake_upstream.calls

    settings.TOLLGATE_LIMITS_PROVIDER = "tests.fixtures.features.restricted_limits"
    limits._provider.cache_clear()
    try:
        # What billing's bump does, as seen from another process: Redis moves
        # on, this process still holds the old limits.
        redis_client.incr(limits.VERSION_KEY)
        refused = call(INVOICE + "Second page.\n")  # a text the screen hasn't seen
    finally:
        limits._provider.cache_clear()

    assert refused.status_code == 403, refused.text
    assert "not included" in refused.json()["error"]["message"]
    assert fake_upstream.calls == upstream_calls  # neither screened nor sent
    assert Extraction.objects.count() == 1
