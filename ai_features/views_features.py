"""Pages for extract, chat and documents. Feature calls go from the page to the
API with the session (so the browser and programs share one path to the meter);
these views render forms, history and confirmations."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import Perm
from ai_features import conversations, extractions, library
from ai_features.features.extract import FIELD_TYPES, MAX_FIELDS
from ai_features.registry import FeatureNotAllowed, ensure_allowed, get_feature
from config.errors import ApiError, NotFound


def _not_in_plan(request: HttpRequest, feature_slug: str, exc: FeatureNotAllowed) -> HttpResponse:
    """The plan lacks the feature: an owner/admin is offered the upgrade, anyone
    else is told whom to ask (not "ask an owner" when they are one)."""
    from usage.limits import get_workspace_limits

    plan = get_workspace_limits(request.workspace).plan_name
    reason = f"{get_feature(feature_slug).name} is not included in the {plan} plan."
    return render(
        request,
        "ai_features/not_allowed.html",
        {
            "reason": reason,
            "upgrade_url": exc.details.get("upgrade_url"),
            "can_upgrade": request.membership.can(Perm.MANAGE_BILLING),
        },
        status=403,
    )


def workspace_page(feature_slug: str | None = None):
    """Signed in, in a workspace, allowed to use features (and this one)."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.workspace is None:
                return redirect("accounts:workspace_switch")
            if not request.membership.can(Perm.USE_FEATURES):
                role = request.membership.get_role_display()
                return render(
                    request,
                    "ai_features/not_allowed.html",
                    {
                        "reason": f"Your role in this workspace, {role}, can't run AI features.",
                        "ask_perm": Perm.MANAGE_MEMBERS,
                    },
                    status=403,
                )
            if feature_slug:
                try:
                    ensure_allowed(feature_slug, request.workspace)
                except FeatureNotAllowed as exc:
                    return _not_in_plan(request, feature_slug, exc)
            try:
                return view(request, *args, **kwargs)
            except NotFound:
                return render(request, "ai_features/not_found.html", status=404)

        return wrapper

    return decorate


# --- extract ---------------------------------------------------------------------


@workspace_page("extract")
def extract(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "ai_features/extract.html",
        {
            "feature": get_feature("extract"),
            "field_types": FIELD_TYPES,
            "max_fields": MAX_FIELDS,
            "preselect": request.GET.get("document", ""),
            "documents": library.documents_for(workspace=request.workspace, user=request.user)[:50],
            "recent": extractions.extractions_for(workspace=request.workspace, user=request.user)[
                : extractions.RECENT_RUNS
            ],
        },
    )


@workspace_page()
def extraction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    extraction = extractions.get_extraction(workspace=request.workspace, user=request.user, pk=pk)
    rows = [(f, extraction.data.get(f["name"])) for f in extraction.fields]
    return render(
        request,
        "ai_features/extraction_detail.html",
        {
            "extraction": extraction,
            "rows": rows,
            "json_text": extractions.extraction_json(extraction),
        },
    )


@workspace_page()
def extraction_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    if fmt not in ("csv", "json"):
        raise NotFound()
    extraction = extractions.get_extraction(workspace=request.workspace, user=request.user, pk=pk)
    if fmt == "csv":
        response = HttpResponse(extractions.extraction_csv(extraction), content_type="text/csv")
    else:
        response = HttpResponse(
            extractions.extraction_json(extraction), content_type="application/json"
        )
    response["Content-Disposition"] = f'attachment; filename="extraction-{extraction.pk}.{fmt}"'
    return response


# --- chat ------------------------------------------------------------------------


@workspace_page("chat")
def chat_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "ai_features/chat_list.html",
        {
            "feature": get_feature("chat"),
            "conversations": conversations.conversations_for(
                workspace=request.workspace, user=request.user
            )[:100],
        },
    )


@workspace_page("chat")
@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    conversation = conversations.conversation_create(
        workspace=request.workspace, owner=request.user, title=request.POST.get("title", "")
    )
    return redirect("ai_features:chat_detail", pk=conversation.pk)


@workspace_page("chat")
def chat_detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversations.get_conversation(
        workspace=request.workspace, user=request.user, pk=pk
    )
    return render(
        request,
        "ai_features/chat_detail.html",
        {
            "feature": get_feature("chat"),
            "conversation": conversation,
            "chat_messages": conversations.conversation_messages(conversation=conversation),
            "conversations": conversations.conversations_for(
                workspace=request.workspace, user=request.user
            )[:30],
        },
    )


@workspace_page()
@require_POST
def chat_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversations.get_conversation(
        workspace=request.workspace, user=request.user, pk=pk
    )
    try:
        conversations.conversation_rename(
            conversation=conversation, title=request.POST.get("title", "")
        )
        messages.success(request, "Conversation renamed.")
    except ApiError as exc:
        messages.error(request, exc.message)
    return redirect("ai_features:chat_detail", pk=conversation.pk)


@workspace_page()
@require_http_methods(["GET", "POST"])
def chat_delete(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversations.get_conversation(
        workspace=request.workspace, user=request.user, pk=pk
    )
    if request.method == "POST":
        title = conversation.title
        conversations.conversation_delete(conversation=conversation)
        messages.success(request, f"Deleted the conversation “{title}”.")
        return redirect("ai_features:chat_list")
    return render(
        request,
        "ai_features/confirm_delete.html",
        {
            "what": "conversation",
            "name": conversation.title,
            "consequence": "Its messages are deleted for good. Usage already recorded stays "
            "on the usage dashboard.",
            "cancel_url": reverse("ai_features:chat_detail", args=[conversation.pk]),
        },
    )


# --- documents -------------------------------------------------------------------


@workspace_page()
@require_http_methods(["GET", "POST"])
def documents(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("document")
        if upload is None:
            messages.error(request, "Choose a file to upload first.")
            status = 400
        else:
            try:
                document = library.document_upload(
                    workspace=request.workspace, user=request.user, upload=upload
                )
            except ApiError as exc:
                messages.error(request, exc.message)
                status = exc.status
            else:
                messages.success(request, f"Uploaded “{document.name}”.")
                return redirect("ai_features:documents")
    return render(
        request,
        "ai_features/documents.html",
        {
            "documents": library.documents_for(workspace=request.workspace, user=request.user)[
                :200
            ],
            "limits": library.limits_description(),
        },
        status=status,
    )


@workspace_page()
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = library.get_document(workspace=request.workspace, user=request.user, pk=pk)
    return render(request, "ai_features/document_detail.html", {"document": document})


@workspace_page()
@require_http_methods(["GET", "POST"])
def document_delete(request: HttpRequest, pk: int) -> HttpResponse:
    document = library.get_document(workspace=request.workspace, user=request.user, pk=pk)
    if request.method == "POST":
        name = document.name
        library.document_delete(document=document)
        messages.success(request, f"Deleted “{name}”.")
        return redirect("ai_features:documents")
    return render(
        request,
        "ai_features/confirm_delete.html",
        {
            "what": "document",
            "name": document.name,
            "consequence": "Its text is deleted for good. Past extractions keep their results.",
            "cancel_url": reverse("ai_features:documents"),
        },
    )
