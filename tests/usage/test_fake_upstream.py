"""The fake upstream's own contract: auth, control endpoints over HTTP (as the
run command and the benchmark use them), recorded requests without the key."""

import httpx

from standins.fake_openai import answers

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "One. Two."}]}


def test_requires_a_bearer_key(fake_upstream):
    response = httpx.post(f"{fake_upstream.base_url}/chat/completions", json=CHAT)
    assert response.status_code == 401
    assert "API key" in response.json()["error"]["message"]


def test_control_endpoints_over_http(fake_upstream):
    auth = {"Authorization": "Bearer any-key"}
    faults = {"faults": [{"kind": "503", "times": 2}, {"kind": "500", "endpoint": "moderations"}]}
    assert httpx.post(f"{fake_upstream.url}/_control/faults", json=faults).json() == {"queued": 3}
    statuses = [
        httpx.post(
            f"{fake_upstream.base_url}/chat/completions", json=CHAT, headers=auth
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    last = httpx.get(f"{fake_upstream.url}/_control/last_request").json()
    assert last["headers"]["authorization"] == "Bearer ***"
    assert last["body"] == CHAT
    stats = httpx.get(f"{fake_upstream.url}/_control/stats").json()
    assert stats["calls"] == {"chat": 3} and stats["queued_faults"] == 1
    # The server is the session's: an earlier test's slow call may still be in it.
    assert stats["peak_in_flight"] >= 1 and stats["in_flight"] >= 0
    config = httpx.post(f"{fake_upstream.url}/_control/config", json={"latency_ms": 5})
    assert config.json() == {"latency_ms": 5}
    httpx.post(f"{fake_upstream.url}/_control/reset")
    assert fake_upstream.state.latency_ms == 0 and not fake_upstream.state.faults


def test_json_object_mode_and_bad_json(fake_upstream):
    auth = {"Authorization": "Bearer any-key"}
    body = {**CHAT, "response_format": {"type": "json_object"}}
    response = httpx.post(f"{fake_upstream.base_url}/chat/completions", json=body, headers=auth)
    assert response.json()["choices"][0]["message"]["content"] == '{"answer": "One. Two."}'
    broken = httpx.post(
        f"{fake_upstream.base_url}/chat/completions", content=b"{nope", headers=auth
    )
    assert broken.status_code == 400


def test_answer_rules():
    bullets = [
        {"role": "system", "content": "Answer in bullets. Not as prose with 3 bullets."},
        {"role": "user", "content": "A. B."},
    ]
    assert answers.plain_answer(bullets) == "- A.\n- B."
    assert answers.plain_answer([{"role": "user", "content": "[[fault:no_usage]]"}]) == "OK."
    assert answers.moderate("x FLAGME:self-harm y")["categories"]["self-harm"] is True
