"""NUL, lone surrogates and out-of-range numbers on every text and number field
of the API: 400 invalid_request naming the field, before anything is
reserved or sent upstream, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from usage.models import Reservation, UsageEvent

pytestmark = pytest.mark.slow

NUL, SURROGATE = "\\u0000", "\\ud800"  # as they arrive: JSON escapes


TEXT_FIELDS = [
    # (method, path, JSON body with {bad} where the bad text goes, field named)
    ("POST", "/api/v1/summaries", '{"text": "a{bad}b"}', "text"),
    ("POST", "/api/v1/summaries", '{"text": "ok", "length": "{bad}"}', "length"),
    ("POST", "/api/v1/features/summarize/runs", '{"text": "a{bad}b"}', "text"),
    (
        "POST",
        "/api/v1/extractions",
        '{"text": "a{bad}", "fields": [{"name": "n", "type": "string"}]}',
        "text",
    ),
    (
        "POST",
        "/api/v1/extractions",
        '{"text": "t", "fields": [{"name": "n{bad}", "type": "string"}]}',
        "fields[0].name",
    ),
    (
        "POST",
        "/api/v1/extractions",
        '{"text": "t", "fields": [{"name": "n", "type": "string", "description": "d{bad}"}]}',
        "fields[0].description",
    ),
    ("POST", "/api/v1/chats", '{"title": "t{bad}"}', "title"),
    ("PATCH", "/api/v1/chats/{chat}", '{"title": "t{bad}"}', "title"),
    ("POST", "/api/v1/chats/{chat}/messages", '{"content": "c{bad}"}', "content"),
    ("POST", "/api/v1/chats/{chat}/messages", '{"content": "c{bad}", "stream": true}', "content"),
    ("POST", "/api/v1/keys", '{"name": "k{bad}"}', "name"),
    ("POST", "/api/v1/summaries", '{"te{bad}xt": "x"}', "te"),  # a field NAME
]

NUMBERS = [
    ("POST", "/api/v1/keys", {"name": "k", "token_cap": 2**63}, "token_cap"),
    ("POST", "/api/v1/keys", {"name": "k", "rpm_limit": 2**31}, "rpm_limit"),
    ("POST", "/api/v1/keys", {"name": "k", "tpm_limit": 2**31}, "tpm_limit"),
    ("POST", "/api/v1/keys", {"name": "k", "rpm_limit": 10**30}, "rpm_limit"),
    ("PATCH", "/api/v1/keys/{key}", {"token_cap": 2**64}, "token_cap"),
    ("PATCH", "/api/v1/keys/{key}", {"tpm_limit": 2**40}, "tpm_limit"),
    ("POST", "/api/v1/extractions", {"document_id": 2**70, "fields": []}, "document_id"),
]


@pytest.fixture
def api(metered, owner, workspace, make_key):
    from accounts.models import Membership

    key, secret = make_key(Membership.objects.get(user=owner, workspace=workspace))
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    chat = httpx.post(f"{metered}/api/v1/chats", json={}, headers=headers).json()["id"]
    return metered, headers, {"chat": chat, "key": key.pk}


def _assert_refused(response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(field in name for name in error["details"]), error


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_unstorable_text_in_every_field_is_a_400_naming_it(api, fake_upstream, bad):
    base, headers, ids = api
    for method, path, body, field in TEXT_FIELDS:
        url = base + path.format(**ids)
        response = httpx.request(method, url, content=body.replace("{bad}", bad), headers=headers)
        _assert_refused(response, field)
    assert (
        fake_upstream.calls.get("chat", 0) == 0 and fake_upstream.calls.get("moderations", 0) == 0
    )
    assert not Reservation.objects.exists() and not UsageEvent.objects.exists()


def test_numbers_out_of_their_range_are_a_400(api, fake_upstream):
    base, headers, ids = api
    for method, path, body, field in NUMBERS:
        url = base + path.format(**ids)
        _assert_refused(
            httpx.request(method, url, content=json.dumps(body), headers=headers), field
        )
    assert fake_upstream.calls.get("chat", 0) == 0


def test_multipart_fields_and_documents_are_checked_too(api, fake_upstream):
    base, headers, _ids = api
    auth = {"Authorization": headers["Authorization"]}
    cases = [
        ({"text": "a\x00b"}, None, "text"),
        ({"length": "short\x00"}, {"document": ("a.txt", b"hello", "text/plain")}, "length"),
        (
            {"fields": '[{"name": "n\\u0000", "type": "string"}]'},
            {"document": ("a.txt", b"hi", "text/plain")},
            "fields",
        ),
    ]
    for data, files, field in cases:
        response = httpx.post(f"{base}/api/v1/summaries", data=data, files=files, headers=auth)
        _assert_refused(response, field)
    # A "text" file with NUL bytes is binary: the documented 415, never a 500.
    upload = {"document": ("n.txt", b"plain words " * 5 + b"\x00", "text/plain")}
    response = httpx.post(f"{base}/api/v1/documents", files=upload, headers=auth)
    assert response.status_code == 415, response.text
    assert fake_upstream.calls.get("chat", 0) == 0
    assert not UsageEvent.objects.exists()
