"""Extract runs: validate, call the meter (with one retry for malformed
answers), keep the result for the person's history and downloads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from ai_features.models_features import Document, Extraction
from ai_features.registry import get_feature
from ai_features.runs import run_feature
from config.errors import NotFound
from config.tabular import Column, csv_text

RECENT_RUNS = 10


def extractions_for(*, workspace, user) -> QuerySet[Extraction]:
    return Extraction.objects.for_workspace(workspace).filter(user=user)


def get_extraction(*, workspace, user, pk) -> Extraction:
    try:
        return extractions_for(workspace=workspace, user=user).get(pk=int(pk))
    except (Extraction.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such extraction.") from None


def extract_input(*, data: Mapping[str, Any], document: Document | None = None):
    if document is not None:
        data = {**data, "text": document.text}
    return get_feature("extract").validate(data)


def fingerprint(value, document: Document | None) -> str:
    from usage.idempotency import fingerprint_of

    fields = [f.as_dict() for f in value.fields]
    return fingerprint_of("extract", value.text, fields, document.pk if document else None)


async def extraction_run(
    *,
    caller,
    value,
    document: Document | None = None,
    source_name: str = "",
    claim=None,
) -> Extraction:
    """Run extract; the Extraction row (and the idempotent response, if a
    claim is given) is written in the transaction that charges the call."""
    if document is not None:
        source_name = document.name

    def store(event, result, usage, attempts: int) -> Extraction:
        extraction = Extraction.objects.create(
            workspace_id=event.workspace_id,
            user_id=event.user_id,
            document=document,
            source_name=source_name[:255],
            source_preview=" ".join(value.text.split())[:200],
            fields=[f.as_dict() for f in value.fields],
            data=result,
            model=event.model,
            request_id=event.request_id,
            input_tokens=usage["input_tokens"],
            cached_input_tokens=usage["cached_input_tokens"],
            output_tokens=usage["output_tokens"],
            attempts=attempts,
        )
        if claim is not None:
            claim.store(
                status=201, body=extraction_as_dict(extraction), request_id=event.request_id
            )
        return extraction

    run = await run_feature(
        caller=caller,
        feature=get_feature("extract"),
        value=value,
        moderation_text=value.text,
        store=store,
    )
    return run.record


def extraction_as_dict(extraction: Extraction) -> dict[str, Any]:
    return {
        "id": extraction.pk,
        "data": extraction.data,
        "model": extraction.model,
        "usage": extraction.usage_dict(),
    }


def extraction_csv(extraction: Extraction) -> str:
    """One header row of field names, one row of values (empty for null);
    formula-escaped by the one table helper (config.tabular)."""
    columns = [Column(f["name"]) for f in extraction.fields]
    return csv_text(columns, [extraction.data])


def extraction_json(extraction: Extraction) -> str:
    return json.dumps(extraction.data, indent=2, ensure_ascii=False)
