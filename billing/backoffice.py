"""Who is the operator's back-office finance staff: active staff users in the
read-only "Finance" group (created by migration billing 0004). Superusers may
look too. The console and back-office exports only read."""

from __future__ import annotations

from typing import Any

FINANCE_GROUP = "Finance"


def is_backoffice_finance(user: Any) -> bool:
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=FINANCE_GROUP).exists()


def ensure_finance_group():
    """The Finance group with view permissions on billing and accounts only
    (the data migration makes it; seed and tests call this too, since a
    flushed test database loses it)."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=FINANCE_GROUP)
    views = Permission.objects.filter(
        content_type__app_label__in=("billing", "accounts"), codename__startswith="view_"
    )
    group.permissions.set(views)
    return group
