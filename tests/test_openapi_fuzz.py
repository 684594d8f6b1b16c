"""The OpenAPI schema tells the truth: schemathesis (all checks) against the
real ASGI app with a Bearer key, the fake upstream behind the meter.

Bounded: a few examples per operation and a fixed seed, so the run is the
same every time and takes about a minute; the subprocess is cut at 150 s.
Run by hand against a running server:
`.venv/bin/schemathesis run http://127.0.0.1:PORT/api/schema/?format=json
-H "Authorization: Bearer tg_live_…" --checks all --max-examples 5`."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = "5"
REPORT = ROOT / "var" / "test-artifacts" / "schemathesis.txt"


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
    metered, make_member, make_key, tmp_path
):
    owner = make_member(role="owner")  # may read every endpoint: billing, keys, usage
    _key, secret = make_key(owner)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis),
        "--no-color",
        "--config-file",
        str(ROOT / "tests" / "schemathesis.toml"),
        "run",
        f"{metered}/api/schema/?format=json",
        "--header",
        f"Authorization: Bearer {secret}",
        # Every check runs (schemathesis' default); `--checks all` would switch
        # back on what tests/schemathesis.toml turns off for a few operations.
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "20261202",
        "--request-timeout",
        "30",
        "--report-dir",
        str(tmp_path),
    ]
    # Run in the test's tmp dir: schemathesis keeps its cache (.schemathesis/) in the cwd.
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=150, check=False
    )
    # The whole report, for reading after a failure (gitignored).
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"see {REPORT}\n" + result.stdout[-6000:]
