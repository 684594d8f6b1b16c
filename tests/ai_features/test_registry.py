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
