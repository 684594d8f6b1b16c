"""Uploads become text, checked by content, with clear errors for the rest.
Every document is made in the test: a hand-written PDF, pypdf's encryption,
python-docx for Word files."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pypdf import PdfReader, PdfWriter

from ai_features.documents import check_input_length, extract_text
from config.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        page_id, content_id = len(objects) + 1, len(objects) + 2
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> "
            ">> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        kids.append(f"{page_id} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def test_plain_text_and_markdown():
    document = extract_text(
        upload("notes.txt", "\ufeffFirst line.\r\n\r\n\r\n\r\nSecond \u2013 ünïcode.".encode())
    )
    assert document.text == "First line.\n\nSecond \u2013 ünïcode."
    assert (document.kind, document.pages, document.filename) == ("txt", None, "notes.txt")
    assert extract_text(upload("README.md", b"# Title\n\n- item")).kind == "md"
    assert extract_text(upload("no-extension", b"just text")).kind == "txt"


def test_pdf_pages_and_text():
    document = extract_text(upload("report.pdf", make_pdf(["Hello from page one", "And page two"])))
    assert document.kind == "pdf" and document.pages == 2
    assert "Hello from page one" in document.text and "And page two" in document.text


def test_docx_paragraphs_and_tables():
    data = make_docx(
        ["Quarterly report.", "Revenue grew."], table=[["Region", "Total"], ["EU", "42"]]
    )
    document = extract_text(upload("report.docx", data))
    assert document.kind == "docx"
    assert document.text.splitlines()[:2] == ["Quarterly report.", "Revenue grew."]
    assert "EU | 42" in document.text


def test_type_is_decided_by_content_not_the_name():
    # A PDF uploaded without a telling name is still read as a PDF...
    assert extract_text(upload("download", make_pdf(["Nameless"]))).kind == "pdf"
    # ...and a name that lies is refused.
    with pytest.raises(UnsupportedMediaType, match=r"named \.pdf"):
        extract_text(upload("fake.pdf", b"plain text pretending"))
    with pytest.raises(UnsupportedMediaType, match=r"named \.txt"):
        extract_text(upload("sneaky.txt", make_pdf(["x"])))
    with pytest.raises(UnsupportedMediaType, match=r"named \.docx"):
        extract_text(upload("letter.docx", b"hello"))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n....", "Files of type .png"),
        ("binary", b"\x00\x01\x02\xff\xfe", "not a type we can read"),
        ("latin1.txt", "café".encode("latin-1"), "not a type we can read"),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "Files of type .doc"),
        ("old", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old Word"),
    ],
)
def test_unsupported_types_get_415(name, data, message):
    with pytest.raises(UnsupportedMediaType, match=message) as caught:
        extract_text(upload(name, data))
    assert caught.value.status == 415


def test_zip_that_is_not_a_word_document():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("data.csv", "a,b")
    with pytest.raises(UnsupportedMediaType, match="ZIP archive"):
        extract_text(upload("archive", out.getvalue()))


def test_password_protected_pdf_is_refused_clearly():
    locked = encrypt_pdf(make_pdf(["Secret"]), user_password="open-sesame")
    with pytest.raises(InvalidRequest, match="password-protected") as caught:
        extract_text(upload("locked.pdf", locked))
    assert caught.value.status == 400


def test_pdf_encrypted_without_a_user_password_opens():
    restricted = encrypt_pdf(make_pdf(["Readable but not editable"]), user_password="")
    assert "Readable but not editable" in extract_text(upload("r.pdf", restricted)).text


def test_password_protected_word_file():
    ole = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32 + "EncryptedPackage".encode("utf-16-le")
    )
    with pytest.raises(InvalidRequest, match="password-protected"):
        extract_text(upload("locked", ole))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n ", "empty"),
        ("broken.pdf", b"%PDF-1.4\n garbage that is not a pdf", "could not be read"),
        ("truncated.pdf", None, "could not be read"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "could not be read"),
        ("no-text.pdf", None, "No text was found"),
    ],
)
def test_empty_or_damaged_documents_get_400(name, data, message):
    if name == "truncated.pdf":
        data = make_pdf(["Some text"])[:120]
    if name == "no-text.pdf":
        data = make_pdf([""])
    with pytest.raises(InvalidRequest, match=message) as caught:
        extract_text(upload(name, data))
    assert caught.value.status == 400


def test_docx_with_a_damaged_body():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<not xml")
        archive.writestr("[Content_Types].xml", "<nope")
    with pytest.raises(InvalidRequest, match="could not be read"):
        extract_text(upload("bad.docx", out.getvalue()))


def test_limits(settings):
    settings.TOLLGATE_MAX_UPLOAD_BYTES = 1_000
    with pytest.raises(PayloadTooLarge, match=r"is 1\.5 KB; the limit is 1 KB") as caught:
        extract_text(upload("big.txt", b"a" * 1_500))
    assert caught.value.status == 413
    settings.TOLLGATE_MAX_UPLOAD_BYTES = 10_000_000
    settings.TOLLGATE_MAX_PDF_PAGES = 2
    with pytest.raises(PayloadTooLarge, match="3 pages; the limit is 2"):
        extract_text(upload("long.pdf", make_pdf(["a", "b", "c"])))
    settings.TOLLGATE_MAX_INPUT_CHARS = 10
    with pytest.raises(PayloadTooLarge, match="characters long; the limit is 10"):
        extract_text(upload("words.txt", b"more than ten characters"))
    with pytest.raises(PayloadTooLarge):
        check_input_length("x" * 11)
    assert check_input_length("x" * 10) == "x" * 10


def test_a_plain_file_object_works_too():
    document = extract_text(io.BytesIO(b"From a stream."), filename="stream.md")
    assert (document.kind, document.text) == ("md", "From a stream.")
