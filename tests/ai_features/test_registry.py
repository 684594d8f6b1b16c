"""The feature registry: every feature declared in one place, discovered from
its module, and the plan's allow-list answered by one lookup."""

import pytest

from ai_features.registry import all_features, allowed_features, ensure_allowed, get_feature
from config.errors import Forbidden


def test_every_feature_declares_itself():
    features = {f.slug: f for f in all_features()}
    assert list(features) == ["summarize", "extract", "chat"]
    for feature in features.values():
        assert feature.name and feature.description and feature.model
        assert feature.max_output_tokens > 0 and feature.page_url_name


def test_extract_declares_a_strict_schema_and_parses_only_that_shape():
    extract = get_feature("extract")
    value = extract.validate({"text": "x", "fields": [{"name": "when", "type": "date"}]})
    schema = extract.response_format(value)["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["when"]["format"] == "date"
    assert extract.parse('{"when": "2026-02-03"}', value) == {"when": "2026-02-03"}
    from ai_features.registry import MalformedAnswer

    for bad in ('{"when": "soon"}', '{"other": null}', "[]", "not json"):
        with pytest.raises(MalformedAnswer):
            extract.parse(bad, value)


def test_allow_list_comes_from_the_plan(plan_without_extract_and_chat, workspace):
    assert [f.slug for f in allowed_features(workspace)] == ["summarize"]
    ensure_allowed("summarize", workspace)
    with pytest.raises(Forbidden) as refused:
        ensure_allowed("chat", workspace)
    assert refused.value.details["upgrade_url"]


def test_feature_pages_say_when_the_plan_lacks_them(
    plan_without_extract_and_chat, owner, api_client
):
    client = api_client(owner)
    for url in ("/extract/", "/chat/"):
        response = client.get(url)
        assert response.status_code == 403
        assert b"not included" in response.content


def test_openapi_documents_the_feature_endpoints(client, db):
    schema = client.get("/api/schema/?format=json").json()
    for path in (
        "/api/v1/extractions",
        "/api/v1/chats",
        "/api/v1/chats/{id}",
        "/api/v1/chats/{id}/messages",
        "/api/v1/documents",
        "/api/v1/documents/{id}",
    ):
        assert path in schema["paths"], path
    assert "201" in schema["paths"]["/api/v1/extractions"]["post"]["responses"]


@pytest.fixture
def shout_feature():
    """A fourth feature, declared the way a new module would declare it."""
    from ai_features.registry import FEATURES, Feature, register

    @register
    class Shout(Feature):
        slug = "shout"
        name = "Shout"
        description = "Says it louder."
        max_output_tokens = 100

        def validate(self, data):
            return self.clean_text(data)

        def build_messages(self, value):
            return [{"role": "user", "content": value}]

        def parse(self, text, value):
            return text.upper()

    yield Shout
    FEATURES.pop("shout")


@pytest.mark.django_db(transaction=True)
def test_a_new_feature_module_is_usable_at_once(
    shout_feature, fake_upstream, rate_card, owner, async_api_client
):
    from usage.models import UsageEvent

    client = async_api_client(owner)
    listed = client.get("/api/v1/features").json()["results"]
    assert [f["slug"] for f in listed] == ["summarize", "extract", "chat", "shout"]
    assert all(f["included_in_plan"] for f in listed)

    response = client.post(
        "/api/v1/features/shout/runs", {"text": "hello there."}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    event = UsageEvent.objects.get()
    assert body["result"] == "HELLO THERE." and event.feature == "shout"
    assert body["usage"]["total_tokens"] == event.total_tokens
    assert body["id"] == event.request_id == response["X-Request-Id"]

    bad = client.post("/api/v1/features/shout/runs", {}, content_type="application/json")
    assert bad.status_code == 400 and "text" in bad.json()["error"]["details"]
    for slug in ("nope", "chat"):
        missing = client.post(f"/api/v1/features/{slug}/runs", {}, content_type="application/json")
        assert missing.status_code == 404
