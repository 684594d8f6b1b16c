"""Feature endpoints: plain async Django views under ASGI, so a request
waiting on the model holds no worker thread. They authenticate through the
meter (`usage.metering.authenticate`) and render errors in the API format."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid

from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from ai_features.documents import extract_text
from ai_features.models import Summary
from ai_features.summarize import SummarizeInput, summarize, validate
from config.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    UnsupportedMediaType,
    error_response,
    to_api_error,
)
from usage.dbpool import run_db
from usage.idempotency import Outcome, run_idempotent
from usage.metering import authenticate


def async_api(*methods: str):
    """Method check + the API's error format for async views (no thread hop
    through the error middleware). CSRF is checked by `authenticate` for
    session callers; API-key callers need none."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in methods:
                error = ApiError(
                    f"Method {request.method} is not allowed here.",
                    code="method_not_allowed",
                    status=405,
                )
                response = error_response(error)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return await view(request, *args, **kwargs)
            except Exception as exc:
                error = to_api_error(exc)
                if error is None:
                    raise
                return error_response(error)

        return wrapper

    return decorate


def respond(outcome: Outcome) -> JsonResponse:
    response = JsonResponse(outcome.body, status=outcome.status)
    response["X-Request-Id"] = outcome.request_id
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _json_body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"null")
    except RequestDataTooBig:
        raise
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


async def _summarize_input(request: HttpRequest) -> SummarizeInput:
    content_type = request.content_type or ""
    if content_type == "application/json":
        data = _json_body(request)
        return validate(text=data.get("text"), length=data.get("length"), format=data.get("format"))
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form, files = request.POST, request.FILES
        except MultiPartParserError:
            raise InvalidRequest("The multipart body could not be read.") from None
        except TooManyFilesSent:
            raise InvalidRequest("Send one `document` file per request.") from None
        upload = files.get("document")
        if upload is None:
            return validate(
                text=form.get("text"), length=form.get("length"), format=form.get("format")
            )
        # Parsing a PDF or DOCX is CPU work: keep it off the event loop.
        document = await asyncio.get_running_loop().run_in_executor(None, extract_text, upload)
        return validate(
            text=document.text,
            length=form.get("length"),
            format=form.get("format"),
            source=document.filename,
        )
    raise UnsupportedMediaType(
        "Send JSON (application/json) or a multipart form with a `document` file.",
        details={"content_type": content_type},
    )


@async_api("POST")
async def summaries(request: HttpRequest) -> JsonResponse:
    caller = await authenticate(request)
    inp = await _summarize_input(request)
    outcome = await run_idempotent(
        request=request,
        workspace_id=caller.workspace.pk,
        fingerprint=inp.fingerprint,
        produce=lambda claim: summarize(caller=caller, inp=inp, claim=claim),
    )
    return respond(outcome)


def _summary_for(workspace_id: int, summary_id: str) -> Summary | None:
    return Summary.objects.filter(workspace_id=workspace_id, pk=summary_id).first()


@async_api("GET")
async def summary_detail(request: HttpRequest, summary_id: str) -> JsonResponse:
    caller = await authenticate(request)
    try:
        uuid.UUID(summary_id)
    except ValueError:
        raise NotFound() from None
    summary = await run_db(_summary_for, caller.workspace.pk, summary_id)
    if summary is None:
        raise NotFound()
    response = JsonResponse(summary.as_api(full=True))
    response["X-Request-Id"] = summary.request_id
    return response
