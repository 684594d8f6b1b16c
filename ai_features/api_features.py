"""The feature API (API.md "Feature calls"): summaries, extractions, chats,
documents, and any registered feature by slug.

Endpoints that call the model are async (adrf) so a long wait doesn't pin a
worker, and each is the same short walk: read the input (a saved or uploaded
document becomes its text), let the feature validate it, claim the
`Idempotency-Key`, and call the feature's use case, which goes through the
registry's runner (`ai_features.runs`) to the meter. Reads and small writes are
plain DRF views. Tenancy: `IsWorkspaceMember` resolves the workspace; private
objects are looked up with the workspace AND the person, so anyone else's
conversation or document is a 404."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from inspect import iscoroutinefunction
from typing import Any, ClassVar

from adrf.views import APIView as AsyncAPIView
from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Perm
from ai_features import conversations, extractions, library
from ai_features.features import extract, summarize
from ai_features.models_features import Conversation, Document, Message
from ai_features.registry import all_features, ensure_allowed, get_feature
from ai_features.runs import run_feature
from config.errors import InvalidRequest
from config.pagination import Cursor
from config.schema import listed
from usage.dbpool import run_db

# --- documentation shapes ---------------------------------------------------------

_usage = inline_serializer(
    "Usage",
    {
        "input_tokens": serializers.IntegerField(),
        "cached_input_tokens": serializers.IntegerField(),
        "output_tokens": serializers.IntegerField(),
        "total_tokens": serializers.IntegerField(),
    },
)
# Inputs: what the features' validation accepts, as far as JSON Schema can say it.
_text = serializers.RegexField(
    r"\S", help_text="The text, not blank (past TOLLGATE_MAX_INPUT_CHARS: 413)."
)
_document_id = serializers.IntegerField(
    required=False,
    allow_null=True,
    min_value=1,
    help_text="An uploaded document's id, instead of `text`.",
)
_FIELD = {
    "name": serializers.RegexField(extract.FIELD_NAME_RE.pattern),
    "description": serializers.CharField(
        required=False, allow_blank=True, max_length=extract.MAX_DESCRIPTION_CHARS
    ),
    "type": serializers.ChoiceField(list(extract.FIELD_TYPES), default="string"),
}
_fields = serializers.ListField(
    child=inline_serializer("ExtractField", _FIELD),
    min_length=1,
    max_length=extract.MAX_FIELDS,
    help_text="Distinct names (case-insensitive).",
)
_message = inline_serializer(
    "ChatMessage",
    {
        "id": serializers.IntegerField(),
        "role": serializers.ChoiceField(Message.Role.values),
        "content": serializers.CharField(allow_blank=True),
        "status": serializers.ChoiceField(Message.Status.values),
        "created_at": serializers.DateTimeField(),
        # The assistant's answers only:
        "model": serializers.CharField(required=False, allow_blank=True),
        "omitted_messages": serializers.IntegerField(required=False),
        "usage": inline_serializer(
            "ChatMessageUsage",
            {
                "input_tokens": serializers.IntegerField(),
                "cached_input_tokens": serializers.IntegerField(),
                "output_tokens": serializers.IntegerField(),
                "total_tokens": serializers.IntegerField(),
            },
            required=False,
        ),
    },
)
_stream_event = inline_serializer(
    "ChatStreamEvent",
    {
        "event": serializers.ChoiceField(["delta", "usage", "done", "error"]),
        "data": serializers.CharField(
            help_text="JSON: delta {text}; usage {input_tokens, cached_input_tokens, "
            "output_tokens, total_tokens}; done {id, status, omitted_messages, "
            "user_message_id, title}; error {error: {code, message, details}}."
        ),
    },
)
_CHAT = {
    "id": serializers.IntegerField(),
    "title": serializers.CharField(),
    "created_at": serializers.DateTimeField(),
    "updated_at": serializers.DateTimeField(),
}
_chat = inline_serializer("Chat", _CHAT)
_chat_created = inline_serializer(
    "ChatCreated", {k: v for k, v in _CHAT.items() if k != "updated_at"}
)
_chat_detail = inline_serializer("ChatDetail", {**_CHAT, "messages": _message.__class__(many=True)})
_DOCUMENT = {
    "id": serializers.IntegerField(),
    "name": serializers.CharField(),
    "kind": serializers.ChoiceField(["txt", "md", "pdf", "docx"]),
    "size": serializers.IntegerField(),
    "pages": serializers.IntegerField(allow_null=True),
    "created_at": serializers.DateTimeField(),
}
_document = inline_serializer("Document", _DOCUMENT)
_document_detail = inline_serializer(
    "DocumentDetail",
    {**_DOCUMENT, "text": serializers.CharField(), "characters": serializers.IntegerField()},
)
_feature = inline_serializer(
    "Feature",
    {
        "slug": serializers.SlugField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "model": serializers.CharField(),
        "max_output_tokens": serializers.IntegerField(),
        "included_in_plan": serializers.BooleanField(),
    },
)
_feature_run = inline_serializer(
    "FeatureRun",
    {
        "id": serializers.CharField(),
        "result": serializers.JSONField(),
        "model": serializers.CharField(),
        "usage": _usage,
    },
)
_EXTRACTION = {
    "id": serializers.IntegerField(),
    "data": serializers.DictField(),
    "model": serializers.CharField(),
    "usage": _usage,
}
_extraction = inline_serializer("Extraction", _EXTRACTION)
_extraction_detail = inline_serializer(
    "ExtractionDetail",
    {**_EXTRACTION, "fields": inline_serializer("ExtractFieldSpec", _FIELD, many=True)},
)


def caller_for(request):
    """The meter's view of who is calling, from what IsWorkspaceMember resolved."""
    from usage.metering import Caller

    key = request.auth if hasattr(request.auth, "workspace") else None
    return Caller(
        workspace=request.workspace, user=request.user, membership=request.membership, api_key=key
    )


