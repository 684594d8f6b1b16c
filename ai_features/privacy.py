"""ai_features' entries in the personal-data registry (accounts/privacy.py):
prompts and answers — chats, summaries, extractions, documents. Nothing here
is kept after a deletion; retention deletes them after the workspace's days.

Conversations, documents and extraction runs are private to their person,
so a workspace export carries only the workspace's summaries (readable by the
workspace through the API) and counts of the private items."""

from __future__ import annotations

import re

from accounts import privacy
from accounts.privacy import ExportFile, Rows, Subject
from ai_features.models import Conversation, Document, Extraction, Message, Summary


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _chats(conversations) -> Rows:
    return [
        {
            "id": c.pk,
            "workspace_id": c.workspace_id,
            "title": c.title,
            "created_at": _iso(c.created_at),
            "messages": [
                {
                    "role": m.role,
                    "content": m.content,
                    "status": m.status,
                    "model": m.model,
                    "time": _iso(m.created_at),
                    "usage": m.usage_dict(),
                }
                for m in c.messages.all()
            ],
        }
        for c in conversations.prefetch_related("messages")
    ]


def _summaries(summaries) -> Rows:
    return [{**s.as_api(full=True), "workspace_id": s.workspace_id} for s in summaries]


def _extractions(extractions) -> Rows:
    return [
        {
            "id": e.pk,
            "workspace_id": e.workspace_id,
            "source": e.source_name,
            "fields": e.fields,
            "data": e.data,
            "model": e.model,
            "created_at": _iso(e.created_at),
            "usage": e.usage_dict(),
        }
        for e in extractions
    ]


def _documents(documents) -> Rows:
    return [
        {
            "id": d.pk,
            "workspace_id": d.workspace_id,
            "name": d.name,
            "kind": d.kind,
            "size_bytes": d.size,
            "pages": d.pages,
            "created_at": _iso(d.created_at),
            "file": _document_path(d),
        }
        for d in documents
    ]


def _document_path(document: Document) -> str:
    safe = re.sub(r"[^\w.-]+", "_", document.name)[:80] or "document"
    return f"documents/{document.pk}-{safe}.txt"


def export(subject: Subject) -> dict[str, Rows]:
    if subject.user is not None:
        user = subject.user
        return {
            "chats": _chats(Conversation.objects.filter(owner=user)),
            "summaries": _summaries(Summary.objects.filter(user=user)),
            "extractions": _extractions(Extraction.objects.filter(user=user)),
            "documents": _documents(Document.objects.filter(uploaded_by=user)),
        }
    ws = subject.workspace
    return {
        "summaries": _summaries(Summary.objects.filter(workspace=ws)),
        "private_items": [
            {
                "note": "Chats, documents and extraction runs are private to each member: "
                "each person exports their own from Privacy & data.",
                "chats": Conversation.objects.filter(workspace=ws).count(),
                "documents": Document.objects.filter(workspace=ws).count(),
                "extractions": Extraction.objects.filter(workspace=ws).count(),
            }
        ],
    }


def files(subject: Subject) -> list[ExportFile]:
    """The uploaded documents, as the text Tollgate kept of them (the uploaded
    file itself is never stored)."""
    if subject.user is None:
        return []
    documents = Document.objects.filter(uploaded_by=subject.user)
    return [(_document_path(d), d.text) for d in documents.iterator(100)]


def erase_user(user, pseudonym: str) -> None:
    Conversation.objects.filter(owner=user).delete()
    Extraction.objects.filter(user=user).delete()
    Document.objects.filter(uploaded_by=user).delete()
    Summary.objects.filter(user=user).delete()


def erase_workspace(workspace, pseudonym: str) -> None:
    Conversation.objects.filter(workspace=workspace).delete()
    Extraction.objects.filter(workspace=workspace).delete()
    Document.objects.filter(workspace=workspace).delete()
    Summary.objects.filter(workspace=workspace).delete()


def purge_content(workspace, cutoff) -> int:
    deleted = Conversation.objects.filter(workspace=workspace, updated_at__lt=cutoff).delete()
    deleted_total = deleted[1].get("ai_features.Conversation", 0)
    # Long-running chats lose their messages older than the cutoff.
    deleted_total += Message.objects.filter(
        conversation__workspace=workspace, created_at__lt=cutoff
    ).delete()[0]
    for model in (Extraction, Document, Summary):
        deleted_total += model.objects.filter(workspace=workspace, created_at__lt=cutoff).delete()[
            0
        ]
    return deleted_total


def register() -> None:
    privacy.register(
        privacy.DataOwner(
            label="ai_features",
            models=(
                "ai_features.Summary",
                "ai_features.Document",
                "ai_features.Conversation",
                "ai_features.Extraction",
            ),
            export=export,
            files=files,
            erase_user=erase_user,
            erase_workspace=erase_workspace,
            purge_content=purge_content,
        )
    )
