"""Extract runs: validate, call the meter (with one retry for malformed
answers), keep the result for the person's history and downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from ai_features.models_features import Document, Extraction
from ai_features.registry import get_feature
from ai_features.runs import run_feature
from config.errors import NotFound

RECENT_RUNS = 10


def extractions_for(*, workspace, user) -> QuerySet[Extraction]:
    return Extraction.objects.for_workspace(workspace).filter(user=user)


def get_extraction(*, workspace, user, pk) -> Extraction:
    try:
        return extractions_for(workspace=workspace, user=user).get(pk=int(pk))
    except (Extraction.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such extraction.") from None


async def extraction_run(
    *,
    caller,
    data: Mapping[str, Any],
    document: Document | None = None,
    source_name: str = "",
    request_id: str | None = None,
) -> Extraction:
    feature = get_feature("extract")
    if document is not None:
        data = {**data, "text": document.text}
        source_name = document.name
    value = feature.validate(data)
    run = await run_feature(
        caller=caller,
        feature=feature,
        value=value,
        request_id=request_id,
        moderation_text=value.text,
    )
    usage = run.usage()
    return await Extraction.objects.acreate(
        workspace=caller.workspace,
        user=caller.user,
        document=document,
        source_name=source_name[:255],
        source_preview=" ".join(value.text.split())[:200],
        fields=[f.as_dict() for f in value.fields],
        data=run.result,
        model=run.model,
        request_id=run.request_id,
        input_tokens=usage["input_tokens"],
        cached_input_tokens=usage["cached_input_tokens"],
        output_tokens=usage["output_tokens"],
        attempts=run.attempts,
    )


def extraction_as_dict(extraction: Extraction) -> dict[str, Any]:
    return {
        "id": extraction.pk,
        "data": extraction.data,
        "model": extraction.model,
        "usage": extraction.usage_dict(),
    }


def extraction_csv(extraction: Extraction) -> str:
    """One header row of field names, one row of values (empty for null)."""
    names = [f["name"] for f in extraction.fields]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    writer.writerow(["" if extraction.data.get(n) is None else extraction.data[n] for n in names])
    return out.getvalue()


def extraction_json(extraction: Extraction) -> str:
    return json.dumps(extraction.data, indent=2, ensure_ascii=False)


aget_extraction = sync_to_async(get_extraction)
