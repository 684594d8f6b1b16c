"""/api/v1/keys: create (secret once, stored hashed), list, change caps,
revoke; revoked/expired keys and keys of members who left get 401; another
workspace's keys are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from usage.models import ApiKey, hash_secret


@pytest.fixture
def client_for():
    def make(membership=None, secret=None):
        client = APIClient()
        if secret:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        elif membership:
            client.force_login(membership.user)
        return client

    return make


def test_create_shows_the_secret_once_and_stores_only_a_hash(db, make_member, client_for):
    member = make_member()
    client = client_for(member)

    created = client.post(
        "/api/v1/keys",
        {"name": "CI", "token_cap": 5000, "cap_period": "lifetime", "rpm_limit": 10},
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("tg_live_") and len(secret) >= len("tg_live_") + 32
    assert body["prefix"] == secret[:12] and body["status"] == "active"
    key = ApiKey.objects.get()
    assert key.key_hash == hash_secret(secret) and secret not in str(key.__dict__)
    listed = client.get("/api/v1/keys").json()["results"]
    assert [k["id"] for k in listed] == [key.pk] and "secret" not in listed[0]
    # The new key works at once.
    assert client_for(secret=secret).get("/api/v1/quota").status_code == 200


def test_validation_errors_name_the_fields(db, make_member, client_for):
    client = client_for(make_member())
    response = client.post(
        "/api/v1/keys",
        {"token_cap": -1, "cap_period": "weekly", "expires_at": "2000-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert {"name", "token_cap", "cap_period", "expires_at"} <= set(error["details"])


def test_patch_changes_caps_and_delete_revokes(db, make_member, make_key, client_for):
    member = make_member()
    key, secret = make_key(member)
    client = client_for(member)

    patched = client.patch(
        f"/api/v1/keys/{key.pk}", {"token_cap": 100, "rpm_limit": 5}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["token_cap"], patched.json()["rpm_limit"]) == (100, 5)

    assert client_for(secret=secret).get("/api/v1/quota").status_code == 200  # cached now
    revoked = client.delete(f"/api/v1/keys/{key.pk}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"

    refused = client_for(secret=secret).get("/api/v1/quota")
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")


def test_expired_key_and_key_of_a_member_who_left(db, make_member, make_key, client_for):
    member = make_member()
    _expired, expired_secret = make_key(member, expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_for(secret=expired_secret).get("/api/v1/quota").status_code == 401

    leaver = make_member(workspace=member.workspace)
    _key, secret = make_key(leaver)
    assert client_for(secret=secret).get("/api/v1/quota").status_code == 200
    leaver.delete()
    response = client_for(secret=secret).get("/api/v1/quota")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_api_key")


def test_members_see_their_own_keys_admins_see_all(db, make_member, make_key, client_for):
    owner = make_member(role="owner")
    member = make_member(workspace=owner.workspace)
    owners_key, _ = make_key(owner)
    members_key, _ = make_key(member)

    mine = [k["id"] for k in client_for(member).get("/api/v1/keys").json()["results"]]
    everyone = [k["id"] for k in client_for(owner).get("/api/v1/keys").json()["results"]]
    assert mine == [members_key.pk]
    assert set(everyone) == {owners_key.pk, members_key.pk}
    assert client_for(member).delete(f"/api/v1/keys/{owners_key.pk}").status_code == 404


def test_another_workspaces_keys_are_404(db, make_member, make_key, client_for):
    ours = make_member()
    theirs_key, _ = make_key(make_member())
    client = client_for(ours)
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/keys/{theirs_key.pk}", {}, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert client.get("/api/v1/keys").json()["results"] == []
    assert ApiKey.objects.get(pk=theirs_key.pk).revoked_at is None


def test_finance_role_cannot_manage_keys(db, make_member, client_for):
    finance = make_member(role="finance")
    response = client_for(finance).post("/api/v1/keys", {"name": "x"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
