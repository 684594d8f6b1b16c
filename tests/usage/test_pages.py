"""Usage and key pages render for the right people (Django test client)."""

from __future__ import annotations

from django.utils import timezone

from usage.models import UsageEvent


def _event(member, request_id):
    return UsageEvent.objects.create(
        workspace_id=member.workspace_id,
        user_id=member.user_id,
        feature="summarize",
        model="gpt-4o-mini",
        request_id=request_id,
        input_tokens=10,
        output_tokens=5,
        total_tokens=15,
        created_at=timezone.now(),
    )


def test_usage_page_members_see_their_own_owners_everyone(client, make_member):
    owner = make_member(role="owner")
    member = make_member(workspace=owner.workspace)
    _event(owner, "req_owner")
    _event(member, "req_member")

    client.force_login(member.user)
    page = client.get("/usage/").content.decode()
    assert "req_member" in page and "req_owner" not in page

    client.force_login(owner.user)
    page = client.get("/usage/").content.decode()
    assert "req_member" in page and "req_owner" in page
    assert "Quota used" in page


def test_key_edit_and_revoke_of_another_workspace_are_404(client, make_member, make_key):
    ours = make_member()
    theirs, _ = make_key(make_member())
    client.force_login(ours.user)
    assert client.get(f"/keys/{theirs.pk}/edit/").status_code == 404
    assert client.post(f"/keys/{theirs.pk}/revoke/").status_code == 404


def test_key_edit_changes_caps(client, make_member, make_key):
    member = make_member()
    key, _ = make_key(member)
    client.force_login(member.user)
    response = client.post(
        f"/keys/{key.pk}/edit/",
        {"name": "renamed", "token_cap": "777", "cap_period": "lifetime"},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.token_cap, key.cap_period) == ("renamed", 777, "lifetime")


def test_owners_set_member_caps_members_cannot(client, make_member):
    from usage.models import MemberCap

    owner = make_member(role="owner")
    member = make_member(workspace=owner.workspace)
    client.force_login(member.user)
    assert client.post(f"/usage/members/{member.pk}/cap/", {"token_cap": "9"}).status_code == 403

    client.force_login(owner.user)
    assert "member-caps" in client.get("/usage/").content.decode()
    response = client.post(
        f"/usage/members/{member.pk}/cap/", {"token_cap": "5000", "cap_period": "month"}
    )
    assert response.status_code == 302
    assert MemberCap.objects.get(membership=member).token_cap == 5000
    client.post(f"/usage/members/{member.pk}/cap/", {"token_cap": ""})
    assert not MemberCap.objects.exists()
    stranger = make_member()
    assert client.post(f"/usage/members/{stranger.pk}/cap/", {"token_cap": "1"}).status_code == 404
