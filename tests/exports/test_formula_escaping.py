"""Issue 9 item 12: the usage CSV and the extraction CSV go through the one
table helper, so a key or field named like a formula is shown, never run."""

from __future__ import annotations

import csv
import io

import pytest

from ai_features.extractions import extraction_csv
from ai_features.models_features import Extraction
from config import clock
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db
HOSTILE = '=HYPERLINK("http://evil.example","click")'


def test_usage_csv_escapes_a_hostile_key_name(client, make_member, workspace, make_key):
    owner = make_member(workspace=workspace, role="owner")
    key, _secret = make_key(owner, name=HOSTILE)
    UsageEvent.objects.create(
        workspace=workspace,
        user=owner.user,
        api_key=key,
        feature="summarize",
        model="+cmd",
        input_tokens=5,
        output_tokens=5,
        total_tokens=10,
        request_id="@req-1",
        created_at=clock.now(),
    )
    client.force_login(owner.user)
    response = client.get("/usage/dashboard/export.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[0]["key"] == "'" + HOSTILE
    assert rows[0]["model"] == "'+cmd" and rows[0]["request_id"] == "'@req-1"
    assert rows[0]["total_tokens"] == "10"


def test_extraction_csv_escapes_values_and_field_names(make_member, workspace):
    owner = make_member(workspace=workspace, role="owner")
    extraction = Extraction(
        workspace=workspace,
        user=owner.user,
        fields=[{"name": "-name", "type": "string"}, {"name": "total", "type": "number"}],
        data={"-name": HOSTILE, "total": 12.5},
    )
    rows = list(csv.reader(io.StringIO(extraction_csv(extraction))))
    assert rows == [["'-name", "total"], ["'" + HOSTILE, "12.5"]]
