"""Operator screens render; the ledger can't be changed there."""

from __future__ import annotations

import pytest

from usage.models import ModerationLog, RateCard, UsageEvent

MODELS = ("ratecard", "apikey", "membercap", "usageevent", "usagecounter", "moderationlog")


@pytest.mark.parametrize("model", [*MODELS, "moderationsettings"])
def test_admin_pages_render(admin_client, rate_card, model):
    assert admin_client.get(f"/admin/usage/{model}/").status_code == 200


def test_the_ledger_is_read_only_in_admin(admin_client, workspace):
    event = UsageEvent.objects.create(
        workspace=workspace, feature="summarize", model="m", request_id="req_admin"
    )
    assert admin_client.get(f"/admin/usage/usageevent/{event.pk}/change/").status_code == 200
    response = admin_client.post(f"/admin/usage/usageevent/{event.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert UsageEvent.objects.filter(pk=event.pk).exists()


def test_operators_mark_flags_reviewed(admin_client, workspace):
    log = ModerationLog.objects.create(workspace=workspace, request_id="r", flagged=True)
    admin_client.post(
        "/admin/usage/moderationlog/",
        {"action": "mark_reviewed", "_selected_action": [log.pk]},
    )
    log.refresh_from_db()
    assert log.reviewed_at is not None


def test_a_used_price_is_read_only(admin_client, rate_card, workspace):
    UsageEvent.objects.create(
        workspace=workspace, feature="summarize", model=rate_card.model, request_id="req_p"
    )
    page = admin_client.get(f"/admin/usage/ratecard/{rate_card.pk}/change/").content.decode()
    assert 'name="input_per_million"' not in page
    assert RateCard.objects.count() == 1
