"""One clock: business time comes from config.clock, and tests can move it."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config import clock

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_APPS = ("accounts", "usage", "billing", "ai_features", "config")


def test_travel_freezes_and_restores():
    moment = datetime(2031, 1, 31, 23, 59, tzinfo=UTC)
    with clock.travel(moment):
        assert clock.now() == moment
        clock.shift(timedelta(minutes=2))
        assert clock.now() == moment + timedelta(minutes=2)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_no_product_module_reads_the_wall_clock_directly():
    pattern = re.compile(r"timezone\.now\b|datetime\.now\(|datetime\.utcnow\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for app in PRODUCT_APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path.name != "clock.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"use config.clock.now(): {offenders}"
