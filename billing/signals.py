"""Drop this process's cached tiers and admitted limits when they change."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing import operator_settings
from billing.limits import forget_admitted_limits, forget_cached_tiers
from billing.models import DunningState, EconomicsSettings, Subscription, Tier
from usage.limits import bump_version


@receiver(post_save, sender=Tier)
@receiver(post_delete, sender=Tier)
def _tier_changed(sender, **kwargs) -> None:
    forget_cached_tiers()
    bump_version()  # every process re-reads every workspace's limits


@receiver(post_save, sender=Subscription)
@receiver(post_delete, sender=Subscription)
def _subscription_changed(sender, instance: Subscription, **kwargs) -> None:
    forget_admitted_limits(instance.workspace_id)
    bump_version(instance.workspace_id)  # an upgrade applies on the very next call


@receiver(post_save, sender=EconomicsSettings)
def _economics_settings_changed(sender, **kwargs) -> None:
    operator_settings.forget()
    bump_version()  # the upstream budget policy applies on the next call everywhere


@receiver(post_save, sender=DunningState)
def _dunning_changed(sender, instance: DunningState, **kwargs) -> None:
    forget_admitted_limits(instance.workspace_id)
    bump_version(instance.workspace_id)  # access follows dunning on the next call
