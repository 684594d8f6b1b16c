"""The moderation pre-screen: every input goes to the provider's moderation
endpoint before the model (unless an operator turned it off); every screen is
logged; a flagged input is refused (422 content_flagged) and not charged; a
person flagged `suspend_after_flags` times is suspended."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction

from accounts.models import User
from config import clock
from usage.models import ModerationLog, ModerationSettings

EXCERPT_CHARS = 200
_settings_cache: list = [0.0, None]
_lock = threading.Lock()


def cached_settings() -> ModerationSettings | None:
    """The settings if read recently (no query), else None."""
    expires, cached = _settings_cache
    if cached is not None and expires > time.monotonic():
        return cached
    return None


def current_settings() -> ModerationSettings:
    """The operator's settings, re-read at most every few seconds."""
    cached = cached_settings()
    if cached is not None:
        return cached
    fresh = ModerationSettings.current()
    with _lock:
        _settings_cache[:] = [time.monotonic() + settings.TOLLGATE_MODERATION_CACHE_SECONDS, fresh]
    return fresh


def screening_enabled(screen: ModerationSettings) -> bool:
    """On unless the environment (TOLLGATE_MODERATION=off) or an operator in
    admin turned it off."""
    if str(settings.TOLLGATE_MODERATION).strip().lower() in ("off", "false", "0", "no"):
        return False
    return screen.enabled


def clear_cache() -> None:
    _settings_cache[:] = [0.0, None]


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def log_entry(*, caller, request_id: str, text: str, result) -> ModerationLog:
    """An unsaved log row: it is written in the transaction that settles the call."""
    return ModerationLog(
        workspace_id=caller.workspace.pk,
        user_id=caller.user.pk,
        request_id=request_id,
        flagged=result.flagged,
        categories=sorted(name for name, hit in result.categories.items() if hit),
        excerpt=excerpt(text),
        model=result.model or "",
    )


def suspend_if_repeatedly_flagged(*, user_id: int) -> bool:
    """Called inside the transaction that logged a flag."""
    limit = current_settings().suspend_after_flags
    if not limit:
        return False
    flags = ModerationLog.objects.filter(user_id=user_id, flagged=True).count()
    if flags < limit:
        return False
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if user.is_suspended:
            return False
        user.is_suspended = True
        user.suspended_at = clock.now()
        user.suspended_reason = (
            f"Suspended automatically after {flags} inputs were flagged by the content "
            "pre-screen. Contact support to appeal."
        )
        user.save(update_fields=["is_suspended", "suspended_at", "suspended_reason"])
    return True
