"""The workspace's document library: uploads parsed once (by
`ai_features.documents`), kept as text, private to the person who uploaded
them, usable as input for summarize and extract."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from ai_features.models_features import Document
from config.errors import NotFound


def documents_for(*, workspace, user) -> QuerySet[Document]:
    return Document.objects.for_workspace(workspace).filter(uploaded_by=user).defer("text")


def get_document(*, workspace, user, pk) -> Document:
    try:
        return Document.objects.for_workspace(workspace).get(uploaded_by=user, pk=int(pk))
    except (Document.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such document.") from None


def document_upload(*, workspace, user, upload) -> Document:
    """Parse an uploaded file (raises 413/415/400 with a sentence) and keep its text."""
    from ai_features.documents import extract_text

    parsed = extract_text(upload)
    return Document.objects.create(
        workspace=workspace,
        uploaded_by=user,
        name=(parsed.filename or "document")[:255],
        kind=parsed.kind,
        size=upload.size or 0,
        pages=parsed.pages,
        text=parsed.text,
    )


def limits_description() -> str:
    """The documented upload limits, in one sentence (pages and API docs)."""
    from ai_features.documents import ACCEPTED, _megabytes

    return (
        f"{ACCEPTED} files up to {_megabytes(settings.TOLLGATE_MAX_UPLOAD_BYTES)}; PDFs up to "
        f"{settings.TOLLGATE_MAX_PDF_PAGES} pages; at most "
        f"{settings.TOLLGATE_MAX_INPUT_CHARS:,} characters of text. The type is checked by "
        "content, and password-protected files can't be read."
    )


def document_delete(*, document: Document) -> None:
    document.delete()


def document_as_dict(document: Document, *, with_text: bool = False) -> dict:
    data = {
        "id": document.pk,
        "name": document.name,
        "kind": document.kind,
        "size": document.size,
        "pages": document.pages,
        "created_at": document.created_at.isoformat(),
    }
    if with_text:
        data["text"] = document.text
        data["characters"] = len(document.text)
    return data
