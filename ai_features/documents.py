"""Text out of an uploaded document: .txt, .md, .pdf (pypdf), .docx (python-docx).

    document = extract_text(request.FILES["document"])
    document.text, document.kind, document.pages

The type is decided by the file's CONTENT (a PDF starts with `%PDF-`, a .docx
is a ZIP holding `word/document.xml`, text must be valid UTF-8); the name only
has to agree with it. Limits are settings (documented in README/API):

- TOLLGATE_MAX_UPLOAD_BYTES (10 MB)  -> 413 payload_too_large
- TOLLGATE_MAX_PDF_PAGES (50)        -> 413 payload_too_large
- TOLLGATE_MAX_INPUT_CHARS (200,000) -> 413 payload_too_large (also for typed text)
- anything else than the four types  -> 415 unsupported_media_type
- empty, damaged, password-protected or image-only documents -> 400 invalid_request

Every message is a sentence the person uploading can act on. This module only
reads files: it knows nothing of metering.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Literal

from django.conf import settings

from config import textguard
from config.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)

DocumentKind = Literal["txt", "md", "pdf", "docx"]
ACCEPTED = ".txt, .md, .pdf or .docx"
_EXTENSIONS: dict[str, DocumentKind] = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".pdf": "pdf",
    ".docx": "docx",
}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Office / encrypted OOXML
_ZIP_MAGIC = b"PK\x03\x04"
# A .docx is a ZIP: refuse one that would inflate far beyond its upload limit.
_MAX_DOCX_INFLATION = 20


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    text: str
    kind: DocumentKind
    pages: int | None  # PDF pages; None where a format has no fixed pages
    filename: str = ""

    @property
    def characters(self) -> int:
        return len(self.text)


def _megabytes(size: int) -> str:
    """10_000_000 -> "10 MB", 2_500_000 -> "2.5 MB", 1_000 -> "1 KB"."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def check_input_length(text: str) -> str:
    """Refuse text longer than the documented limit (typed or extracted)."""
    limit = settings.TOLLGATE_MAX_INPUT_CHARS
    if len(text) > limit:
        raise PayloadTooLarge(
            f"The text is {len(text):,} characters long; the limit is {limit:,}. "
            "Shorten it or split it into parts.",
            details={"limit_chars": limit, "chars": len(text)},
        )
    return text


def extract_text(uploaded_file: IO[bytes], *, filename: str | None = None) -> ExtractedDocument:
    """Read an uploaded file (a Django UploadedFile or any binary file object)."""
    name = filename or getattr(uploaded_file, "name", "") or ""
    data = _read_bounded(uploaded_file)
    if not data.strip():
        raise InvalidRequest("The document is empty.", details={"filename": name})
    kind = _detect_kind(data, name)
    if kind == "pdf":
        text, pages = _pdf_text(data)
    elif kind == "docx":
        text, pages = _docx_text(data), None
    else:
        text, pages = _plain_text(data), None  # a NUL byte: not text, 415 (_sniff)
    text = _tidy(text)
    if not text:
        raise InvalidRequest(
            "No text was found in this document."
            + (" It may be a scan made of images only." if kind == "pdf" else ""),
            details={"filename": name},
        )
    check_input_length(text)
    # What we can't store never reaches the model (config.textguard).
    textguard.check(text, "document")  # a surrogate from any extractor
    textguard.check(PurePath(name).name, "document.filename")
    return ExtractedDocument(text=text, kind=kind, pages=pages, filename=PurePath(name).name)


# --- Reading and recognising ------------------------------------------------------------


def _read_bounded(uploaded_file: IO[bytes]) -> bytes:
    limit = settings.TOLLGATE_MAX_UPLOAD_BYTES
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > limit:
        raise _too_big(size, limit)
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(limit + 1)
    if len(data) > limit:
        raise _too_big(None, limit)
    return data


