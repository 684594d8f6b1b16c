"""A local OpenAI-compatible server for development, tests and benchmarks.

    python -m standins.fake_openai --port 8200 [--host 127.0.0.1] [--latency-ms 0]

then point the app at it: OPENAI_BASE_URL=http://127.0.0.1:8200/v1 and any
non-empty OPENAI_API_KEY. What it answers and how to make it fail on demand:
see `app.py` (endpoints, faults, cached tokens) and `answers.py` (answer texts,
structured outputs, the moderation trigger `FLAGME`).

It does not import Django: it runs as its own process.
"""

from standins.fake_openai.app import Fault, State, create_app

__all__ = ["Fault", "State", "create_app"]
