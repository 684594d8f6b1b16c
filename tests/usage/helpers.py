from __future__ import annotations

TEXT = "Summarize me: the meter reserves tokens before every upstream call."


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def summaries_url(base: str) -> str:
    return f"{base}/api/v1/summaries"


def run_async(coro):
    """asyncio.run in a fresh thread: the sync Playwright API may already run
    an event loop in the test thread."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
