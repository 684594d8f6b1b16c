"""Exports over the API (API.md: POST /api/v1/exports, GET /api/v1/exports/{id})
and the download behind the signed, expiring link."""

from __future__ import annotations

import uuid

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import resolve_api_workspace
from billing.models_exports import ExportJob, ExportStatus
from billing.periods import parse_period
from billing.services.exports import (
    Requester,
    export_request,
    job_for_download,
    job_progress_data,
)
from config.errors import AuthenticationRequired, InvalidRequest, NotFound
from config.exports import CONTENT_TYPES, FORMATS, get_kind


class ExportRequestInput(serializers.Serializer):
    kind = serializers.CharField(max_length=40)
    format = serializers.ChoiceField(choices=FORMATS)
    start = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    end = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    # account_data only: "me" (default, the caller's own data) or "workspace" (owners).
    scope = serializers.ChoiceField(["me", "workspace"], required=False)


class ExportCreatedOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(ExportStatus.choices)
    progress = serializers.IntegerField(min_value=0, max_value=100)


class ExportOutput(ExportCreatedOutput):
    kind = serializers.CharField()
    download_url = serializers.URLField(required=False)
    expires_at = serializers.DateTimeField(required=False)


class ExportErrorBody(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ExportErrorOutput(serializers.Serializer):
    error = ExportErrorBody()


ERRORS = {
    401: ExportErrorOutput,
    403: ExportErrorOutput,
    404: ExportErrorOutput,
}


def _job_in_workspace(request: Request, job_id: str) -> ExportJob:
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound() from None
    job = ExportJob.objects.for_workspace(request.workspace).filter(pk=pk).first()
    if job is None:
        raise NotFound()
    entry = get_kind(job.kind)
    mine = job.requested_by_id == request.user.pk
    if entry is not None and entry.private and not mine:
        raise NotFound()  # someone's personal data: theirs alone
    if not mine and not request.membership.can(entry.perm if entry else "export_invoices"):
        raise NotFound()
    return job


class ExportListApi(APIView):
    """Queue an export of the caller's workspace; poll it at GET /exports/{id}."""

    @extend_schema(
        operation_id="exports_create",
        request=ExportRequestInput,
        responses={202: ExportCreatedOutput, 400: ExportErrorOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = ExportRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        start, end = parse_period(values.get("start"), values.get("end"))
        job = export_request(
            who=Requester(
                user=request.user, workspace=request.workspace, membership=request.membership
            ),
            kind=values["kind"],
            fmt=values["format"],
            start=start,
            end=end,
            filters={"scope": values["scope"]} if values.get("scope") else None,
        )
        return Response(
            {"id": str(job.pk), "status": job.status, "progress": job.progress}, status=202
        )


class ExportDetailApi(APIView):
    @extend_schema(operation_id="exports_retrieve", responses={200: ExportOutput, **ERRORS})
    def get(self, request: Request, job_id: str) -> Response:
        body = job_progress_data(_job_in_workspace(request, job_id))
        if "download_url" in body:
            body["download_url"] = request.build_absolute_uri(body["download_url"])
        return Response(body)


class SignedLinkPermission(BasePermission):
    """Signed in (session or API key); the tenant check is the service's, since
    back-office links have no workspace."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise AuthenticationRequired()
        resolve_api_workspace(request)
        return True


async def _file_chunks(fh, size: int = 1 << 16):
    try:
        while chunk := await sync_to_async(fh.read, thread_sensitive=False)(size):
            yield chunk
    finally:
        await sync_to_async(fh.close, thread_sensitive=False)()


def file_download(request, job: ExportJob) -> StreamingHttpResponse:
    """The file, streamed: under ASGI through an async iterator (a sync one
    would be read whole into memory by Django), under WSGI as a FileResponse."""
    content_type = CONTENT_TYPES.get(job.format, "application/octet-stream")
    disposition = f'attachment; filename="{job.filename}"'
    fh = job.file.open("rb")
    if isinstance(request, ASGIRequest):
        response = StreamingHttpResponse(_file_chunks(fh), content_type=content_type)
        response["Content-Length"] = str(job.size)
    else:
        response = FileResponse(fh, content_type=content_type)
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = "private, no-store"
    return response


class ExportDownloadApi(APIView):
    permission_classes = [SignedLinkPermission]

    @extend_schema(
        operation_id="exports_download",
        parameters=[OpenApiParameter("token", str, required=True, description="from download_url")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            400: ExportErrorOutput,
            **ERRORS,
        },
    )
    def get(self, request: Request, job_id: str):
        token = request.query_params.get("token", "")
        if not token:
            raise InvalidRequest("The link has no token.", details={"token": ["required"]})
        job = job_for_download(
            job_id=job_id,
            token=token,
            who=Requester(
                user=request.user,
                workspace=getattr(request, "workspace", None),
                membership=getattr(request, "membership", None),
            ),
        )
        return file_download(request._request, job)
