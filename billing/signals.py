"""Drop this process's cached free tier when an operator changes tiers."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing.limits import forget_cached_tiers
from billing.models import Tier


@receiver(post_save, sender=Tier)
@receiver(post_delete, sender=Tier)
def _tier_changed(sender, **kwargs) -> None:
    forget_cached_tiers()