def body(request) -> dict:
    data = request.data
    if hasattr(data, "dict"):  # QueryDict from a form / multipart body
        data = {k: data.get(k) for k in data}
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


class FeatureView:
    required_perm = Perm.USE_FEATURES


class MeteredView(FeatureView, AsyncAPIView):
    """A feature call: async, and its API key looked up on the event loop."""

    metered = True  # the schema lists the meter's refusals (config.schema)

    # (view class, Accept, format suffix, force) -> (index in get_renderers(), media type)
    _negotiated: ClassVar[dict[tuple, tuple[int, str]]] = {}

    def perform_content_negotiation(self, request, force=False):
        """DRF's negotiation, remembered: its answer depends only on the Accept
        header and the format suffix (and `?format=`, so a query string is
        negotiated afresh). Parsing the header on every metered call was ~2.5 %
        of a worker's CPU under load (py-spy)."""
        if request.META.get("QUERY_STRING"):
            return super().perform_content_negotiation(request, force)
        key = (type(self), request.META.get("HTTP_ACCEPT"), self.format_kwarg, force)
        renderers = self.get_renderers()
        known = self._negotiated.get(key)
        if known is None:
            renderer, media_type = super().perform_content_negotiation(request, force)
            known = ([type(r) for r in renderers].index(type(renderer)), media_type)
            if len(self._negotiated) < 1_000:  # Accept is the client's to vary
                self._negotiated[key] = known
        return renderers[known[0]], known[1]

    async def async_dispatch(self, request, *args, **kwargs):
        from usage.authentication import aresolve_key

        if not await aresolve_key(request):
            return await super().async_dispatch(request, *args, **kwargs)
        return await self._dispatch_on_loop(request, *args, **kwargs)

    async def _dispatch_on_loop(self, request, *args, **kwargs):
        """adrf's async_dispatch without its two thread hops, for a request whose
        key was resolved above: DRF's `initial` (authentication from that key,
        IsWorkspaceMember from its context, content negotiation; no throttles)
        and the JSON rendering are pure CPU then, so both run on the event loop.
        A hop costs ~0.2 ms of CPU (thread wake-up, future, context copy)."""
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = request.method.lower()
            handler = self.http_method_not_allowed
            if method in self.http_method_names:
                handler = getattr(self, method, self.http_method_not_allowed)
            if iscoroutinefunction(handler):
                response = await handler(request, *args, **kwargs)
            else:  # a sync handler may query: in a thread, as adrf does
                response = await sync_to_async(handler)(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return _rendered(request._request, self.response)


def _rendered(request, response):
    """Render a DRF Response now and let Django's handler await its `render`
    (it runs a sync `render` through a thread): the same object, `.data` kept.
    A streamed answer (chat) has nothing to render."""
    if not callable(getattr(response, "render", None)):
        return response
    response.render()
    if not getattr(request, "answered_on_the_loop", False):
        return response  # Django's sync handler (tests' client) calls `render` itself

    async def render():
        return response

    response.render = render
    return response


@dataclass(frozen=True)
class FeatureInput:
    """A feature call's body; a saved document (`document_id`) or an uploaded
    file (`document`) has become its `text`."""

    data: dict[str, Any]
    source_name: str = ""
    document: Document | None = field(default=None, compare=False)


async def feature_input(request) -> FeatureInput:
    data = body(request)
    if data.get("document_id") not in (None, ""):
        document = await run_db(
            library.get_document,
            workspace=request.workspace,
            user=request.user,
            pk=data["document_id"],
        )
        return FeatureInput({**data, "text": document.text}, document.name, document)
    upload = request.FILES.get("document")
    if upload is not None:
        from ai_features.documents import extract_text

        # Parsing a PDF or DOCX is CPU work: keep it off the event loop.
        parsed = await asyncio.get_running_loop().run_in_executor(None, extract_text, upload)
        return FeatureInput({**data, "text": parsed.text}, parsed.filename)
    return FeatureInput(data)


# --- the registry -------------------------------------------------------------------


class FeaturesView(APIView):
    @extend_schema(
        operation_id="features_list",
        summary="The features this API sells, and whether your plan includes each",
        responses=listed("FeatureList", _feature),
    )
    def get(self, request):
        from usage.limits import get_workspace_limits

        limits = get_workspace_limits(request.workspace)
        return Response(
            {
                "results": [
                    {
                        "slug": f.slug,
                        "name": f.name,
                        "description": f.description,
                        "model": f.model,
                        "max_output_tokens": f.max_output_tokens,
                        "included_in_plan": limits.allows_feature(f.slug),
                    }
                    for f in all_features()
                ]
            }
        )


class FeatureRunView(MeteredView):
    """Any registered feature, by slug: what makes a new feature module usable
    over the API without writing an endpoint for it."""

    @extend_schema(
        operation_id="features_run",
        summary="Run any registered feature with its own input (metered)",
        description=(
            "The body is the feature's input (see its documentation); the answer is "
            "`{id, result, model, usage}`. Summarize, extract and chat also have their "
            "own endpoints (`/summaries`, `/extractions`, `/chats`)."
        ),
        request=OpenApiTypes.OBJECT,
        responses={201: _feature_run},
    )
    async def post(self, request, slug):
        from usage.idempotency import Outcome, fingerprint_of, run_idempotent

        feature = _runnable(slug)
        data = body(request)
        value = feature.validate(data)
        caller = caller_for(request)

        async def produce(claim):
            def store(event, result, usage, attempts):
                answer = {"id": event.request_id, "result": result, "model": event.model}
                answer["usage"] = usage
                if claim is not None:
                    claim.store(status=201, body=answer, request_id=event.request_id)
                return answer

            run = await run_feature(caller=caller, feature=feature, value=value, store=store)
            return Outcome(201, run.record, run.request_id)

        outcome = await run_idempotent(
            request=request,
            workspace_id=caller.workspace.pk,
            fingerprint=fingerprint_of(feature.slug, data),
            produce=produce,
        )
        return outcome_response(outcome)


def _runnable(slug: str):
    from config.errors import NotFound

    try:
        feature = get_feature(slug)
    except KeyError:
        raise NotFound(f"There is no feature “{slug[:40]}”.") from None
    if slug == "chat":  # conversations have their own resource
        raise NotFound("Chat works on conversations: use /api/v1/chats.")
    return feature


# --- summarize -------------------------------------------------------------------

_summary = inline_serializer(
    "Summary",
    {
        "id": serializers.UUIDField(),
        "summary": serializers.CharField(),
        "model": serializers.CharField(),
        "usage": _usage,
    },
)
_summary_options = {
    "length": serializers.ChoiceField(list(summarize.LENGTH_TOKENS), default="medium"),
    "format": serializers.ChoiceField(list(summarize.FORMATS), default="paragraph"),
}


class SummariesView(MeteredView):
    # Forms too: the contract's multipart `document`, and plain form posts.
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="summaries_create",
        summary="Summarize text or a document (metered)",
        description=(
            "JSON `{text, length, format}`, or multipart with `document` (a .txt/.md/.pdf/"
            ".docx file) or `document_id` (an uploaded document). Text up to "
            "TOLLGATE_MAX_INPUT_CHARS characters (200,000 by default). Send "
            "`Idempotency-Key` to make retries safe."
        ),
        request={
            "application/json": inline_serializer(
                "SummaryRequest",
                {"text": _text, "document_id": _document_id, **_summary_options},
            ),
            "multipart/form-data": inline_serializer(
                "SummaryUpload",
                {
                    "document": serializers.FileField(required=False),
                    "text": serializers.CharField(required=False),
                    "document_id": _document_id,
                    **_summary_options,
                },
            ),
        },
        responses={201: _summary},
    )
    async def post(self, request):
        from usage.idempotency import Outcome, run_idempotent

        source = await feature_input(request)
        value = get_feature(summarize.SLUG).validate(source.data)
        caller = caller_for(request)

        async def produce(claim):
            summary = await summarize.summary_run(
                caller=caller, value=value, source=source.source_name, claim=claim
            )
            return Outcome(201, summary.as_api(), summary.request_id)

        outcome = await run_idempotent(
            request=request,
            workspace_id=caller.workspace.pk,
            fingerprint=summarize.fingerprint(value),
            produce=produce,
        )
        return outcome_response(outcome)


