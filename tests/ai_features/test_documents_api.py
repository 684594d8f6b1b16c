"""Documents: uploaded per workspace and person, listed, read, deleted; bad
files get 415/413/400 with a sentence; nobody else can see them (404)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ai_features.models_features import Document
from tests.ai_features.test_documents import encrypt_pdf, make_docx, make_pdf
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def upload(client, name: str, data: bytes):
    return client.post("/api/v1/documents", {"document": SimpleUploadedFile(name, data)})


def test_upload_list_read_delete(owner, api_client):
    client = api_client(owner)
    created = upload(client, "notes.md", b"# Notes\n\nThe launch is on Friday.\n")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "notes.md" and body["kind"] == "md" and body["size"] == 34

    pdf = upload(client, "report.pdf", make_pdf(["Page one text.", "Page two text."])).json()
    assert pdf["kind"] == "pdf" and pdf["pages"] == 2
    docx = upload(client, "memo.docx", make_docx(["A memo."])).json()
    assert docx["kind"] == "docx"

    listing = client.get("/api/v1/documents").json()["results"]
    assert [d["id"] for d in listing] == [docx["id"], pdf["id"], body["id"]]
    detail = client.get(f"/api/v1/documents/{body['id']}").json()
    assert "The launch is on Friday." in detail["text"]

    assert client.delete(f"/api/v1/documents/{body['id']}").status_code == 204
    assert client.get(f"/api/v1/documents/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("virus.exe", b"MZ\x90\x00" + b"\0" * 100, 415, "unsupported_media_type"),
        ("fake.pdf", b"GIF89a" + b"\0" * 50, 415, "unsupported_media_type"),
        ("empty.txt", b"", 400, "invalid_request"),
        ("secret.pdf", encrypt_pdf(make_pdf(["top secret"]), "pw"), 400, "invalid_request"),
    ],
)
def test_bad_files_are_explained(owner, api_client, name, data, status, code):
    response = upload(api_client(owner), name, data)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].endswith(".")
    assert not Document.objects.exists()


def test_oversize_upload_is_413(owner, api_client, settings):
    settings.TOLLGATE_MAX_UPLOAD_BYTES = 1000
    response = upload(api_client(owner), "big.txt", b"word " * 400)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_missing_file_is_400(owner, api_client):
    response = api_client(owner).post("/api/v1/documents", {})
    assert response.status_code == 400
    assert "document" in response.json()["error"]["details"]


def test_documents_are_private_to_their_uploader(owner, feature_member, api_client):
    doc_id = upload(api_client(owner), "mine.txt", b"private words").json()["id"]
    colleague = api_client(feature_member.user)
    outsider = api_client(MembershipFactory(role="owner").user)
    for client in (colleague, outsider):
        assert client.get(f"/api/v1/documents/{doc_id}").status_code == 404
        assert client.delete(f"/api/v1/documents/{doc_id}").status_code == 404
        assert client.get("/api/v1/documents").json()["results"] == []
        assert client.get(f"/documents/{doc_id}/").status_code == 404
        assert client.post(f"/documents/{doc_id}/delete/").status_code == 404
    assert Document.objects.filter(pk=doc_id).exists()


def test_pages_upload_and_delete_with_confirmation(owner, api_client):
    client = api_client(owner)
    page = client.get("/documents/")
    assert b"No documents yet" in page.content and b"10 MB" in page.content
    response = client.post(
        "/documents/", {"document": SimpleUploadedFile("a.txt", b"hello there")}, follow=True
    )
    assert b"Uploaded" in response.content
    doc = Document.objects.get()
    assert b"Delete this document?" in client.get(f"/documents/{doc.pk}/delete/").content
    client.post(f"/documents/{doc.pk}/delete/")
    assert not Document.objects.exists()
    bad = client.post("/documents/", {"document": SimpleUploadedFile("x.exe", b"MZ" + b"\0" * 99)})
    assert bad.status_code == 415 and b".pdf" in bad.content


@pytest.mark.django_db(transaction=True)
def test_a_saved_document_can_be_summarized(
    fake_upstream, rate_card, owner, feature_member, async_api_client
):
    client = async_api_client(owner)
    doc_id = upload(client, "brief.txt", b"The board met. It approved the plan.").json()["id"]
    response = client.post(
        "/api/v1/summaries", {"document_id": doc_id}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert "The board met." in response.json()["summary"]
    other = async_api_client(feature_member.user).post(
        "/api/v1/summaries", {"document_id": doc_id}, content_type="application/json"
    )
    assert other.status_code == 404
