"""The lean ASGI path (config/lean.py): API-key calls to the feature endpoints
skip the browser middleware; session calls keep the full stack. Neither path
lets a caller past authentication, suspension or the tenant wall."""

from __future__ import annotations

import io
import json
import time

import httpx
import pytest
from django.core.handlers.asgi import ASGIRequest
from django.test import Client, override_settings
from django.urls import resolve
from prometheus_client import REGISTRY

from accounts.models import Workspace
from accounts.selectors import SESSION_WORKSPACE_KEY
from config.lean import LEAN_MIDDLEWARE, LeanApiHandler, is_keyed_feature_call

BODY = {"text": "Tollgate meters every token through one operator key.", "length": "short"}
CSRF = "a" * 32


def scope(path="/api/v1/summaries", headers=(), type="http"):
    return {"type": type, "path": path, "headers": list(headers)}


@pytest.mark.parametrize(
    ("s", "lean"),
    [
        (scope(headers=[(b"authorization", b"Bearer tg_live_x")]), True),
        (scope("/api/v1/chats/3/messages", [(b"authorization", b"bearer tg_live_x")]), True),
        (scope(), False),  # session caller: full stack
        (scope(headers=[(b"authorization", b"Basic abc")]), False),
        (scope(headers=[(b"authorization", b"Bearer ")]), False),
        (scope("/api/v1/keys", [(b"authorization", b"Bearer tg_live_x")]), False),
        (scope("/summaries", [(b"authorization", b"Bearer tg_live_x")]), False),
        (scope(headers=[(b"authorization", b"Bearer x")], type="websocket"), False),
    ],
)
def test_only_keyed_feature_calls_take_the_lean_path(s, lean):
    assert is_keyed_feature_call(s) is lean


