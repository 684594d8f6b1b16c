"""Shared fixtures: people and workspaces, a clean Redis per test, a real ASGI
server (uvicorn in a thread) for browser and streaming tests, and Playwright
driving Debian's chromium."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from django.conf import settings
from redis import Redis

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

# Each room's shared fixtures live in tests/fixtures/<name>.py (fake upstream,
# fake Stripe, ...) and are visible to every test.
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: sync Playwright leaves an event loop running in
    the main thread, which would break later tests that call asyncio.run()."""
    items.sort(key=lambda item: "page" in getattr(item, "fixturenames", ()))


@pytest.fixture(autouse=True)
def _no_playwright_loop_outside_browser_tests(request):
    """Sync Playwright marks its event loop as running in the main thread for the
    rest of the session; outside browser tests, unmark it so asyncio.run() and
    the test client's async views work whatever the order."""
    loop = asyncio.events._get_running_loop()
    if loop is None or "page" in request.fixturenames:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)


@pytest.fixture(autouse=True)
def _clean_redis():
    client = Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    yield
    cache.clear()


@pytest.fixture
def redis_client(_clean_redis) -> Redis:
    return _clean_redis


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role="owner").user


@pytest.fixture
def make_member(db):
    def make(workspace=None, role="member", **user_kwargs):
        workspace = workspace or WorkspaceFactory()
        user = UserFactory(**user_kwargs)
        return MembershipFactory(workspace=workspace, user=user, role=role)

    return make


# --- A real ASGI server ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ThreadedUvicorn(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker):
    from config.asgi import application

    port = _free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = _ThreadedUvicorn(config)
    thread = threading.Thread(target=server.run, daemon=True)
    with django_db_blocker.unblock():
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_url(asgi_server, transactional_db) -> str:
    """Base URL of the ASGI app; test data is committed so the server sees it."""
    return asgi_server


# --- Playwright with Debian's chromium -------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--headless",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def page(page):
    page.set_default_timeout(15_000)
    return page


def pytest_unconfigure(config):
    # Event loops made by tests (asyncio.run) leave the upstream SDK's aiohttp
    # sessions for the garbage collector; at interpreter exit asyncio would log
    # "Unclosed client session" to an already-closed stream. Nothing to report.
    import logging

    logging.raiseExceptions = False
