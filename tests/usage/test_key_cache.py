"""The hot path keeps a key's cache entry in the process (usage.apikeys) and
checks its stamp in the rate-limit round trip: a change made through ANOTHER
process (simulated here by changing the row and dropping the Redis entries
without touching this process's copy) stops the very next call before the model
is called or anything is reserved; an entry that merely expired is no refusal."""

from __future__ import annotations

import httpx
import pytest
from django.utils import timezone
from redis import Redis

from accounts.models import Membership, User
from tests.usage.helpers import TEXT, auth, summaries_url
from usage import apikeys
from usage.models import ApiKey, Reservation, UsageEvent


def _drop_redis_entries(key: ApiKey, redis_client: Redis) -> None:
    """What another process's `forget_keys` does to Redis (not to our copy)."""
    redis_client.delete(apikeys._cache_key(key.key_hash), apikeys.stamp_key(key.key_hash))


@pytest.fixture
def warm_key(metered, make_member, make_key):
    key, secret = make_key(make_member())
    post = lambda: httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret))  # noqa: E731
    assert post().status_code == 201
    assert key.key_hash in apikeys._local  # this process kept the entry
    return key, post


def _nothing_more_called_or_reserved(fake_upstream, events_before: int) -> None:
    assert fake_upstream.calls.get("chat", 0) == 1  # the warm-up call only
    assert not Reservation.objects.exists()
    assert UsageEvent.objects.count() == events_before


def test_a_key_revoked_elsewhere_is_refused_before_the_model(warm_key, fake_upstream, redis_client):
    key, post = warm_key
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    _drop_redis_entries(key, redis_client)

    refused = post()

    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")
    _nothing_more_called_or_reserved(fake_upstream, events_before=1)
    assert post().status_code == 401  # and from then on at authentication


def _demote(key: ApiKey) -> None:
    Membership.objects.filter(pk=key.membership_id).update(role="finance")


def _suspend(key: ApiKey) -> None:
    User.objects.filter(pk=key.created_by_id).update(
        is_suspended=True, suspended_reason="Suspended for the test."
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [(_demote, "forbidden"), (_suspend, "workspace_suspended")],
    ids=["role change", "suspension"],
)
def test_an_access_change_elsewhere_is_refused_before_the_model(
    warm_key, fake_upstream, redis_client, change, code
):
    key, post = warm_key
    change(key)
    _drop_redis_entries(key, redis_client)

    refused = post()

    assert (refused.status_code, refused.json()["error"]["code"]) == (403, code)
    _nothing_more_called_or_reserved(fake_upstream, events_before=1)


def test_a_new_cap_set_elsewhere_applies_to_the_next_call(warm_key, fake_upstream, redis_client):
    key, post = warm_key
    ApiKey.objects.filter(pk=key.pk).update(token_cap=5)  # below any call's estimate
    _drop_redis_entries(key, redis_client)

    refused = post()

    assert (refused.status_code, refused.json()["error"]["code"]) == (402, "spend_cap_reached")
    assert refused.json()["error"]["details"]["cap"] == "key"
    _nothing_more_called_or_reserved(fake_upstream, events_before=1)


def test_an_expired_entry_is_looked_up_again_and_the_call_goes_on(
    warm_key, fake_upstream, redis_client
):
    key, post = warm_key
    _drop_redis_entries(key, redis_client)  # as if its TTL ran out

    assert post().status_code == 201
    assert redis_client.get(apikeys.stamp_key(key.key_hash))  # cached again, new stamp
    assert post().status_code == 201
    assert fake_upstream.calls.get("chat", 0) == 3


def test_a_warm_call_does_not_read_the_key_from_redis(warm_key, redis_client):
    key, post = warm_key
    # Only the entry goes (the stamp stays current): this process's copy serves.
    redis_client.delete(apikeys._cache_key(key.key_hash))

    assert post().status_code == 201
    assert redis_client.get(apikeys._cache_key(key.key_hash)) is None


def test_a_revocation_in_this_process_drops_its_copy_at_once(warm_key, metered):
    from usage.services import key_revoke

    key, post = warm_key
    key_revoke(key=ApiKey.objects.get(pk=key.pk), acting_user=key.created_by)

    assert key.key_hash not in apikeys._local
    refused = post()
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")


def test_every_call_gets_its_own_copy_of_the_kept_entry(warm_key):
    """As unpickling the Redis entry would: new instances per call (a call
    that changed one can't leak into the next), equal values, and the key's
    workspace is the context's workspace, with no query to reach it."""
    key, _post = warm_key
    first, second = (apikeys._own_copy(apikeys._local[key.key_hash][1]) for _ in range(2))
    for a, b in zip(
        (first.api_key, first.workspace, first.user, first.membership),
        (second.api_key, second.workspace, second.user, second.membership),
        strict=True,
    ):
        assert a is not b and a._state is not b._state
        assert (type(a), a.pk, a.__dict__.keys()) == (type(b), b.pk, b.__dict__.keys())
    assert first.api_key.workspace is first.workspace
    assert first.api_key.membership is first.membership
    assert first.membership.user is first.user
    first.user.is_suspended = True
    assert second.user.is_suspended is False