def session_cookies(member) -> dict:
    client = Client()
    client.force_login(member.user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = member.workspace_id
    session.save()
    return {"sessionid": session.session_key, "csrftoken": CSRF}


def post_summary(metered: str, secret: str, *, query: str = "", **headers) -> httpx.Response:
    """A metered summary call with an API key, as a client sends it."""
    return httpx.post(
        f"{metered}/api/v1/summaries{query}",
        json=BODY,
        headers={"Authorization": f"Bearer {secret}", **headers},
        timeout=20,
    )


def test_key_call_keeps_the_security_headers(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    response = post_summary(metered, secret)
    assert response.status_code == 201, response.text
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sessionid" not in response.headers.get("set-cookie", "")


def test_session_call_still_works_and_still_needs_csrf(metered, make_member):
    member = make_member()
    cookies = session_cookies(member)
    url = f"{metered}/api/v1/summaries"
    refused = httpx.post(url, json=BODY, cookies=cookies, timeout=20)
    assert refused.status_code == 403, refused.text
    ok = httpx.post(url, json=BODY, cookies=cookies, headers={"X-CSRFToken": CSRF}, timeout=20)
    assert ok.status_code == 201, ok.text


def test_a_bad_key_never_falls_back_to_the_session(metered, make_member):
    cookies = session_cookies(make_member())
    response = httpx.post(
        f"{metered}/api/v1/summaries",
        json=BODY,
        cookies=cookies,
        headers={"Authorization": "Bearer tg_live_nope", "X-CSRFToken": CSRF},
        timeout=20,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_api_key")


def test_the_key_decides_the_tenant_and_suspension_holds(metered, make_member, make_key):
    mine, theirs = make_member(), make_member()
    _key, my_secret = make_key(mine)
    _key, their_secret = make_key(theirs)
    created = post_summary(metered, their_secret)
    assert created.status_code == 201, created.text
    # My key with their session cookie: still my workspace, so theirs is 404.
    peek = httpx.get(
        f"{metered}/api/v1/summaries/{created.json()['id']}",
        headers={"Authorization": f"Bearer {my_secret}"},
        cookies=session_cookies(theirs),
    )
    assert peek.status_code == 404
    workspace = Workspace.objects.get(pk=mine.workspace_id)
    workspace.is_suspended = True
    workspace.save()  # save(), like the admin: usage.signals drops the cached key
    response = post_summary(metered, my_secret)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "workspace_suspended")


def test_request_signals_reach_any_receiver_but_djangos_own(metered, make_member, make_key):
    """A metered call answered on the loop skips Django's thread-tidying
    request signals (it ran no sync code), unless someone else listens."""
    from django.core import signals

    from config.lean import _request_signals_needed

    assert not _request_signals_needed()
    _key, secret = make_key(make_member())
    heard: list[str] = []

    def started(**kwargs):
        heard.append("started")

    def finished(**kwargs):
        heard.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        assert _request_signals_needed()
        response = post_summary(metered, secret)
        deadline = time.monotonic() + 5  # "finished" is sent after the answer
        while "finished" not in heard and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert response.status_code == 201, response.text
    assert heard == ["started", "finished"]


# --- the flat chain (config.lean._FlatChain) ----------------------------------------


def test_the_flat_chain_knows_every_lean_middleware():
    """_FlatChain unpacks LEAN_MIDDLEWARE by position: a middleware added,
    removed or moved there must be placed in the flat chain too."""
    assert LEAN_MIDDLEWARE == [
        "config.lean.InlinePrometheusBefore",
        "config.lean.InlineSecurity",
        "config.inputguard.InputGuardMiddleware",
        "config.lean.InlineCommon",
        "config.lean.InlineXFrameOptions",
        "config.errors.ApiErrorMiddleware",
        "config.lean.InlinePrometheusAfter",
        "billing.middleware.QuotaRefusalMiddleware",
    ]


def keyed_post(path="/api/v1/summaries", raw=None, host=b"127.0.0.1:8000", query=b""):
    raw = json.dumps(BODY).encode() if raw is None else raw
    headers = [
        (b"host", host),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"authorization", b"Bearer tg_live_x"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": headers,
        "scheme": "http",
    }
    return ASGIRequest(scope, io.BytesIO(raw))


def test_a_plain_metered_post_takes_the_flat_chain():
    match = LeanApiHandler()._flat._passes(keyed_post())
    assert match is not None and match.url_name == "api-summaries"
    runs = LeanApiHandler()._flat._passes(keyed_post("/api/v1/features/summarize/runs"))
    assert runs.kwargs == {"slug": "summarize"}


@pytest.mark.parametrize(
    ("request_kwargs", "overrides"),
    [
        ({"raw": b'{"text": "a\\u0000b"}'}, {}),  # the input guard refuses a NUL
        ({"query": b"x=%00"}, {}),  # … in the query string too
        ({"host": b"evil.example"}, {"ALLOWED_HOSTS": ["tollgate.example"]}),
        ({}, {"SECURE_SSL_REDIRECT": True}),  # plain http: the redirect
        ({"path": "/api/v1/summaries/nope/more"}, {}),  # no such URL: the chain's 404
    ],
)
def test_what_a_hook_would_answer_goes_through_the_chain(request_kwargs, overrides):
    with override_settings(**overrides):
        flat = LeanApiHandler()._flat  # the hooks read their settings when built
        assert flat._passes(keyed_post(**request_kwargs)) is None


def _count(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_flat_call_is_counted_once_and_keeps_every_header(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    view = resolve("/api/v1/summaries").view_name
    by_view = "django_http_responses_total_by_status_view_method_total"
    before = _count("django_http_requests_before_middlewares_total")
    answered = _count(by_view, status="201", view=view, method="POST")
    response = post_summary(metered, secret)
    assert response.status_code == 201, response.text
    assert _count(by_view, status="201", view=view, method="POST") == answered + 1
    assert _count("django_http_requests_before_middlewares_total") >= before + 1
    assert response.headers["X-Request-Id"].startswith("req_")
    assert response.headers["Content-Length"] == str(len(response.content))
    for header, value in {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Content-Type": "application/json",
    }.items():
        assert response.headers[header] == value


def test_content_negotiation_is_remembered_per_accept_header(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    for accept, status in [
        ("text/html", 406),
        ("application/json", 201),
        ("text/html", 406),  # a remembered answer for one header is not another's
        ("*/*", 201),
    ]:
        response = post_summary(metered, secret, Accept=accept)
        assert response.status_code == status, (accept, response.text)
        assert response.headers["Content-Type"] == "application/json"
    refused = post_summary(metered, secret, query="?format=xml")
    assert refused.status_code == 404, refused.text  # DRF: no renderer for that format
