"""What the privacy page states, computed from the settings that enforce it
(so the page can't drift from what the beat tasks do)."""

from __future__ import annotations

from django.conf import settings


def retention_facts() -> list[tuple[str, str]]:
    from django.apps import apps

    content = settings.TOLLGATE_CONTENT_RETENTION_DAYS
    moderation_days = 30
    if apps.is_installed("usage"):
        moderation = apps.get_model("usage", "ModerationSettings")
        moderation_days = moderation.current().log_retention_days
    years = settings.TOLLGATE_LEGAL_RETENTION_YEARS
    grace = settings.TOLLGATE_WORKSPACE_DELETION_GRACE_DAYS
    return [
        (
            "Prompts and answers (chats, summaries, extractions, documents)",
            (f"Deleted after {content} days. " if content else "Kept until you delete them. ")
            + "A workspace's owners can choose to delete them automatically after fewer days.",
        ),
        (
            "Moderation log",
            f"The excerpt of what was screened is deleted after {moderation_days} days; "
            "whether it was flagged and the category stay, for abuse handling.",
        ),
        (
            "Usage records (the ledger)",
            "Kept for billing and reconciliation. When a person deletes their account, "
            "their name and email are removed from them.",
        ),
        (
            "Invoices, credit notes, consent records",
            f"Kept for {years} years (legal retention), also after a workspace is deleted; "
            "the people named in them are pseudonymized.",
        ),
        (
            "A deleted workspace",
            f"Its content and memberships are deleted {grace} days after an owner deletes it "
            "(undo is possible until then).",
        ),
        (
            "A deleted account",
            "Deleted at once: chats, documents, summaries, extractions, API keys, sign-in "
            "methods and sessions. Audit entries keep a pseudonym instead of the name.",
        ),
    ]
