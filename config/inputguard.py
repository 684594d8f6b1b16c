"""The one validation layer for text we can't store (config.textguard), run on
every request before any view: JSON bodies, form and multipart fields, file
names and the query string. NUL, lone surrogates or an integer past bigint →
400 invalid_request naming the field, before anything is reserved. (Text
extracted from an uploaded document is checked where it is extracted,
`ai_features.documents.extract_text`; what reaches the model is checked once
more by the meter.)

JSON is only parsed here when the raw body could hide such a value (a `\\u`
escape or a 19-digit number): the common body costs one byte scan."""

from __future__ import annotations

import contextlib
import json

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest

from config import textguard
from config.errors import InvalidRequest, error_response, is_api_request

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _check_request(request: HttpRequest) -> None:
    if request.GET:
        textguard.check({k: request.GET.getlist(k) for k in request.GET}, "query")
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    content_type = request.content_type or ""
    if content_type == "application/json" or content_type.endswith("+json"):
        _check_json(request)
    elif content_type in FORM_TYPES:
        _check_form(request)


def _check_json(request: HttpRequest) -> None:
    try:
        raw = request.body
    except Exception:
        return
    if not textguard.body_may_hide_unstorable(raw):
        return
    try:
        data = json.loads(raw)
    except ValueError:
        return  # malformed JSON: the view's parser answers 400
    textguard.check(data)


def _check_form(request: HttpRequest) -> None:
    try:
        form, files = request.POST, request.FILES
    except Exception:
        return
    textguard.check({k: form.getlist(k) for k in form})
    for name in form:  # JSON sent as a form field (e.g. extraction `fields`)
        for value in form.getlist(name):
            if value[:1] in "[{" and textguard.body_may_hide_unstorable(value.encode()):
                with contextlib.suppress(ValueError):
                    textguard.check(json.loads(value), name)
    for name in files:
        for upload in files.getlist(name):
            textguard.check(upload.name or "", f"{name}.filename")


class InputGuardMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _refusal(self, request: HttpRequest):
        try:
            _check_request(request)
        except InvalidRequest as error:
            if is_api_request(request):
                return error_response(error)
            from django.http import HttpResponseBadRequest

            return HttpResponseBadRequest(error.message)
        return None

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        return self._refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest):
        return self._refusal(request) or await self.get_response(request)