class SummaryDetailView(FeatureView, APIView):
    @extend_schema(
        operation_id="summaries_retrieve",
        summary="One of your summaries (private: another member gets 404)",
        responses={200: _summary},
    )
    def get(self, request, pk):
        summary = summarize.get_summary(workspace=request.workspace, user=request.user, pk=pk)
        response = Response(summary.as_api(full=True))
        response["X-Request-Id"] = summary.request_id
        return response


# --- extract ---------------------------------------------------------------------


class ExtractionsView(MeteredView):
    @extend_schema(
        operation_id="extractions_create",
        summary="Extract typed fields from text or a document",
        description=(
            "JSON `{text, fields}` or multipart with `document` (a .txt/.md/.pdf/.docx "
            "file) or `document_id` (an uploaded document) and `fields` as JSON text. "
            "The answer is validated against the fields; a malformed answer is retried "
            "once (both attempts are metered), then 502 upstream_error."
        ),
        request={
            "application/json": inline_serializer(
                "ExtractionRequest",
                {"text": _text, "document_id": _document_id, "fields": _fields},
            ),
            "multipart/form-data": inline_serializer(
                "ExtractionUpload",
                {
                    "document": serializers.FileField(required=False),
                    "text": serializers.CharField(required=False),
                    "document_id": _document_id,
                    "fields": serializers.CharField(help_text="The fields as JSON text."),
                },
            ),
        },
        responses={201: _extraction},
    )
    async def post(self, request):
        from usage.idempotency import run_idempotent

        source = await feature_input(request)
        value = extractions.extract_input(data=source.data)
        caller = caller_for(request)
        outcome = await run_idempotent(
            request=request,
            workspace_id=caller.workspace.pk,
            fingerprint=extractions.fingerprint(value, source.document),
            produce=lambda claim: _extract(
                caller, value, source.document, source.source_name, claim
            ),
        )
        return outcome_response(outcome)


