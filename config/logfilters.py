"""Logging filters."""

from __future__ import annotations

import logging


class No4xxTracebacks(logging.Filter):
    """An ordinary 403/404 is logged as one line, not with the traceback of the
    PermissionDenied/Http404 that produced it (tracebacks stay for 5xx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
