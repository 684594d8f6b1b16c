"""The account_data export: the ZIP is complete and parses; through the export
jobs API it is private to the person who asked; the workspace scope is owners'."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core import mail

from accounts.data_export import write_data_zip
from accounts.models import AuditEvent, Membership
from accounts.privacy import Subject
from tests.factories import MembershipFactory
from tests.privacy.conftest import MARKER

pytestmark = pytest.mark.django_db

PERSON_FILES = {
    "profile.json",
    "memberships.json",
    "chats.json",
    "summaries.json",
    "extractions.json",
    "documents.json",
    "usage_events.json",
    "api_keys.json",
    "invoices.json",
    "consent_records.json",
    "audit_log.json",
    "manifest.json",
}


def read_zip(data: bytes) -> dict[str, object]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {
            name: json.loads(archive.read(name)) if name.endswith(".json") else archive.read(name)
            for name in archive.namelist()
        }


def test_the_person_zip_is_complete_and_parses(person):
    from ai_features.models import Conversation, Document
    from usage.models import UsageEvent

    out = io.BytesIO()
    result = write_data_zip(subject=Subject(user=person), out=out)
    files = read_zip(out.getvalue())
    assert set(files) >= PERSON_FILES
    assert files["profile.json"][0]["email"] == person.email
    assert files["profile.json"][0]["mfa"] == ["totp"]  # which factors, never their secrets
    assert len(files["memberships.json"]) == 2
    assert len(files["chats.json"]) == Conversation.objects.filter(owner=person).count() == 2
    assert MARKER in files["chats.json"][0]["messages"][0]["content"]
    assert len(files["usage_events.json"]) == UsageEvent.objects.filter(user=person).count()
    assert files["consent_records.json"][0]["price_shown"] == "29.00"
    documents = [n for n in files if n.startswith("documents/")]
    assert len(documents) == Document.objects.filter(uploaded_by=person).count() == 2
    assert MARKER.encode() in files[documents[0]]
    assert files["manifest.json"]["files"] == result.files
    assert "secret" not in json.dumps(files["profile.json"])


def test_through_the_export_jobs_api(client, person, django_capture_on_commit_callbacks):
    from billing.services.exports import export_run

    workspace = Membership.objects.filter(user=person).first().workspace
    client.force_login(person)
    response = client.post(
        "/api/v1/exports",
        {"kind": "account_data", "format": "zip"},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        export_run(job_id=job_id)  # what the worker does
    body = client.get(f"/api/v1/exports/{job_id}").json()
    assert body["status"] == "done" and body["progress"] == 100
    download = client.get(body["download_url"])
    assert download.status_code == 200
    files = read_zip(b"".join(download.streaming_content))
    assert set(files) >= PERSON_FILES
    assert any("export is ready" in m.subject for m in mail.outbox)
    assert AuditEvent.objects.filter(action="export.account_data", actor=person).exists()

    # Another member of the same workspace can't see the job or fetch the file.
    other = MembershipFactory(workspace=workspace, role="owner").user
    client.force_login(other)
    assert client.get(f"/api/v1/exports/{job_id}").status_code == 404
    assert client.get(body["download_url"]).status_code == 404
    finance_page = client.get("/billing/exports/")
    assert finance_page.status_code == 200 and job_id not in finance_page.content.decode()


def test_the_workspace_scope_is_for_owners(client, person):
    from billing.services.exports import export_run

    client.force_login(person)  # a plain member of the first workspace
    first = Membership.objects.filter(user=person, role="member").first()
    session = client.session
    session["tollgate_workspace_id"] = first.workspace_id
    session.save()
    response = client.post(
        "/api/v1/exports",
        {"kind": "account_data", "format": "zip", "scope": "workspace"},
        content_type="application/json",
    )
    job = export_run(job_id=response.json()["id"])
    assert job.status == "failed" and "Only an owner" in job.error


def test_the_workspace_zip(person):
    owned = Membership.objects.get(user=person, role="owner").workspace
    out = io.BytesIO()
    write_data_zip(subject=Subject(workspace=owned), out=out)
    files = read_zip(out.getvalue())
    assert {
        "workspace.json",
        "memberships.json",
        "usage_events.json",
        "invoices.json",
        "consent_records.json",
        "audit_log.json",
        "summaries.json",
    } <= set(files)
    assert files["workspace.json"][0]["name"] == "Zelda Lab"
    assert files["private_items.json"][0]["chats"] == 1
