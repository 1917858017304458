#!/usr/bin/env bash
# The test suite: set up .venv with the test extras, lint, then pytest.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k config -x
# pytest runs in VIDEMO_TEST_WORKERS pytest-xdist worker processes (default 2, one per core of a
# 2-core machine; 0 runs the tests in this process). --dist loadfile keeps a test file in one
# worker: one local SLURM cluster for tests/test_slurm_cluster.py, module fixtures made once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest -n "${VIDEMO_TEST_WORKERS:-2}" --dist loadfile --durations=15 "$@"
