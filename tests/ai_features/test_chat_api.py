"""Chat API: conversations private to their owner, answers plain and streamed,
history trimmed to the budget, and a stopped stream still metered."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ai_features.models_features import Conversation, Message
from tests.factories import MembershipFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def new_chat(client, **body) -> int:
    response = post(client, "/api/v1/chats", body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_create_list_get_rename_delete(owner, async_api_client):
    client = async_api_client(owner)
    response = post(client, "/api/v1/chats", {"title": "Plans"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "title", "created_at"}
    assert body["title"] == "Plans"
    untitled = new_chat(client)

    listing = client.get("/api/v1/chats").json()
    assert [c["id"] for c in listing["results"]] == [untitled, body["id"]]
    detail = client.get(f"/api/v1/chats/{body['id']}").json()
    assert detail["messages"] == [] and detail["title"] == "Plans"

    renamed = client.patch(
        f"/api/v1/chats/{body['id']}", json.dumps({"title": "Q3"}), content_type="application/json"
    )
    assert renamed.json()["title"] == "Q3"
    assert client.delete(f"/api/v1/chats/{body['id']}").status_code == 204
    assert client.get(f"/api/v1/chats/{body['id']}").status_code == 404


def test_bad_title_is_400(owner, async_api_client):
    response = post(async_api_client(owner), "/api/v1/chats", {"title": 7})
    assert response.status_code == 400
    assert "title" in response.json()["error"]["details"]


def test_plain_answer_is_saved_and_metered(fake_upstream, rate_card, owner, async_api_client):
    client = async_api_client(owner)
    chat_id = new_chat(client)
    response = post(
        client, f"/api/v1/chats/{chat_id}/messages", {"content": "Hello there. How are you?"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["role"] == "assistant"
    assert body["content"] == "Hello there. How are you?"  # the fake echoes
    event = UsageEvent.objects.get()
    assert event.feature == "chat"
    assert body["usage"]["total_tokens"] == event.total_tokens
    assert response["X-Request-Id"] == event.request_id
    detail = client.get(f"/api/v1/chats/{chat_id}").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["title"] == "Hello there. How are you?"  # named from the first message


BAD_MESSAGES = (
    ({"content": ""}, 400, "content"),
    ({"content": 5}, 400, "content"),
    ({}, 400, "content"),
    ({"content": "hi", "stream": "yes"}, 400, "stream"),
    ({"content": "x" * 20_001}, 413, "content"),
)


def test_bad_messages_are_api_errors(fake_upstream, rate_card, owner, async_api_client):
    client = async_api_client(owner)
    chat_id = new_chat(client)
    for body, status, field in BAD_MESSAGES:
        response = post(client, f"/api/v1/chats/{chat_id}/messages", body)
        assert response.status_code == status, body
        assert field in response.json()["error"]["details"]
    assert not Message.objects.exists()


def test_conversations_are_private_to_their_owner(
    fake_upstream, rate_card, owner, feature_member, async_api_client
):
    mine = new_chat(async_api_client(owner), title="mine")
    colleague = async_api_client(feature_member.user)  # same workspace, another person
    outsider = async_api_client(MembershipFactory(role="owner").user)  # another workspace
    for client in (colleague, outsider):
        assert client.get(f"/api/v1/chats/{mine}").status_code == 404
        assert client.delete(f"/api/v1/chats/{mine}").status_code == 404
        assert post(client, f"/api/v1/chats/{mine}/messages", {"content": "hi"}).status_code == 404
        assert client.get("/api/v1/chats").json()["results"] == []
        assert client.get(f"/chat/{mine}/").status_code == 404
    assert Conversation.objects.filter(pk=mine).exists()
    assert not UsageEvent.objects.exists()


def test_history_is_trimmed_to_the_budget_and_says_so(
    fake_upstream, rate_card, owner, async_api_client, settings
):
    settings.TOLLGATE_CHAT_HISTORY_TOKENS = 120
    client = async_api_client(owner)
    chat_id = new_chat(client)
    for i in range(4):
        body = post(
            client,
            f"/api/v1/chats/{chat_id}/messages",
            {"content": f"Message {i}. " + "word " * 20},
        ).json()
    assert body["omitted_messages"] > 0
    last = Message.objects.filter(role="assistant").order_by("-pk").first()
    assert last.omitted_messages > 0
    sent = fake_upstream.last_request["body"]["messages"]
    # system prompt + the kept messages; the oldest were left out.
    assert len(sent) == 1 + (7 - last.omitted_messages)
    assert sent[-1]["content"].startswith("Message 3.")
    page = client.get(f"/chat/{chat_id}/").content.decode()
    assert f"{last.omitted_messages} earlier messages not sent" in page


def test_not_in_plan_is_403(plan_without_extract_and_chat, owner, async_api_client):
    response = post(async_api_client(owner), "/api/v1/chats", {})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


# --- streaming over a real ASGI server -------------------------------------------------


def _api_key_headers(make_key, owner, workspace) -> dict[str, str]:
    from accounts.models import Membership

    _key, secret = make_key(Membership.objects.get(user=owner, workspace=workspace))
    return {"Authorization": f"Bearer {secret}"}


def _events(lines):
    event = None
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line[5:])


def test_streamed_answer_sends_deltas_usage_then_done(
    fake_upstream, rate_card, live_url, owner, workspace, make_key
):
    headers = _api_key_headers(make_key, owner, workspace)
    chat = httpx.post(f"{live_url}/api/v1/chats", json={}, headers=headers).json()
    text = "One sentence here. Another one there."
    with httpx.stream(
        "POST",
        f"{live_url}/api/v1/chats/{chat['id']}/messages",
        json={"content": text, "stream": True},
        headers=headers,
        timeout=10,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(_events(response.iter_lines()))

    kinds = [k for k, _ in events]
    assert kinds[-2:] == ["usage", "done"]
    assert set(kinds[:-2]) == {"delta"} and len(kinds) > 4
    assert "".join(d["text"] for k, d in events if k == "delta") == text
    usage = events[-2][1]
    event = UsageEvent.objects.get()
    assert usage["total_tokens"] == event.total_tokens and event.streamed
    message = Message.objects.get(role="assistant")
    assert message.content == text and message.status == "complete"
    assert message.request_id == event.request_id == response.headers["X-Request-Id"]


def test_quota_error_before_streaming_is_a_json_error(
    fake_upstream, rate_card, live_url, owner, workspace, make_key, settings
):
    settings.TOLLGATE_DEFAULT_INCLUDED_TOKENS = 10
    headers = _api_key_headers(make_key, owner, workspace)
    chat = httpx.post(f"{live_url}/api/v1/chats", json={}, headers=headers).json()
    response = httpx.post(
        f"{live_url}/api/v1/chats/{chat['id']}/messages",
        json={"content": "hello", "stream": True},
        headers=headers,
    )
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["upgrade_url"]
    assert not Message.objects.exists()


def test_stopping_a_stream_records_the_tokens_consumed(
    fake_upstream, rate_card, live_url, owner, workspace, make_key
):
    headers = _api_key_headers(make_key, owner, workspace)
    chat = httpx.post(f"{live_url}/api/v1/chats", json={}, headers=headers).json()
    long_text = " ".join(f"word{i}" for i in range(100)) + ". [[fault:pace:20]]"
    received = []
    with httpx.stream(
        "POST",
        f"{live_url}/api/v1/chats/{chat['id']}/messages",
        json={"content": long_text, "stream": True},
        headers=headers,
        timeout=10,
    ) as response:
        request_id = response.headers["X-Request-Id"]
        for kind, data in _events(response.iter_lines()):
            if kind == "delta":
                received.append(data["text"])
                if len(received) >= 3:
                    break  # the client goes away: closing the connection is "Stop"

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        message = Message.objects.filter(role="assistant").first()
        event = UsageEvent.objects.filter(request_id=request_id).first()
        if message and event and message.total_tokens and message.status != "streaming":
            break
        time.sleep(0.1)
    assert message.status == "stopped"
    assert message.content.startswith("".join(received))
    assert len(message.content) < len(long_text)
    # Stop ends the upstream call: what was produced is charged, not the whole
    # answer; no usage came from the upstream, so it is a tokenizer count, flagged.
    from usage.tokens import count_tokens

    assert event.status == "stopped" and event.flag_reason.startswith("stopped_estimated")
    assert event.input_tokens > 0
    assert 0 < event.output_tokens < count_tokens(long_text)
    assert event.output_tokens == count_tokens(message.content)
    assert message.output_tokens == event.output_tokens
    assert message.input_tokens == event.input_tokens
    listed = httpx.get(f"{live_url}/api/v1/chats/{chat['id']}", headers=headers).json()
    assert [m["role"] for m in listed["messages"]] == ["user", "assistant"]
    assert listed["messages"][1]["usage"]["total_tokens"] == event.total_tokens


def test_stop_before_the_first_token_keeps_the_question(
    fake_upstream, rate_card, live_url, owner, workspace, make_key
):
    headers = _api_key_headers(make_key, owner, workspace)
    chat = httpx.post(f"{live_url}/api/v1/chats", json={}, headers=headers).json()
    question = "Why is the sky blue? [[fault:delay:3000]]"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{live_url}/api/v1/chats/{chat['id']}/messages",
            json={"content": question, "stream": True},
            headers=headers,
            timeout=0.8,  # the client gives up before the first token: Stop
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        event = UsageEvent.objects.filter(feature="chat").first()
        answer = Message.objects.filter(role="assistant").first()
        if event and answer and answer.status != "streaming":
            break
        time.sleep(0.1)
    assert event.status == "stopped" and event.output_tokens == 0
    assert event.input_tokens > 0 and event.flag_reason.startswith("stopped_estimated")
    listed = httpx.get(f"{live_url}/api/v1/chats/{chat['id']}", headers=headers).json()
    assert [(m["role"], m["status"]) for m in listed["messages"]] == [
        ("user", "complete"),
        ("assistant", "stopped"),
    ]
    assert listed["messages"][0]["content"] == question
    assert listed["messages"][1]["usage"]["total_tokens"] == event.total_tokens
    assert listed["title"] == "Why is the sky blue? [[fault:delay:3000]]"


def test_idempotent_message_is_answered_and_charged_once(
    fake_upstream, rate_card, owner, async_api_client
):
    client = async_api_client(owner)
    chat_id = new_chat(client)
    url = f"/api/v1/chats/{chat_id}/messages"
    body = json.dumps({"content": "Just once."})
    first = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert UsageEvent.objects.count() == 1
    assert Message.objects.count() == 2


def test_pages_list_confirm_and_delete(owner, async_api_client):
    client = async_api_client(owner)
    assert b"No conversations yet" in client.get("/chat/").content
    response = client.post("/chat/new/", {"title": "Trip plans"})
    chat = Conversation.objects.get()
    assert response["Location"] == f"/chat/{chat.pk}/"
    assert b"Trip plans" in client.get("/chat/").content
    assert b"Delete this conversation?" in client.get(f"/chat/{chat.pk}/delete/").content
    client.post(f"/chat/{chat.pk}/delete/")
    assert not Conversation.objects.exists()


def test_a_stream_broken_midway_ends_with_an_error_event(
    fake_upstream, rate_card, live_url, owner, workspace, make_key
):
    headers = _api_key_headers(make_key, owner, workspace)
    chat = httpx.post(f"{live_url}/api/v1/chats", json={}, headers=headers).json()
    text = " ".join(f"w{i}" for i in range(40)) + ". [[fault:cut:5]]"
    with httpx.stream(
        "POST",
        f"{live_url}/api/v1/chats/{chat['id']}/messages",
        json={"content": text, "stream": True},
        headers=headers,
        timeout=10,
    ) as response:
        assert response.status_code == 200
        events = list(_events(response.iter_lines()))
    kinds = [k for k, _ in events]
    # API.md: one `error` event, and nothing after it.
    assert kinds[-1] == "error" and kinds.count("error") == 1
    assert events[-1][1]["error"]["code"].startswith("upstream_")
    message = Message.objects.get(role="assistant")
    event = UsageEvent.objects.get(request_id=message.request_id)
    assert message.status == "failed" and message.content
    assert message.output_tokens == event.output_tokens  # what the meter charged
