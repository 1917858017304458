#!/usr/bin/env bash
# The test suite: set up .venv with the test extras, lint, then pytest.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest --durations=15 "$@"
