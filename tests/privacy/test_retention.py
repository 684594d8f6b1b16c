"""Retention deletes exactly what is past its time (the clock is moved with
config.clock.travel), for the workspace's own option and the operator's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts import services_privacy
from accounts.models import AuditEvent
from accounts.tasks import enforce_retention
from config import clock
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def make_content(workspace, user, label: str):
    from ai_features.models import Conversation, Document, Extraction, Message, Summary

    conversation = Conversation.objects.create(
        workspace=workspace, owner=user, title=label, updated_at=clock.now()
    )
    Message.objects.create(conversation=conversation, role="user", content=label)
    Document.objects.create(
        workspace=workspace, uploaded_by=user, name=label, kind="txt", size=1, text=label
    )
    Extraction.objects.create(
        workspace=workspace, user=user, fields=[], data={}, model="m", request_id=label
    )
    Summary.objects.create(
        workspace=workspace,
        user=user,
        request_id=f"{label}-{workspace.pk}",
        length="short",
        format="paragraph",
        summary=label,
        model="m",
    )


def titles(workspace):
    from ai_features.models import Conversation, Document, Extraction, Summary

    return {
        "chats": sorted(
            Conversation.objects.filter(workspace=workspace).values_list("title", flat=True)
        ),
        "documents": sorted(
            Document.objects.filter(workspace=workspace).values_list("name", flat=True)
        ),
        "extractions": sorted(
            Extraction.objects.filter(workspace=workspace).values_list("request_id", flat=True)
        ),
        "summaries": sorted(
            Summary.objects.filter(workspace=workspace).values_list("summary", flat=True)
        ),
    }


def test_workspace_option_deletes_exactly_what_is_older(settings):
    settings.TOLLGATE_CONTENT_RETENTION_DAYS = None
    start = clock.now()
    keeping = WorkspaceFactory()  # default: keep until deleted
    owner_keep = MembershipFactory(workspace=keeping, role="owner")
    expiring = WorkspaceFactory()
    owner = MembershipFactory(workspace=expiring, role="owner")
    services_privacy.policy_update(actor=owner, require_mfa=False, content_retention_days=30)

    with clock.travel(start - timedelta(days=31)):
        make_content(expiring, owner.user, "old")
        make_content(keeping, owner_keep.user, "old")
    with clock.travel(start - timedelta(days=29)):
        make_content(expiring, owner.user, "recent")
    with clock.travel(start):
        assert enforce_retention.delay().get() > 0

    assert titles(expiring) == {
        "chats": ["recent"],
        "documents": ["recent"],
        "extractions": ["recent"],
        "summaries": ["recent"],
    }
    assert titles(keeping) == {
        "chats": ["old"],
        "documents": ["old"],
        "extractions": ["old"],
        "summaries": ["old"],
    }
    assert AuditEvent.objects.filter(workspace=expiring, action="content.expired").exists()
    # A second run a day later takes nothing more than what crossed the line.
    with clock.travel(start + timedelta(hours=12)):
        assert enforce_retention.delay().get() == 0


def test_operator_default_applies_to_every_workspace_and_the_smaller_wins(settings):
    settings.TOLLGATE_CONTENT_RETENTION_DAYS = 90
    start = clock.now()
    plain = WorkspaceFactory()
    plain_owner = MembershipFactory(workspace=plain, role="owner")
    stricter = WorkspaceFactory()
    strict_owner = MembershipFactory(workspace=stricter, role="owner")
    services_privacy.policy_update(actor=strict_owner, require_mfa=False, content_retention_days=10)
    with clock.travel(start - timedelta(days=91)):
        make_content(plain, plain_owner.user, "ancient")
    with clock.travel(start - timedelta(days=11)):
        make_content(plain, plain_owner.user, "fortnight")
        make_content(stricter, strict_owner.user, "fortnight")
    with clock.travel(start):
        enforce_retention.delay().get()
    assert titles(plain)["chats"] == ["fortnight"]
    assert titles(stricter)["chats"] == []


def test_retention_days_are_checked():
    from config.errors import InvalidRequest

    owner = MembershipFactory(role="owner")
    with pytest.raises(InvalidRequest):
        services_privacy.policy_update(actor=owner, require_mfa=False, content_retention_days=0)
