"""Keep the meter's caches honest when accounts change: a member who leaves,
a suspended person or workspace, a changed role — their keys' cached lookups
are dropped so the next request sees the change."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Membership, User, Workspace
from usage import moderation, ratecard
from usage.apikeys import forget_keys
from usage.models import ApiKey, MemberCap, ModerationSettings, RateCard
from usage.redis_client import sync_redis


def _forget(**filters) -> None:
    hashes = list(ApiKey.objects.filter(**filters).values_list("key_hash", flat=True))
    forget_keys(hashes)


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    _forget(workspace_id=instance.workspace_id, created_by_id=instance.user_id)


@receiver(post_save, sender=User)
def _user_changed(sender, instance: User, created: bool, update_fields=None, **kwargs) -> None:
    if not created and set(update_fields or ()) != {"last_login"}:
        _forget(created_by_id=instance.pk)


@receiver(post_save, sender=Workspace)
def _workspace_changed(sender, instance: Workspace, created: bool, **kwargs) -> None:
    if not created:
        _forget(workspace_id=instance.pk)


@receiver(post_save, sender=RateCard)
@receiver(post_delete, sender=RateCard)
def _rate_card_changed(**kwargs) -> None:
    ratecard.clear_cache()


@receiver(post_save, sender=ModerationSettings)
def _moderation_settings_changed(**kwargs) -> None:
    moderation.clear_cache()


@receiver(post_save, sender=MemberCap)
@receiver(post_delete, sender=MemberCap)
def _member_cap_changed(sender, instance: MemberCap, **kwargs) -> None:
    from usage.reservations import MEMBER_CAP_CACHE

    name = f"{MEMBER_CAP_CACHE}{instance.membership_id}"
    sync_redis().delete(name)
    transaction.on_commit(lambda: sync_redis().delete(name))
