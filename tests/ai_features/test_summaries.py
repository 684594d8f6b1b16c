"""POST/GET /api/v1/summaries end to end: the real ASGI app, the real openai
SDK against the fake upstream, PostgreSQL and Redis."""

from __future__ import annotations

import httpx
import pytest

from ai_features.models import Summary
from usage.models import UsageCounter, UsageEvent

TEXT = (
    "Tollgate meters every token through one operator key. Workspaces buy tiers. "
    "Quotas, caps and rate limits hold under concurrency."
)


def post(base, secret, json=None, **kwargs):
    headers = {"Authorization": f"Bearer {secret}", **kwargs.pop("headers", {})}
    return httpx.post(f"{base}/api/v1/summaries", json=json, headers=headers, timeout=20, **kwargs)


def test_summarize_json_charges_once_and_stores_the_result(metered, make_member, make_key):
    member = make_member()
    _key, secret = make_key(member)

    response = post(metered, secret, {"text": TEXT, "length": "short", "format": "bullets"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "summary", "model", "usage"}
    assert body["summary"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    event = UsageEvent.objects.get()
    assert response.headers["X-Request-Id"] == event.request_id
    assert (event.status, event.feature, event.total_tokens) == (
        "ok",
        "summarize",
        usage["total_tokens"],
    )
    assert event.cost > 0
    assert event.user_id == member.user_id and event.api_key_id == _key.pk
    counter = UsageCounter.objects.get(scope="workspace", scope_id=member.workspace_id)
    assert (counter.used, counter.reserved) == (usage["total_tokens"], 0)
    summary = Summary.objects.get(pk=body["id"])
    assert summary.request_id == event.request_id

    again = httpx.get(
        f"{metered}/api/v1/summaries/{body['id']}",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert again.status_code == 200
    assert again.json()["summary"] == body["summary"]


def test_summarize_an_uploaded_document(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    files = {"document": ("notes.md", TEXT.encode(), "text/markdown")}
    response = post(metered, secret, data={"length": "medium"}, files=files)
    assert response.status_code == 201, response.text
    assert Summary.objects.get().source == "notes.md"


def test_an_unsupported_upload_is_415(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    files = {"document": ("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")}
    response = post(metered, secret, data={"length": "short"}, files=files)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"text": ""}, 400, "invalid_request", "text"),
        ({"text": TEXT, "length": "epic"}, 400, "invalid_request", "length"),
        ({"text": TEXT, "format": "haiku"}, 400, "invalid_request", "format"),
        ({"text": "x" * 200_001}, 413, "payload_too_large", None),
    ],
)
def test_bad_input_is_a_clear_error_and_costs_nothing(
    metered, make_member, make_key, payload, status, code, field
):
    _key, secret = make_key(make_member())
    response = post(metered, secret, payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    if field:
        assert field in error["details"]
    assert not UsageEvent.objects.exists()


def test_malformed_json_and_wrong_media_type(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    bad = post(metered, secret, content=b"{nope", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request")
    xml = post(metered, secret, content=b"<x/>", headers={"Content-Type": "application/xml"})
    assert (xml.status_code, xml.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_a_broken_multipart_body_is_400(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    response = post(
        metered,
        secret,
        content=b'--xyz\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello',
        headers={"Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_no_credentials_and_unknown_key(metered):
    anonymous = httpx.post(f"{metered}/api/v1/summaries", json={"text": TEXT})
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (
        401,
        "authentication_required",
    )
    unknown = post(metered, "tg_live_" + "x" * 43, {"text": TEXT})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "invalid_api_key")


def test_summaries_of_another_workspace_are_404(metered, make_member, make_key):
    _a, secret_a = make_key(make_member())
    _b, secret_b = make_key(make_member())
    created = post(metered, secret_b, {"text": TEXT}).json()

    theirs = httpx.get(
        f"{metered}/api/v1/summaries/{created['id']}",
        headers={"Authorization": f"Bearer {secret_a}"},
    )
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "not_found")
    garbage = httpx.get(
        f"{metered}/api/v1/summaries/not-a-uuid", headers={"Authorization": f"Bearer {secret_a}"}
    )
    assert garbage.status_code == 404


def test_the_openapi_schema_describes_the_feature_endpoints(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/summaries", "/api/v1/summaries/{id}", "/api/v1/keys", "/api/v1/quota"} <= set(
        paths
    )


def test_a_summary_is_private_to_its_person(metered, workspace, make_member, make_key):
    """Like documents and chats: an admin of the same workspace gets 404."""
    _m, mine = make_key(make_member(workspace=workspace, role="member"))
    _a, admins = make_key(make_member(workspace=workspace, role="admin"))
    created = post(metered, mine, {"text": TEXT}).json()
    own = httpx.get(
        f"{metered}/api/v1/summaries/{created['id']}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert own.status_code == 200
    other = httpx.get(
        f"{metered}/api/v1/summaries/{created['id']}", headers={"Authorization": f"Bearer {admins}"}
    )
    assert (other.status_code, other.json()["error"]["code"]) == (404, "not_found")
