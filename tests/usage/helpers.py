from __future__ import annotations

TEXT = "Summarize me: the meter reserves tokens before every upstream call."


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def summaries_url(base: str) -> str:
    return f"{base}/api/v1/summaries"
