"""The meter's durable journal: a settle that cannot reach PostgreSQL is kept
here and replayed exactly once.

Why an fsync'd local file and not a Redis stream: the journal exists for the
moment a dependency is unreachable, so it must not depend on another network
service that the same outage (or partition) can take away; and the machine's
Redis keeps nothing on disk (no RDB, no AOF), so a stream there would not
survive the Redis restart it might have to outlive. A local file with
`fsync` (file, then directory) survives a killed process and a power cut on
the host. The price: a journal is per host. It is replayed by the process
that wrote it (every few seconds until PostgreSQL is back), at every web
start-up on the host, and by the beat task — which sees it when the worker
shares TOLLGATE_METER_JOURNAL_DIR (one host, or a shared volume); see
docs/architecture.md.

One file per settle, named by its request id. Replay runs the same `settle`
transaction (without the feature's own hook, which can't be serialized: the
feature's result is lost, the charge is not). Exactly once: the ledger's
unique request id refuses a second insert, and the file is removed only after
the settle committed or was found already recorded."""

from __future__ import annotations

import json
import logging
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models
from django.utils.dateparse import parse_datetime

from config import clock
from usage.models import ModerationLog, UsageEvent
from usage.money import Prices
from usage.reservations import Hold, settle

logger = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def journal_dir() -> Path:
    return Path(settings.TOLLGATE_METER_JOURNAL_DIR)


def _dump(instance: models.Model) -> dict[str, Any]:
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if not f.primary_key
    }


def _load[M: models.Model](model: type[M], data: dict[str, Any]) -> M:
    values: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        if f.attname not in data:
            continue
        value = data[f.attname]
        if value is not None and isinstance(f, models.DateTimeField):
            value = parse_datetime(value)
        elif value is not None and isinstance(f, models.DecimalField):
            value = Decimal(value)
        values[f.attname] = value
    return model(**values)


def entry_for(
    *,
    hold: Hold,
    event: UsageEvent,
    moderation: ModerationLog | None,
    touch_key_id: int | None,
) -> dict[str, Any]:
    prices = hold.prices
    return {
        "version": 1,
        "request_id": hold.request_id,
        "hold": {
            "tokens": hold.tokens,
            "counter_ids": list(hold.counter_ids),
            "prices": {
                "model": prices.model,
                "input_per_million": prices.input_per_million,
                "cached_input_per_million": prices.cached_input_per_million,
                "output_per_million": prices.output_per_million,
            },
        },
        "event": _dump(event),
        "moderation": _dump(moderation) if moderation is not None else None,
        "touch_key_id": touch_key_id,
        "journaled_at": clock.now().isoformat(),
    }


def write(entry: dict[str, Any]) -> Path:
    """Append one settle durably: written, fsync'd, renamed into place, and the
    directory fsync'd, so the entry survives a crash right after we return."""
    folder = journal_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = _SAFE_NAME.sub("_", entry["request_id"]) + ".json"
    final = folder / name
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    data = json.dumps(entry, cls=DjangoJSONEncoder).encode()
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def pending() -> list[Path]:
    folder = journal_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)


def _replay_one(entry: dict[str, Any]) -> str:
    held = entry["hold"]
    prices = Prices(
        model=held["prices"]["model"],
        input_per_million=Decimal(held["prices"]["input_per_million"]),
        cached_input_per_million=Decimal(held["prices"]["cached_input_per_million"]),
        output_per_million=Decimal(held["prices"]["output_per_million"]),
    )
    hold = Hold(entry["request_id"], held["tokens"], tuple(held["counter_ids"]), prices, None)  # type: ignore[arg-type]
    event = _load(UsageEvent, entry["event"])
    moderation = _load(ModerationLog, entry["moderation"]) if entry["moderation"] else None
    try:
        settle(hold=hold, event=event, moderation=moderation, touch_key_id=entry["touch_key_id"])
    except IntegrityError:
        if UsageEvent.objects.filter(request_id=entry["request_id"]).exists():
            return "duplicate"  # recorded already (another replayer, or the stale task)
        raise
    return "replayed"


def replay() -> dict[str, int]:
    """Settle every journaled entry; stops at the first database error (it is
    still down: the entries wait for the next replay)."""
    from django.db import DatabaseError

    outcome = {"replayed": 0, "duplicate": 0, "failed": 0}
    for path in pending():
        try:
            entry = json.loads(path.read_bytes())
        except FileNotFoundError:
            continue  # another replayer finished it
        except ValueError:
            logger.error("unreadable meter journal entry %s: kept for an operator", path.name)
            outcome["failed"] += 1
            continue
        try:
            result = _replay_one(entry)
        except DatabaseError:
            logger.warning("meter journal replay: database still unavailable")
            outcome["failed"] += 1
            break
        path.unlink(missing_ok=True)
        outcome[result] += 1
        logger.info("meter journal: %s %s", result, entry["request_id"])
    return outcome
