"""mypy with django-stubs and djangorestframework-stubs over the use cases
(services, selectors), the meter and billing's limits: the files and options
are in pyproject.toml ([tool.mypy]). Run by hand: `.venv/bin/mypy`.

About 5 s of CPU with a warm cache (var/mypy-cache), ~30 s cold (the Stripe
SDK's types are large)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)  # a cold cache on a busy machine
def test_mypy_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