async def _extract(caller, value, document, source_name, claim):
    from usage.idempotency import Outcome

    extraction = await extractions.extraction_run(
        caller=caller, value=value, document=document, source_name=source_name, claim=claim
    )
    return Outcome(201, extractions.extraction_as_dict(extraction), extraction.request_id)


def outcome_response(outcome) -> Response:
    response = Response(outcome.body, status=outcome.status)
    response["X-Request-Id"] = outcome.request_id
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


class ExtractionDetailView(FeatureView, APIView):
    @extend_schema(
        operation_id="extractions_retrieve",
        summary="One of your extractions",
        responses={200: _extraction_detail},
    )
    def get(self, request, pk):
        extraction = extractions.get_extraction(
            workspace=request.workspace, user=request.user, pk=pk
        )
        return Response({**extractions.extraction_as_dict(extraction), "fields": extraction.fields})


# --- chat ------------------------------------------------------------------------


class ChatPagination(Cursor):
    ordering = ("-updated_at", "-pk")
    page_size = 50


def chat_as_dict(conversation: Conversation) -> dict:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


message_as_dict = conversations.message_as_dict


class ChatsView(FeatureView, APIView):
    parser_classes = [JSONParser]  # API.md: chat bodies are JSON
    pagination_class = ChatPagination  # read by the schema: {next, previous, results}

    @extend_schema(
        operation_id="chats_list",
        summary="Your conversations, most recently active first (cursor-paginated)",
        responses=_chat.__class__(many=True),
    )
    def get(self, request):
        paginator = ChatPagination()
        page = paginator.paginate_queryset(
            conversations.conversations_for(workspace=request.workspace, user=request.user),
            request,
            view=self,
        )
        return paginator.get_paginated_response([chat_as_dict(c) for c in page])

    @extend_schema(
        operation_id="chats_create",
        summary="Start a conversation",
        request=inline_serializer(
            "ChatCreate",
            {
                "title": serializers.CharField(
                    required=False,
                    allow_null=True,
                    allow_blank=True,
                    max_length=conversations.MAX_TITLE_CHARS,
                    help_text="Empty or null: “New chat”, then the first message's words.",
                )
            },
        ),
        responses={201: _chat_created},
    )
    def post(self, request):
        ensure_allowed("chat", request.workspace)
        conversation = conversations.conversation_create(
            workspace=request.workspace, owner=request.user, title=body(request).get("title")
        )
        data = chat_as_dict(conversation)
        del data["updated_at"]
        return Response(data, status=201)


