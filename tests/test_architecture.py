"""The house's import direction, checked by import-linter on every test run.

The contracts live in pyproject.toml ([tool.importlinter]); docs/architecture.md
draws them. Run by hand: `.venv/bin/lint-imports`."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-logo", "--cache-dir", "var/import-linter-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    # The promises the issue makes, by name, so deleting a contract fails here too.
    for contract in (
        "Apps are layered: ai_features and billing -> usage -> accounts -> config KEPT",
        "No product app imports the stand-ins (tests and bin/ may) KEPT",
    ):
        assert contract in result.stdout, result.stdout
