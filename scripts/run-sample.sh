#!/usr/bin/env bash
# The main job on the sample corpus shipped in the repo: set up .venv, then extract + report.
# Extra arguments go to `videmo run`, e.g.  bash scripts/run-sample.sh --detector mtcnn
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/videmo run jobs/sample.yaml "$@"