class ChatDetailView(FeatureView, APIView):
    parser_classes = [JSONParser]  # API.md: chat bodies are JSON

    def _get(self, request, pk) -> Conversation:
        return conversations.get_conversation(workspace=request.workspace, user=request.user, pk=pk)

    @extend_schema(
        operation_id="chats_retrieve",
        summary="A conversation with its messages",
        responses={200: _chat_detail},
    )
    def get(self, request, pk):
        conversation = self._get(request, pk)
        messages = conversations.conversation_messages(conversation=conversation)
        return Response(
            {**chat_as_dict(conversation), "messages": [message_as_dict(m) for m in messages]}
        )

    @extend_schema(
        operation_id="chats_rename",
        summary="Rename a conversation",
        request=inline_serializer(
            "ChatRename",
            {"title": serializers.RegexField(r"\S", max_length=conversations.MAX_TITLE_CHARS)},
        ),
        responses={200: _chat},
    )
    def patch(self, request, pk):
        conversation, changes = self._get(request, pk), body(request)
        if "title" in changes:  # PATCH without a title changes nothing
            conversation = conversations.conversation_rename(
                conversation=conversation, title=changes["title"]
            )
        return Response(chat_as_dict(conversation))

    @extend_schema(
        operation_id="chats_destroy", summary="Delete a conversation", responses={204: None}
    )
    def delete(self, request, pk):
        conversations.conversation_delete(conversation=self._get(request, pk))
        return Response(status=204)


class ChatMessagesView(MeteredView):
    parser_classes = [JSONParser]  # API.md: chat bodies are JSON

    @extend_schema(
        operation_id="chats_messages_create",
        summary="Send a message and get the answer",
        description=(
            "With `stream: false` the answer comes as JSON `{id, role, content, usage}`. "
            "With `stream: true` the response is `text/event-stream`: `delta` events "
            "(`{text}`), one `usage` event, then `done` (`{id, status, omitted_messages, "
            "title}`); the request id is in `X-Request-Id`. Errors before the answer starts are "
            "ordinary JSON errors (a timeout before the first token: 504 upstream_timeout); "
            "a failure mid-answer ends the stream with one `error` event and nothing after "
            "it. `Idempotency-Key` replays a finished answer as the same events. "
            "Closing the connection stops the answer; the tokens "
            "already used are still recorded. Earlier messages that don't fit the "
            "model's context are left out (`omitted_messages`)."
        ),
        request=inline_serializer(
            "ChatMessageCreate",
            {
                "content": serializers.RegexField(
                    r"\S", help_text="Not blank; at most 20,000 characters (longer: 413)."
                ),
                "stream": serializers.BooleanField(default=False),
            },
        ),
        responses={
            (200, "application/json"): _message,
            # `stream: true`: Server-Sent Events, each one of these.
            (200, "text/event-stream"): _stream_event,
        },
    )
    async def post(self, request, pk):
        turn = get_feature("chat").validate(body(request))
        conversation = await run_db(
            conversations.get_conversation, workspace=request.workspace, user=request.user, pk=pk
        )
        caller = caller_for(request)
        if not turn.stream:
            from usage.idempotency import fingerprint_of, run_idempotent

            outcome = await run_idempotent(
                request=request,
                workspace_id=caller.workspace.pk,
                fingerprint=fingerprint_of("chat", conversation.pk, turn.content),
                produce=lambda claim: _reply(caller, conversation, turn, claim),
            )
            return outcome_response(outcome)
        return await _stream_reply(request, caller, conversation, turn)


