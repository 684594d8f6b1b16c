"""Chat conversations: private to the person who started them (another member
of the same workspace gets 404), saved history, streamed answers.

Every answer is one walk through the registry's runner (`ai_features.runs`):
`run_feature` for a whole answer, `stream_feature` (the meter's stream) for a
streamed one. Stop = the client closes the connection (the Stop button aborts
the request; Django cancels us): we close the meter's stream, which ends the
upstream generation and records what was produced (event status `stopped`);
the question and the partial answer stay in the conversation, as a `stopped`
message carrying the recorded tokens — also when Stop comes before the first
token."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, QuerySet

from ai_features.features.chat import Chat, ChatTurn, FittedHistory
from ai_features.models_features import Conversation, Message
from ai_features.registry import get_feature
from ai_features.runs import check_allowed, new_request_id, run_feature, stream_feature
from config import clock
from config.errors import ApiError, InvalidRequest, NotFound, UpstreamError, to_api_error
from usage.dbpool import run_db

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
MAX_TITLE_CHARS = 200


def chat_feature() -> Chat:
    return get_feature("chat")  # type: ignore[return-value]


# --- reads ---------------------------------------------------------------------


def conversations_for(*, workspace, user) -> QuerySet[Conversation]:
    return (
        Conversation.objects.for_workspace(workspace)
        .filter(owner=user)
        .annotate(message_count=Count("messages"))
    )


def get_conversation(*, workspace, user, pk) -> Conversation:
    try:
        return Conversation.objects.for_workspace(workspace).get(owner=user, pk=int(pk))
    except (Conversation.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such conversation.") from None


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("created_at", "pk")


# --- writes --------------------------------------------------------------------


def clean_title(raw) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidRequest("“title” must be a string.", details={"title": ["Must be a string."]})
    title = " ".join(raw.split())
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidRequest(
            f"Titles have at most {MAX_TITLE_CHARS} characters.",
            details={"title": [f"At most {MAX_TITLE_CHARS} characters."]},
        )
    return title


def conversation_create(*, workspace, owner, title: str = "") -> Conversation:
    return Conversation.objects.create(
        workspace=workspace, owner=owner, title=clean_title(title) or DEFAULT_TITLE
    )


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = clean_title(title)
    if not title:
        raise InvalidRequest("A title can't be empty.", details={"title": ["Required."]})
    conversation.title = title
    conversation.save(update_fields=["title"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def _title_from(content: str) -> str:
    words = " ".join(content.split())
    return words if len(words) <= 60 else words[:57].rstrip() + "…"


@transaction.atomic
def _save_user_message(*, conversation: Conversation, content: str) -> Message:
    now = clock.now()
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=content, created_at=now
    )
    fields = ["updated_at"]
    conversation.updated_at = now
    if conversation.title == DEFAULT_TITLE:
        conversation.title = _title_from(content)
        fields.append("title")
    conversation.save(update_fields=fields)
    return message


def _history(conversation: Conversation, new_content: str) -> list[dict[str, str]]:
    rows = (
        conversation.messages.exclude(content="")
        .exclude(status=Message.Status.STREAMING)
        .order_by("created_at", "pk")
        .values_list("role", "content")
    )
    return [{"role": r, "content": c} for r, c in rows] + [{"role": "user", "content": new_content}]


def _usage_fields(usage: dict[str, int]) -> dict[str, int]:
    return {
        "input_tokens": usage.get("input_tokens", 0),
        "cached_input_tokens": usage.get("cached_input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
    }


def _save_assistant_message(
    *,
    conversation: Conversation,
    content: str,
    status: str,
    model: str,
    request_id: str,
    omitted: int,
    usage: dict[str, int],
) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=content,
        status=status,
        model=model,
        request_id=request_id,
        omitted_messages=omitted,
        **_usage_fields(usage),
    )
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=clock.now())
    return message


@transaction.atomic
def _open_streamed_turn(
    *, conversation: Conversation, content: str, prep: PreparedTurn
) -> tuple[Message, Message]:
    """The user's message and a placeholder for the answer, saved before the
    call so the meter can write the usage onto it whenever it settles."""
    user_message = _save_user_message(conversation=conversation, content=content)
    placeholder = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=prep.feature.model,
        request_id=prep.request_id,
        omitted_messages=prep.omitted,
    )
    return user_message, placeholder


@transaction.atomic
def _cancel_streamed_turn(
    *, conversation: Conversation, messages: tuple[Message, Message], title: str
) -> None:
    """The call was refused before any answer (nothing charged): leave no trace
    of the turn, the title it may have given the conversation included."""
    Message.objects.filter(pk__in=[m.pk for m in messages]).delete()
    Conversation.objects.filter(pk=conversation.pk).update(title=title)


def _record_usage_on(message_id: int, claim=None):
    """`on_recorded` for the meter: runs in the transaction that charges the call.
    Given an Idempotency-Key claim, the finished answer is stored with the
    charge, so a retry replays it (also after the client went away)."""

    def record(event, _text: str = "") -> None:
        Message.objects.filter(pk=message_id).update(
            input_tokens=event.input_tokens,
            cached_input_tokens=event.cached_input_tokens,
            output_tokens=event.output_tokens,
        )
        if claim is not None and claim.key is not None:
            message = Message.objects.get(pk=message_id)
            answer = message_as_dict(message) | {
                "content": _text,
                "status": Message.Status.COMPLETE,
            }
            claim.store(status=200, body=answer, request_id=event.request_id)

    return record


def _close_streamed_turn(
    *, message_id: int, request_id: str, content: str, status: str, completion
) -> Message:
    fields = {"content": content, "status": status}
    if completion is not None:
        fields |= {"model": completion.model, **_usage_fields(_usage_dict(completion.usage))}
    else:  # stopped or broken: the ledger has it if the meter already settled
        from usage.models import UsageEvent

        event = UsageEvent.objects.filter(request_id=request_id).first()
        if event is not None:
            fields |= _usage_fields(vars(event))
    Message.objects.filter(pk=message_id).update(**fields)
    message = Message.objects.get(pk=message_id)
    Conversation.objects.filter(pk=message.conversation_id).update(updated_at=clock.now())
    return message


@dataclass
class PreparedTurn:
    feature: Chat
    messages: list[dict[str, str]]
    omitted: int
    request_id: str


async def _prepare(*, caller, conversation: Conversation, turn: ChatTurn) -> PreparedTurn:
    feature = chat_feature()
    await check_allowed(feature, caller.workspace)
    history = await run_db(_history, conversation, turn.content)
    fitted = feature.fit_history(history)
    return PreparedTurn(feature, fitted.messages, fitted.omitted, new_request_id())


def _usage_dict(usage) -> dict[str, int]:
    return usage.as_dict() if hasattr(usage, "as_dict") else dict(usage)


async def chat_reply(*, caller, conversation: Conversation, turn: ChatTurn, claim=None) -> Message:
    """Answer in one piece (stream: false). Both messages (and the idempotent
    response, given a claim) are saved in the transaction that charges the call."""
    prep = await _prepare(caller=caller, conversation=conversation, turn=turn)

    def store(event, text: str, _usage, _attempts) -> Message:
        _save_user_message(conversation=conversation, content=turn.content)
        message = _save_assistant_message(
            conversation=conversation,
            content=text,
            status=Message.Status.COMPLETE,
            model=event.model,
            request_id=event.request_id,
            omitted=prep.omitted,
            usage=vars(event),
        )
        if claim is not None:
            claim.store(status=200, body=message_as_dict(message), request_id=event.request_id)
        return message

    run = await run_feature(
        caller=caller,
        feature=prep.feature,
        value=FittedHistory(prep.messages, prep.omitted),
        request_id=prep.request_id,
        moderation_text=turn.content,
        store=store,
    )
    return run.record


def message_as_dict(message: Message) -> dict:
    data = {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "created_at": message.created_at.isoformat(),
    }
    if message.role == Message.Role.ASSISTANT:
        data["model"] = message.model
        data["omitted_messages"] = message.omitted_messages
        data["usage"] = message.usage_dict()
    return data


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@dataclass
class ChatStream:
    """A started stream: errors before the first token were already raised (so
    the view can answer them with a proper status); `events()` yields SSE."""

    request_id: str
    omitted: int
    events: AsyncIterator[bytes]


async def chat_reply_stream(
    *, caller, conversation: Conversation, turn: ChatTurn, claim=None
) -> ChatStream:

    prep = await _prepare(caller=caller, conversation=conversation, turn=turn)
    title_before = conversation.title
    opened = await run_db(
        _open_streamed_turn, conversation=conversation, content=turn.content, prep=prep
    )
    upstream = stream_feature(
        caller=caller,
        feature=prep.feature,
        value=FittedHistory(prep.messages, prep.omitted),
        request_id=prep.request_id,
        moderation_text=turn.content,
        on_recorded=_record_usage_on(opened[1].pk, claim),
    )
    # Quota, caps, rate limits, moderation and connection errors surface here,
    # before a 200 is sent: answer them as ordinary JSON errors.
    try:
        first = await anext(upstream)
    except StopAsyncIteration:
        first = None
    except asyncio.CancelledError:
        # Stop before the first token: the meter records what was used; the
        # question stays, with a stopped (empty) answer carrying those tokens.
        await _shielded(upstream.aclose())
        await _shielded(
            run_db(
                _close_streamed_turn,
                message_id=opened[1].pk,
                request_id=prep.request_id,
                content="",
                status=Message.Status.STOPPED,
                completion=None,
            )
        )
        raise
    except BaseException:
        await _shielded(upstream.aclose())
        await _shielded(
            run_db(
                _cancel_streamed_turn,
                conversation=conversation,
                messages=opened,
                title=title_before,
            )
        )
        raise
    return ChatStream(
        request_id=prep.request_id,
        omitted=prep.omitted,
        events=_relay(upstream, first, prep, opened, conversation.title, claim),
    )


async def _relay(
    upstream,
    first,
    prep: PreparedTurn,
    opened: tuple[Message, Message],
    title: str,
    claim=None,
):
    user_message, placeholder = opened
    parts: list[str] = []
    completion = None
    status = Message.Status.STOPPED  # unless we reach the end
    error: ApiError | None = None
    try:
        item = first
        while item is not None:
            if isinstance(item, str):
                if item:
                    parts.append(item)
                    yield sse("delta", {"text": item})
            else:
                completion = item
            try:
                item = await anext(upstream)
            except StopAsyncIteration:
                item = None
        status = Message.Status.COMPLETE
    except ApiError as exc:  # the upstream broke mid-answer
        status, error = Message.Status.FAILED, exc
    except Exception as exc:  # never let a failure escape the response mid-stream
        logger.exception("chat stream %s failed", prep.request_id)
        status, error = Message.Status.FAILED, to_api_error(exc) or UpstreamError()
    finally:
        # On Stop (the client went away: Django cancels us) closing the meter's
        # stream ends the upstream call and records what was produced onto the
        # placeholder (`on_recorded`) before returning; we keep what was written.
        await _shielded(upstream.aclose())
        message = await _shielded(
            run_db(
                _close_streamed_turn,
                message_id=placeholder.pk,
                request_id=prep.request_id,
                content="".join(parts),
                status=status,
                completion=completion,
            )
        )
    if error is not None:
        # API.md: a stream that fails after it started ends with ONE error event,
        # and nothing after it. The message keeps status "failed".
        if claim is not None:
            from usage.idempotency import release

            await _shielded(release(claim))
        yield sse("error", error.as_dict())
        return
    yield sse("usage", message.usage_dict())
    yield sse(
        "done",
        {
            "id": message.pk,
            "status": message.status,
            "omitted_messages": prep.omitted,
            "user_message_id": user_message.pk,
            "title": title,
        },
    )


async def _shielded(awaitable):
    """Finish cleanup even if the task is cancelled again meanwhile."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        return await task
