# Sourced by bin/run and bin/test: make .venv from the lock file, once.
# Needs only a Python 3.12 on the machine (pyenv's is found through .python-version).
set -euo pipefail
find_python() {
  for candidate in "${PYTHON:-}" python3.12 "$(command -v pyenv >/dev/null 2>&1 && pyenv which python3.12 2>/dev/null || true)" python3; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.12 is required (see .python-version)." >&2; return 1
}
if [ ! -x .venv/bin/uv ]; then
  py=$(find_python)
  echo "==> creating .venv with $py"
  "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
fi
# --frozen: install exactly what uv.lock says; fast no-op when nothing changed.
.venv/bin/uv sync --frozen --quiet --python .venv/bin/python