async def _stream_reply(request, caller, conversation, turn):
    """Streamed chat honours Idempotency-Key too: the answer is stored with its
    charge, and a retry replays it as the same event stream (no second call)."""
    from usage.idempotency import Outcome, begin, fingerprint_of, release

    claim = await begin(
        request=request,
        workspace_id=caller.workspace.pk,
        fingerprint=fingerprint_of("chat", conversation.pk, turn.content, "stream"),
    )
    if isinstance(claim, Outcome):
        return _replayed_stream(claim)
    try:
        started = await conversations.chat_reply_stream(
            caller=caller, conversation=conversation, turn=turn, claim=claim
        )
    except Exception:
        await release(claim)
        raise
    return _event_stream(started.events, started.request_id)


def _replayed_stream(outcome) -> StreamingHttpResponse:
    answer = outcome.body or {}

    async def events():
        yield conversations.sse("delta", {"text": answer.get("content", "")})
        yield conversations.sse("usage", answer.get("usage") or {})
        yield conversations.sse(
            "done",
            {
                "id": answer.get("id"),
                "status": answer.get("status"),
                "omitted_messages": answer.get("omitted_messages", 0),
            },
        )

    response = _event_stream(events(), outcome.request_id)
    response["Idempotent-Replayed"] = "true"
    return response


def _event_stream(events, request_id: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let a proxy pass tokens through at once
    response["X-Request-Id"] = request_id
    return response


async def _reply(caller, conversation, turn, claim):
    from usage.idempotency import Outcome

    message = await conversations.chat_reply(
        caller=caller, conversation=conversation, turn=turn, claim=claim
    )
    return Outcome(200, message_as_dict(message), message.request_id)


# --- documents -------------------------------------------------------------------


class DocumentPagination(Cursor):
    ordering = ("-created_at", "-pk")
    page_size = 50


class DocumentsView(FeatureView, APIView):
    pagination_class = DocumentPagination  # read by the schema: {next, previous, results}

    @extend_schema(
        operation_id="documents_list",
        summary="Your uploaded documents (cursor-paginated)",
        responses=_document.__class__(many=True),
    )
    def get(self, request):
        paginator = DocumentPagination()
        page = paginator.paginate_queryset(
            library.documents_for(workspace=request.workspace, user=request.user),
            request,
            view=self,
        )
        return paginator.get_paginated_response([library.document_as_dict(d) for d in page])

    @extend_schema(
        operation_id="documents_create",
        summary="Upload a document (.txt, .md, .pdf, .docx)",
        description=(
            "Multipart with `document`. Limits (settings): .txt, .md, .pdf or .docx up to "
            "TOLLGATE_MAX_UPLOAD_BYTES (10 MB), PDFs up to TOLLGATE_MAX_PDF_PAGES (50) pages, "
            "text up to TOLLGATE_MAX_INPUT_CHARS (200,000) characters → 413; other types → "
            "415; empty, damaged, password-protected or image-only files → 400. The type is "
            "checked by content. Only the uploader can see a document (others get 404)."
        ),
        request={
            "multipart/form-data": inline_serializer(
                "DocumentUpload", {"document": serializers.FileField()}
            )
        },
        responses={201: _document},
    )
    def post(self, request):
        upload = request.FILES.get("document")
        if upload is None:
            raise InvalidRequest(
                "Attach a file in the “document” field (multipart/form-data).",
                details={"document": ["Required."]},
            )
        document = library.document_upload(
            workspace=request.workspace, user=request.user, upload=upload
        )
        return Response(library.document_as_dict(document), status=201)


class DocumentDetailView(FeatureView, APIView):
    def _get(self, request, pk):
        return library.get_document(workspace=request.workspace, user=request.user, pk=pk)

    @extend_schema(
        operation_id="documents_retrieve",
        summary="A document with its extracted text",
        responses={200: _document_detail},
    )
    def get(self, request, pk):
        return Response(library.document_as_dict(self._get(request, pk), with_text=True))

    @extend_schema(
        operation_id="documents_destroy", summary="Delete a document", responses={204: None}
    )
    def delete(self, request, pk):
        library.document_delete(document=self._get(request, pk))
        return Response(status=204)
