"""Privacy fixtures: a person with something of everything (content, keys,
ledger rows, consents, audit entries, sign-in methods), to delete and look for."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import models
from django.db.models.functions import Cast

from accounts import audit
from accounts.models import User, Workspace
from config import clock
from tests.billing.conftest import make_tiers
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

MARKER = "PRIVATE-MARKER-7f3a"


@pytest.fixture
def tiers(db):
    return make_tiers()


def fill_person(user: User, workspace: Workspace, tiers=None, marker: str = MARKER) -> dict:
    """Rows of every kind for `user` in `workspace`, each carrying the marker."""
    from allauth.mfa.models import Authenticator

    from ai_features.models import Conversation, Document, Extraction, Message, Summary
    from billing.models import ConsentRecord, Invoice
    from usage.models import ApiKey, ModerationLog, UsageEvent

    key = ApiKey.objects.create(
        workspace=workspace,
        membership=user.memberships.get(workspace=workspace),
        created_by=user,
        name=f"{marker} laptop",
        prefix="tg_live_ab",
        key_hash=uuid.uuid4().hex,
    )
    conversation = Conversation.objects.create(workspace=workspace, owner=user, title=marker)
    Message.objects.create(conversation=conversation, role="user", content=f"hello {marker}")
    document = Document.objects.create(
        workspace=workspace,
        uploaded_by=user,
        name=f"{marker}.txt",
        kind="txt",
        size=10,
        text=f"document text {marker}",
    )
    Extraction.objects.create(
        workspace=workspace,
        user=user,
        document=document,
        fields=[{"name": "x"}],
        data={"x": marker},
        model="gpt-4o-mini",
        request_id=uuid.uuid4().hex,
        source_preview=marker,
    )
    request_id = uuid.uuid4().hex
    Summary.objects.create(
        workspace=workspace,
        user=user,
        request_id=request_id,
        length="short",
        format="paragraph",
        summary=f"summary {marker}",
        model="gpt-4o-mini",
    )
    UsageEvent.objects.create(
        workspace=workspace,
        user=user,
        api_key=key,
        feature="summarize",
        model="gpt-4o-mini",
        input_tokens=100,
        output_tokens=50,
        total_tokens=150,
        cost=Decimal("0.00012345"),
        request_id=request_id,
    )
    ModerationLog.objects.create(
        workspace=workspace,
        user=user,
        request_id=request_id,
        excerpt=f"said {marker}",
        flagged=True,
        categories=["harassment"],
    )
    audit.record(workspace=workspace, actor=user, action="key.created", target=user.email)
    if tiers is not None:
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
        ConsentRecord.objects.create(
            workspace=workspace,
            workspace_name=workspace.name,
            user=user,
            user_email=user.email,
            role="owner",
            to_tier=tiers["pro"],
            price_shown=Decimal("29.00"),
            currency="usd",
            included_tokens_shown=1,
            terms_version="1",
            terms_text="terms",
            terms_sha256="0" * 64,
            channel="web",
            ip_address="203.0.113.9",
            user_agent=f"Browser {marker}",
        )
        Invoice.objects.create(
            workspace=workspace,
            stripe_invoice_id=f"in_{uuid.uuid4().hex[:12]}",
            number="INV-1",
            status="paid",
            currency="usd",
            total=Decimal("29.00"),
            amount_paid=Decimal("29.00"),
            created_at=clock.now(),
        )
    return {"key": key, "request_id": request_id}


@pytest.fixture
def person(db, tiers):
    """Zelda: member of a shared workspace (with another owner) and her own
    workspace where she is one of two owners."""
    zelda = UserFactory(email="zelda.quux@example.com", name="Zelda Quux")
    shared = WorkspaceFactory(name="Shared Co")
    MembershipFactory(workspace=shared, role="owner")
    MembershipFactory(workspace=shared, user=zelda, role="member")
    fill_person(zelda, shared, tiers)
    own = WorkspaceFactory(name="Zelda Lab")
    MembershipFactory(workspace=own, user=zelda, role="owner")
    MembershipFactory(workspace=own, role="owner")
    fill_person(zelda, own)
    return zelda


def text_fields(model) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, (models.CharField, models.TextField, models.JSONField))
    ]


def rows_containing(needle: str) -> dict[str, int]:
    """Every table Django knows, every text column: rows that contain `needle`."""
    found: dict[str, int] = {}
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        for field in text_fields(model):
            queryset = models.QuerySet(model)
            if isinstance(field, models.JSONField):
                queryset = queryset.annotate(_as_text=Cast(field.name, models.TextField()))
                lookup = {"_as_text__icontains": needle}
            else:
                lookup = {f"{field.name}__icontains": needle}
            count = queryset.filter(**lookup).count()
            if count:
                found[f"{model._meta.label}.{field.name}"] = count
    return found


def models_pointing_at(target) -> list[tuple[type[models.Model], str]]:
    """(model, field name) of every foreign key / one-to-one to `target`'s model."""
    pairs = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is target:
                pairs.append((model, field.name))
    return pairs
