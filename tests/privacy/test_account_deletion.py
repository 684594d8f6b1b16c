"""Deleting an account: refused while the last owner; otherwise nothing
personal is left in any table, and the ledger and invoices are unchanged."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.db.models import Sum

from accounts import privacy, services_privacy
from accounts.models import AuditEvent, Membership, User
from config.errors import InvalidRequest
from tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory
from tests.privacy.conftest import MARKER, models_pointing_at, rows_containing

pytestmark = pytest.mark.django_db


def ledger_totals():
    from billing.models import Invoice
    from usage.models import UsageEvent

    return (
        UsageEvent.objects.aggregate(t=Sum("total_tokens"), c=Sum("cost")),
        list(Invoice.objects.values_list("number", "total", "amount_paid")),
    )


def test_refused_while_the_last_owner_of_a_workspace():
    alone = UserFactory(email="alone@example.com")
    workspace = WorkspaceFactory(name="Solo Ltd")
    MembershipFactory(workspace=workspace, user=alone, role="owner")
    MembershipFactory(workspace=workspace, role="member")
    with pytest.raises(InvalidRequest) as refused:
        services_privacy.account_delete(user=alone, confirmation="alone@example.com")
    assert "last owner of “Solo Ltd”" in refused.value.message
    assert "delete the workspace" in refused.value.message
    alone.refresh_from_db()
    assert alone.is_active and Membership.objects.filter(user=alone).exists()


def test_refused_without_the_typed_email(person):
    with pytest.raises(InvalidRequest, match="Type your email"):
        services_privacy.account_delete(user=person, confirmation="yes")
    person.refresh_from_db()
    assert person.is_active


def test_allowed_when_the_only_owned_workspace_is_being_deleted(tiers):
    owner = UserFactory(email="leaving@example.com")
    workspace = WorkspaceFactory(name="Closing")
    membership = MembershipFactory(workspace=workspace, user=owner, role="owner")
    services_privacy.workspace_deletion_schedule(
        actor=membership, confirmation="Closing", cancel_now=False
    )
    services_privacy.account_delete(user=owner, confirmation="leaving@example.com")
    assert not User.objects.get(pk=owner.pk).is_active


def test_nothing_personal_is_left_in_any_table(person, django_capture_on_commit_callbacks):
    from usage.models import ApiKey

    before = ledger_totals()
    user_id, email = person.pk, person.email
    assert rows_containing(MARKER) and rows_containing(email)  # the fixture did plant them

    with django_capture_on_commit_callbacks(execute=True):
        pseudonym = services_privacy.account_delete(user=person, confirmation=email.upper())

    # Not a trace: the email, the name, anything the person wrote.
    for needle in (email, "Zelda Quux", MARKER, "203.0.113.9"):
        assert rows_containing(needle) == {}, needle
    # Every model with a foreign key to the person: no rows left, or a kept
    # record of account that (as checked above) says nothing about who it was.
    kept = privacy.kept_models() | {"usage.UsageEvent", "billing.ConsentRecord"}
    for model, field in models_pointing_at(User):
        remaining = model._default_manager.filter(**{field: user_id}).count()
        assert remaining == 0 or model._meta.label in kept, (model._meta.label, field, remaining)
    tombstone = User.objects.get(pk=user_id)
    assert tombstone.email == f"{pseudonym}@deleted.invalid"
    assert not tombstone.is_active and not tombstone.has_usable_password()
    assert not Membership.objects.filter(user_id=user_id).exists()
    assert not EmailAddress.objects.filter(user_id=user_id).exists()
    assert all(k.revoked_at for k in ApiKey.objects.filter(created_by_id=user_id))
    # The ledger, the invoices: unchanged to the cent.
    assert ledger_totals() == before
    # The audit log says what happened, under the pseudonym.
    assert AuditEvent.objects.filter(action="user.deleted", target=pseudonym).exists()
    assert (
        AuditEvent.objects.filter(action="member.left", target__startswith=pseudonym).count() == 2
    )
    # And the person is told, at the address they had.
    (sent,) = [m for m in mail.outbox if "deleted" in m.subject]
    assert sent.to == [email]


def test_the_deleted_person_cannot_sign_in(client, person):
    email = person.email
    services_privacy.account_delete(user=person, confirmation=email)
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
