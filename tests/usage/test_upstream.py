"""The real openai SDK against the fake upstream: answers, streams, moderation,
faults mapped to our error classes, and the key kept out of every log and error."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
import traceback

import pytest

from config.errors import (
    ApiError,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from usage import tokens
from usage.upstream import (
    TokenUsage,
    UpstreamStreamInterrupted,
    get_upstream,
    redact,
    safety_identifier_for,
)

TEXT = (
    "Tollgate meters every token. Limits hold under concurrency. "
    "Nothing is charged twice. This fourth sentence is left out."
)
SUMMARY = "Tollgate meters every token. Limits hold under concurrency. Nothing is charged twice."
MESSAGES = [
    {"role": "system", "content": "Summarize the user's text."},
    {"role": "user", "content": TEXT},
]


def chat(messages=MESSAGES, **kwargs):
    params = {"model": None, "max_output_tokens": 200, "safety_identifier": "tg_person"}
    params.update(kwargs)

    async def call():
        return await get_upstream().chat(messages=messages, **params)

    return asyncio.run(call())


def stream(messages=MESSAGES, **kwargs):
    params = {"model": "gpt-4o-mini", "max_output_tokens": 200, "safety_identifier": "tg_person"}
    params.update(kwargs)
    received = []

    async def call():
        async for chunk in get_upstream().chat_stream(messages=messages, **params):
            received.append(chunk)

    try:
        asyncio.run(call())
    finally:
        stream.received = received
    return received


def moderate(text):
    async def call():
        return await get_upstream().moderate(text=text)

    return asyncio.run(call())


def test_plain_answer_usage_and_request(fake_upstream, settings):
    settings.OPENAI_ORG_ID = "org-tollgate"
    settings.OPENAI_PROJECT_ID = "proj_meter"
    result = chat()
    assert result.text == SUMMARY
    assert result.finish_reason == "stop"
    assert result.model == settings.OPENAI_DEFAULT_MODEL
    assert result.upstream_request_id.startswith("req_")
    assert result.usage == TokenUsage(
        input_tokens=tokens.count_message_tokens(MESSAGES),
        cached_input_tokens=0,
        output_tokens=tokens.count_tokens(SUMMARY),
    )
    assert result.usage.as_dict()["total_tokens"] == (
        result.usage.input_tokens + result.usage.output_tokens
    )
    sent = fake_upstream.last_request
    assert sent["body"]["safety_identifier"] == "tg_person"
    assert sent["body"]["max_completion_tokens"] == 200
    assert sent["headers"]["openai-organization"] == "org-tollgate"
    assert sent["headers"]["openai-project"] == "proj_meter"
    assert fake_upstream.key_was_sent()


def test_max_tokens_param_for_older_servers_and_truncation(fake_upstream, settings):
    settings.OPENAI_MAX_TOKENS_PARAM = "max_tokens"
    result = chat(max_output_tokens=4)
    assert fake_upstream.last_request["body"]["max_tokens"] == 4
    assert result.finish_reason == "length"
    assert result.usage.output_tokens == 4


def test_stream_delivers_text_then_usage(fake_upstream):
    chunks = stream()
    assert "".join(c.delta for c in chunks) == SUMMARY
    with_usage = [c for c in chunks if c.usage]
    assert len(with_usage) == 1 and chunks[-1] is with_usage[0]
    assert with_usage[0].usage.output_tokens == tokens.count_tokens(SUMMARY)
    assert with_usage[0].usage.input_tokens == tokens.count_message_tokens(MESSAGES)
    assert any(c.finish_reason == "stop" for c in chunks)
    assert fake_upstream.last_request["body"]["stream_options"] == {"include_usage": True}
    assert fake_upstream.last_request["body"]["safety_identifier"] == "tg_person"


def test_stream_without_usage_just_ends(fake_upstream):
    fake_upstream.fail_next("no_usage")
    chunks = stream()
    assert "".join(c.delta for c in chunks) == SUMMARY
    assert not any(c.usage for c in chunks)


def test_stream_cut_midway_says_what_arrived(fake_upstream):
    fake_upstream.fail_next("cut", after_chunks=3)
    with pytest.raises(UpstreamStreamInterrupted) as caught:
        stream()
    assert isinstance(caught.value, UpstreamError) and caught.value.status == 502
    assert caught.value.chunks_received == 3
    assert caught.value.text_so_far == "".join(c.delta for c in stream.received)
    assert caught.value.text_so_far.startswith("Tollgate meters")


def test_inline_fault_directive(fake_upstream, settings):
    settings.OPENAI_MAX_RETRIES = 0
    with pytest.raises(UpstreamError) as caught:
        chat([{"role": "user", "content": "Hello. [[fault:500]]"}])
    assert caught.value.status == 502 and caught.value.code == "upstream_error"


@pytest.mark.parametrize(
    ("kind", "error_class", "status", "code"),
    [
        ("429", UpstreamUnavailable, 503, "upstream_unavailable"),
        ("500", UpstreamError, 502, "upstream_error"),
        ("503", UpstreamUnavailable, 503, "upstream_unavailable"),
        ("401", UpstreamError, 502, "upstream_error"),
        ("context_length", InvalidRequest, 400, "invalid_request"),
    ],
)
def test_faults_map_to_our_errors_after_bounded_retries(
    fake_upstream, kind, error_class, status, code
):
    fake_upstream.fail_next(kind, times=10)
    with pytest.raises(error_class) as caught:
        chat()
    assert (caught.value.status, caught.value.code) == (status, code)
    retried = kind in ("429", "500", "503")
    assert fake_upstream.calls["chat"] == (3 if retried else 1)  # OPENAI_MAX_RETRIES = 2


def test_rate_limit_passes_retry_after_on(fake_upstream, settings):
    settings.OPENAI_MAX_RETRIES = 0
    fake_upstream.fail_next("429", retry_after_ms=1500)
    with pytest.raises(UpstreamUnavailable) as caught:
        chat()
    assert caught.value.headers == {"Retry-After": "2"}


def test_a_transient_429_is_retried_transparently(fake_upstream):
    fake_upstream.fail_next("429")
    assert chat().text == SUMMARY
    assert fake_upstream.calls["chat"] == 2


def test_slow_answer_times_out(fake_upstream, settings):
    settings.OPENAI_TIMEOUT_SECONDS = 0.3
    settings.OPENAI_MAX_RETRIES = 0
    fake_upstream.fail_next("delay", ms=2000)
    with pytest.raises(UpstreamTimeout) as caught:
        chat()
    assert caught.value.status == 504


def test_unreachable_upstream(fake_upstream, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.OPENAI_MAX_RETRIES = 0
    with pytest.raises(UpstreamUnavailable):
        chat()


def test_no_key_configured(fake_upstream, settings):
    settings.OPENAI_API_KEY = ""
    with pytest.raises(UpstreamUnavailable):
        chat()


def test_moderation(fake_upstream, settings):
    clean = moderate("A pleasant note about gardening.")
    assert not clean.flagged and clean.flagged_categories == []
    assert clean.model == settings.OPENAI_MODERATION_MODEL
    flagged = moderate("please FLAGME now")
    assert flagged.flagged and flagged.flagged_categories == ["violence"]
    assert moderate("FLAGME:harassment").flagged_categories == ["harassment"]
    assert set(clean.categories) >= {"violence", "self-harm/intent", "harassment"}


def test_moderation_fault_targets_only_moderation(fake_upstream, settings):
    settings.OPENAI_MAX_RETRIES = 0
    fake_upstream.fail_next("500", endpoint="moderations")
    assert chat().text == SUMMARY
    with pytest.raises(UpstreamError):
        moderate("hello")


def test_structured_output_matches_the_schema(fake_upstream):
    schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "total": {"type": "number"},
            "paid": {"type": "boolean"},
            "due_date": {"type": "string", "format": "date"},
            "notes": {"type": ["string", "null"]},
        },
        "required": ["invoice_number", "total", "paid", "due_date", "notes"],
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "extraction", "strict": True, "schema": schema},
    }
    text = "Invoice number: INV-42\nTotal: 1,250.50\nPaid: yes\nSome other line."
    result = chat([{"role": "user", "content": text}], response_format=response_format)
    data = json.loads(result.text)
    assert data == {
        "invoice_number": "INV-42",
        "total": 1250.5,
        "paid": True,
        "due_date": "2026-01-01",
        "notes": "example",
    }
    assert fake_upstream.last_request["body"]["response_format"] == response_format


def test_long_repeated_prefix_reports_cached_tokens(fake_upstream):
    long_text = " ".join(f"Sentence number {i} about metering." for i in range(400))
    first = chat([{"role": "user", "content": long_text + " First question?"}])
    second = chat([{"role": "user", "content": long_text + " Second question?"}])
    assert first.usage.cached_input_tokens == 0
    assert second.usage.cached_input_tokens >= 1024
    assert second.usage.cached_input_tokens % 128 == 0
    assert second.usage.cached_input_tokens <= second.usage.input_tokens


def test_one_client_per_loop_and_settings(fake_upstream, settings):
    async def twice():
        return get_upstream(), get_upstream()

    first, again = asyncio.run(twice())
    assert first is again
    settings.OPENAI_TIMEOUT_SECONDS = 7.0

    async def after_change():
        return get_upstream()

    assert asyncio.run(after_change()).config.timeout == 7.0


def test_models_endpoint_through_the_sdk(fake_upstream):
    async def names():
        page = await get_upstream().client.models.list()
        return [m.id for m in page.data]

    assert "gpt-4o-mini" in asyncio.run(names())


def test_safety_identifier_is_stable_and_opaque(settings):
    ident = safety_identifier_for(42)
    assert ident == safety_identifier_for(42) != safety_identifier_for(43)
    assert ident.startswith("tg_") and len(ident) <= 64  # the provider's limit is 128
    int(ident.removeprefix("tg_"), 16)  # a hash, not the id


def test_the_key_never_appears_in_logs_or_errors(fake_upstream, settings, caplog):
    """The fake echoes the key in its 401 message, as OpenAI does; nothing of it
    may reach our logs, exceptions or API error bodies."""
    key = fake_upstream.api_key
    settings.OPENAI_MAX_RETRIES = 1
    for name in (None, "openai", "httpx", "httpx2", "httpcore", "usage"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[ApiError] = []
    faults = ["401", "500", "429", "context_length"]
    for kind in faults:
        fake_upstream.fail_next(kind, times=2)
        with pytest.raises(ApiError) as caught:
            chat()
        errors.append(caught.value)
    fake_upstream.fail_next("cut", after_chunks=1)
    with pytest.raises(ApiError) as caught:
        stream()
    errors.append(caught.value)
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    with pytest.raises(ApiError) as caught:
        chat()
    errors.append(caught.value)

    assert "upstream call failed" in caplog.text  # failures are logged...
    assert "Sending HTTP Request" in caplog.text  # the SDK logged at DEBUG too
    assert key not in caplog.text  # ...without the key
    assert key[:12] not in caplog.text
    for error in errors:
        rendered = "".join(traceback.format_exception(error))
        for text in (str(error), repr(error), json.dumps(error.as_dict()), rendered):
            assert key not in text
            assert key[:12] not in text
    assert "Incorrect API key provided: [redacted]" in caplog.text
    assert repr(get_upstream()).find(key) == -1


def test_redact_removes_key_shapes(settings):
    settings.OPENAI_API_KEY = "custom-key-without-prefix"
    assert redact("boom custom-key-without-prefix boom") == "boom [redacted] boom"
    assert "sk-proj-abcdef123456" not in redact("key sk-proj-abcdef123456 leaked")
    assert "Bearer" not in redact("Authorization: Bearer abc.def")


def test_a_provider_url_that_redirects_is_a_clear_502(fake_upstream, settings):
    """The API never redirects, so the client doesn't follow redirects (it sends
    straight to its transport): a base URL that answers 307 is misconfigured,
    and the call fails at once with our 502, not a hang or a 500."""
    target = fake_upstream.base_url

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", target + self.path.removeprefix("/v1"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with pytest.raises(UpstreamError) as caught:
            chat()
    finally:
        server.shutdown()
    assert caught.value.status == 502
    assert fake_upstream.last_request is None  # never reached


def test_a_repeated_request_goes_out_as_the_sdk_builds_it(fake_upstream, settings):
    """A client keeps the request the SDK built for a path and attempt, and
    sends later calls as that request with their own body: the same headers
    (key, organization, project, retry count), the new body and its length."""
    settings.OPENAI_ORG_ID = "org-tollgate"
    settings.OPENAI_PROJECT_ID = "proj_meter"
    other = [{"role": "user", "content": "Another text, éà, to summarize."}]

    async def calls():
        up = get_upstream()
        sent = []
        for messages, person in ((MESSAGES, "tg_first"), (other, "tg_second")):
            await up.chat(
                messages=messages, model=None, max_output_tokens=200, safety_identifier=person
            )
            sent.append(fake_upstream.last_request)
        fake_upstream.fail_next("500")  # the retry (attempt 1) has a template of its own
        retried = await up.chat(
            messages=other, model=None, max_output_tokens=50, safety_identifier="tg_third"
        )
        sent.append(fake_upstream.last_request)
        return sent, retried

    (first, second, third), retried = asyncio.run(calls())
    assert second["body"]["messages"] == other
    assert second["body"]["safety_identifier"] == "tg_second"
    assert third["body"]["max_completion_tokens"] == 50 and retried.text
    length = second["headers"].pop("content-length")
    compact = json.dumps(second["body"], separators=(",", ":"), ensure_ascii=False)
    assert int(length) == len(compact.encode())
    first["headers"].pop("content-length")
    assert second["headers"] == first["headers"]
    assert second["headers"]["openai-organization"] == "org-tollgate"
    assert third["headers"]["x-stainless-retry-count"] == "1"
    assert fake_upstream.key_was_sent()
