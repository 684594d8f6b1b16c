"""Emails in plain words: subjects are not HTML-escaped; a suspended workspace's
owners are told why, where billing is and whom to write to — and billing stays open."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts import services

pytestmark = pytest.mark.django_db


def test_subjects_are_plain_text(workspace, owner, django_capture_on_commit_callbacks):
    workspace.name = "Tom & Jerry's"
    workspace.save()
    actor = owner.memberships.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(actor=actor, email="new@example.com", role="member")
    (message,) = mail.outbox
    assert "Tom & Jerry's" in message.subject
    assert "&amp;" not in message.subject and "&#x27;" not in message.subject
    assert "Tom & Jerry's" in message.body


def test_a_suspended_workspace_tells_its_owners_and_keeps_billing_open(
    workspace, owner, make_member, client, settings, django_capture_on_commit_callbacks
):
    settings.TOLLGATE_SUPPORT_EMAIL = "help@tollgate.example"
    member = make_member(workspace=workspace, role="member").user
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_suspend(workspace=workspace, reason="Unpaid since March.", operator=None)
    (message,) = mail.outbox
    assert message.to == [owner.email]
    assert "suspended" in message.subject
    assert "Unpaid since March." in message.body
    assert "/billing/" in message.body and "help@tollgate.example" in message.body

    client.force_login(owner)
    blocked = client.get("/usage/", headers={"Accept": "text/html"})
    assert blocked.status_code == 403
    assert b"open billing" in blocked.content and b"help@tollgate.example" in blocked.content
    assert client.get("/billing/").status_code == 200

    client.force_login(member)
    assert client.get("/billing/").status_code == 403
