"""Broken upstream streams (the fake's malformed / stall / truncate / cut
faults), a model answer carrying NUL, and streamed Idempotency-Key: the client
gets one `error` event and nothing after it (or a plain JSON 504 when nothing
was sent yet), the message shows the failure, and the calls the upstream
answered are charged exactly once."""

from __future__ import annotations

import json

import httpx
import pytest

from ai_features.models_features import Message
from usage.models import Reservation, UsageEvent

pytestmark = pytest.mark.slow

WORDS = " ".join(f"w{i}" for i in range(30)) + ". "


def _events(lines):
    event = None
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line[5:])


@pytest.fixture
def chat(metered, owner, workspace, make_key, settings):
    from accounts.models import Membership

    settings.OPENAI_TIMEOUT_SECONDS = 1.0  # a stall is a read timeout
    settings.OPENAI_MAX_RETRIES = 0
    _key, secret = make_key(Membership.objects.get(user=owner, workspace=workspace))
    headers = {"Authorization": f"Bearer {secret}"}
    chat_id = httpx.post(f"{metered}/api/v1/chats", json={}, headers=headers).json()["id"]
    return f"{metered}/api/v1/chats/{chat_id}/messages", headers


def _assert_charged_exactly_once(fake_upstream) -> None:
    served = len(fake_upstream.state.served)
    charged = UsageEvent.objects.filter(total_tokens__gt=0).count()
    assert charged == served
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("fault", ["malformed:3", "stall:3", "truncate:3", "cut:3"])
def test_a_broken_stream_ends_with_one_error_event(chat, fake_upstream, fault):
    url, headers = chat
    body = {"content": WORDS + f"[[fault:{fault}]]", "stream": True}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=20) as response:
        assert response.status_code == 200
        events = list(_events(response.iter_lines()))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "delta" and kinds[-1] == "error" and kinds.count("error") == 1, kinds
    assert "done" not in kinds  # never reported complete
    error = events[-1][1]["error"]
    assert error["code"].startswith("upstream_") and error["details"]["request_id"]
    assert Message.objects.get(role="assistant").status == "failed"
    event = UsageEvent.objects.get()
    assert event.status == "incomplete" and event.flagged and event.total_tokens > 0
    _assert_charged_exactly_once(fake_upstream)


def test_a_stall_before_the_first_token_is_a_json_504(chat, fake_upstream):
    url, headers = chat
    body = {"content": WORDS + "[[fault:stall:1]]", "stream": True}
    response = httpx.post(url, json=body, headers=headers, timeout=20)
    assert response.status_code == 504
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert not Message.objects.exists()  # the turn left no trace
    _assert_charged_exactly_once(fake_upstream)  # nothing answered, nothing charged


def test_streamed_chat_replays_an_idempotent_retry(chat, fake_upstream):
    url, headers = chat
    headers = {**headers, "Idempotency-Key": "stream-once"}
    body = {"content": "Tell me about tollgates.", "stream": True}
    answers = []
    for _ in range(2):
        with httpx.stream("POST", url, json=body, headers=headers, timeout=20) as response:
            assert response.status_code == 200
            events = list(_events(response.iter_lines()))
            answers.append(
                ("".join(d["text"] for k, d in events if k == "delta"), response.headers)
            )
    assert answers[0][0] == answers[1][0] and answers[0][0]
    assert answers[1][1].get("Idempotent-Replayed") == "true"
    assert fake_upstream.calls["chat"] == 1 and UsageEvent.objects.count() == 1
    _assert_charged_exactly_once(fake_upstream)


def test_a_model_answer_with_nul_is_stored_and_charged(
    metered, fake_upstream, make_member, make_key
):
    _key, secret = make_key(make_member())
    headers = {"Authorization": f"Bearer {secret}"}
    response = httpx.post(
        f"{metered}/api/v1/summaries",
        json={"text": "Echo something odd. [[fault:nul]]"},
        headers=headers,
        timeout=20,
    )
    assert response.status_code == 201, response.text
    assert "\ufffd" in response.json()["summary"] and "\x00" not in response.json()["summary"]
    extraction = httpx.post(
        f"{metered}/api/v1/extractions",
        json={
            "text": "Invoice INV-7 from Acme. [[fault:nul]]",
            "fields": [{"name": "vendor", "type": "string", "description": "who sent it"}],
        },
        headers=headers,
        timeout=20,
    )
    assert extraction.status_code == 201, extraction.text
    _assert_charged_exactly_once(fake_upstream)


def test_the_reservation_covers_a_structured_answer_schema(
    metered, fake_upstream, make_member, make_key
):
    _key, secret = make_key(make_member())
    fields = [
        {"name": f"field_{i}", "type": "string", "description": "a long description " * 8}
        for i in range(12)
    ]
    response = httpx.post(
        f"{metered}/api/v1/extractions",
        json={"text": "Short text.", "fields": fields},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=20,
    )
    assert response.status_code == 201, response.text
    for event in UsageEvent.objects.all():
        # The schema is billed as prompt tokens: the reservation held for it.
        assert event.input_tokens <= event.reserved_tokens - 1
        assert event.total_tokens <= event.reserved_tokens
