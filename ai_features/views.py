from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ai_features.features.summarize import FORMATS, LENGTH_TOKENS, recent_summaries
from ai_features.views_features import workspace_page


@workspace_page("summarize")
def summarize(request: HttpRequest) -> HttpResponse:
    """The page; the form posts to `POST /api/v1/summaries` (one metered path)."""
    from ai_features import library

    recent = recent_summaries(workspace=request.workspace, user=request.user)
    return render(
        request,
        "ai_features/summarize.html",
        {
            "lengths": list(LENGTH_TOKENS),
            "formats": FORMATS,
            "max_chars": settings.TOLLGATE_MAX_INPUT_CHARS,
            "max_upload_mb": settings.TOLLGATE_MAX_UPLOAD_BYTES // 1_000_000,
            "recent": recent,
            "documents": library.documents_for(workspace=request.workspace, user=request.user)[:50],
            "preselect": request.GET.get("document", ""),
        },
    )