def _too_big(size: int | None, limit: int) -> PayloadTooLarge:
    actual = f"The document is {_megabytes(size)}; " if size else "The document is too large; "
    return PayloadTooLarge(
        f"{actual}the limit is {_megabytes(limit)}.", details={"limit_bytes": limit}
    )


def _detect_kind(data: bytes, name: str) -> DocumentKind:
    suffix = PurePath(name).suffix.lower()
    claimed = _EXTENSIONS.get(suffix)
    if suffix and claimed is None:
        raise UnsupportedMediaType(
            f"Files of type {suffix} are not accepted. Upload a {ACCEPTED} file.",
            details={"accepted": sorted(_EXTENSIONS)},
        )
    actual = _sniff(data)
    if claimed is None:
        return actual
    if claimed in ("txt", "md") and actual in ("txt", "md"):
        return claimed
    if claimed != actual:
        raise UnsupportedMediaType(
            f"The file is named {suffix} but its content is not a "
            f"{_describe(claimed)}. Check the file and upload it again.",
            details={"accepted": sorted(_EXTENSIONS)},
        )
    return actual


def _describe(kind: DocumentKind) -> str:
    return {"pdf": "PDF", "docx": "Word (.docx) document"}.get(kind, "plain text file")


def _sniff(data: bytes) -> DocumentKind:
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(_ZIP_MAGIC):
        return _sniff_zip(data)
    if data.startswith(_OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise InvalidRequest(
                "This Word document is password-protected. Remove the password, "
                "save it and upload it again."
            )
        raise UnsupportedMediaType(
            "This looks like an old Word (.doc) or other Office file. "
            "Save it as .docx or PDF and upload it again."
        )
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "txt"
    raise UnsupportedMediaType(
        f"This file is not a type we can read. Upload a {ACCEPTED} file (text files must be UTF-8)."
    )


def _sniff_zip(data: bytes) -> DocumentKind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise InvalidRequest("The Word document could not be read; it may be damaged.") from None
    if "word/document.xml" in names:
        return "docx"
    raise UnsupportedMediaType(
        f"This is a ZIP archive, not a Word (.docx) document. Upload a {ACCEPTED} file."
    )


# --- Formats ----------------------------------------------------------------------------


def _plain_text(data: bytes) -> str:
    return data.decode("utf-8-sig")


def _pdf_text(data: bytes) -> tuple[str, int]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PdfStreamError

    damaged = InvalidRequest("The PDF could not be read; it may be damaged.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf warns about every small spec deviation
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not _open_without_password(reader):
                raise InvalidRequest(
                    "This PDF is password-protected. Remove the password and upload it again."
                )
            pages = len(reader.pages)
            limit = settings.TOLLGATE_MAX_PDF_PAGES
            if pages > limit:
                raise PayloadTooLarge(
                    f"The PDF has {pages} pages; the limit is {limit}. Upload the part you need.",
                    details={"limit_pages": limit, "pages": pages},
                )
            text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
        except (FileNotDecryptedError, DependencyError):
            raise InvalidRequest(
                "This PDF is password-protected. Remove the password and upload it again."
            ) from None
        except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError):
            logger.info("unreadable PDF upload", exc_info=True)
            raise damaged from None
    return text, pages


def _open_without_password(reader) -> bool:
    """Many PDFs are 'encrypted' with an empty user password (only editing is
    restricted); those open fine."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _docx_text(data: bytes) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    damaged = InvalidRequest("The Word document could not be read; it may be damaged.")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        inflated = sum(info.file_size for info in archive.infolist())
    if inflated > settings.TOLLGATE_MAX_UPLOAD_BYTES * _MAX_DOCX_INFLATION:
        raise PayloadTooLarge("The Word document unpacks to more data than we accept.")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError):
        raise damaged from None
    except Exception:  # lxml's XMLSyntaxError and friends: a damaged file, not our bug
        logger.info("unreadable .docx upload", exc_info=True)
        raise damaged from None
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells]
            blocks.append(" | ".join(c for c in cells if c))
    return "\n".join(blocks)


_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()
