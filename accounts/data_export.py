"""The "account_data" export: one ZIP of everything Tollgate holds about a
person (or a workspace), written by walking the personal-data registry.

    write_data_zip(subject=Subject(user=u), out=open(path, "wb"))

Streams entry by entry into `out` (a file), so memory holds one section at a
time. JSON files per section (profile.json, memberships.json, chats.json,
summaries.json, extractions.json, usage_events.json, invoices.json,
consent_records.json, ...), the documents under documents/, and manifest.json
listing every file with its row count. The export job machinery (ExportJob,
POST /api/v1/exports, expiring links) calls this through its kind registry."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from typing import IO

from accounts import privacy
from accounts.privacy import Subject
from config import clock

KIND = "account_data"
FORMAT_VERSION = 1


@dataclass
class ExportResult:
    files: dict[str, int] = field(default_factory=dict)  # name -> rows (or bytes for files)

    @property
    def row_count(self) -> int:
        return sum(v for k, v in self.files.items() if k.endswith(".json"))


def _json(rows) -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=2, default=str).encode()


def write_data_zip(*, subject: Subject, out: IO[bytes], progress=None) -> ExportResult:
    """Write the ZIP into `out`; `progress(done, total)` after each data owner."""
    result = ExportResult()
    owners = privacy.data_owners()
    sections: dict[str, list] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for done, owner in enumerate(owners, start=1):
            for name, rows in (owner.export(subject) if owner.export else {}).items():
                sections.setdefault(name, []).extend(rows)
            for path, content in owner.files(subject) if owner.files else ():
                data = content.encode() if isinstance(content, str) else content
                archive.writestr(path, data)
                result.files[path] = len(data)
            if progress:
                progress(done, len(owners))
        for name, rows in sorted(sections.items()):
            archive.writestr(f"{name}.json", _json(rows))
            result.files[f"{name}.json"] = len(rows)
        manifest = {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "subject": subject.kind,
            "created_at": clock.now().isoformat(),
            "files": result.files,
            "notes": "Documents are the text Tollgate extracted from your uploads; "
            "the uploaded files themselves are never stored.",
        }
        archive.writestr("manifest.json", _json(manifest))
    return result
