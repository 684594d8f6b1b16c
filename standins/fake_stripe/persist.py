"""Keep the fake Stripe's state across restarts of the demo run (`--state-file`).

Generic on purpose: every attribute of `State` is saved (except the lock and
events still waiting to be sent), so state added later comes along without
changes here. JSON with small tags for what JSON lacks (sets, tuples, bytes,
dicts with non-string keys); written atomically (temp file + rename)."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

from .state import State

_SKIP = {"lock", "pending_events"}


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"__set__": [_encode(v) for v in value]}
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__items__" in value:
        return {_decode(k): _decode(v) for k, v in value["__items__"]}
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__set__" in value:
        return {_decode(v) for v in value["__set__"]}
    if "__bytes__" in value:
        return base64.b64decode(value["__bytes__"])
    return {k: _decode(v) for k, v in value.items()}


def dumps(state: State) -> str:
    with state.lock:
        data = {k: _encode(v) for k, v in vars(state).items() if k not in _SKIP}
        return json.dumps(data, sort_keys=True, default=str)


def save(state: State, path: Path) -> None:
    text = dumps(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(state: State, path: Path) -> bool:
    """Restore a saved state into `state`; False when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    with state.lock:
        for key, value in data.items():
            if key not in _SKIP:
                setattr(state, key, _decode(value))
    return True


class Saver:
    """Writes the state to `path` whenever it changed (checked every `interval`
    seconds) and once more on stop."""

    def __init__(self, state: State, path: Path, interval: float = 0.5) -> None:
        self.state, self.path, self.interval = state, path, interval
        self._last = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stripe-fake-saver", daemon=True)

    def start(self) -> Saver:
        self._last = dumps(self.state)
        self._thread.start()
        return self

    def save_if_changed(self) -> None:
        text = dumps(self.state)
        if text != self._last:
            save(self.state, self.path)
            self._last = text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.save_if_changed()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.save_if_changed()
