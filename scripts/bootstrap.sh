#!/usr/bin/env bash
# Make .venv ready to run videmo (and, with --test, its test suite). Idempotent and quick when
# nothing changed: it reinstalls only when pyproject.toml or this script changed.
#   bash scripts/bootstrap.sh          # runtime: videmo and its dependencies
#   bash scripts/bootstrap.sh --test   # + pytest, ruff, and fer 25.10.3 for the parity test
# Needs Python >= 3.11 (python3, or $PYTHON). On Debian/Ubuntu as root it installs python3-venv
# if venv is missing. The SLURM packages for the cluster tests are installed by
# scripts/slurm/local-cluster.sh when the tests start the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VIDEMO_VENV:-.venv}
want_test=0; [ "${1:-}" = "--test" ] && want_test=1

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: videmo needs Python >= 3.11; $PY is $("$PY" --version 2>&1)" >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "bootstrap: installing python3-venv (Debian package)" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv "python$ver-venv" >/dev/null \
        || apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv >/dev/null
      "$PY" -m venv "$VENV"
    else
      echo "bootstrap: '$PY -m venv' failed; install your distribution's python3-venv" >&2
      exit 2
    fi
  fi
fi

# Byte-compile videmo's own sources every time (a second when nothing changed): an editable
# install leaves their .pyc to the first import, which writes none where PYTHONDONTWRITEBYTECODE
# is set; every process would then compile ~50 modules again (~0.1 s CPU, BENCHMARKS.md).
"$VENV/bin/python" -m compileall -q src/videmo >/dev/null

# The stamp says what is installed: "<test extras 0|1> <hash of pyproject.toml and this
# script>". A set-up with the test extras satisfies the runtime mode, and a runtime reinstall
# keeps the test extras, so run-sample.sh and test.sh never undo each other's set-up.
stamp="$VENV/.videmo-stamp"
hash=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)
have_test=0; have_hash=""
if [ -f "$stamp" ]; then read -r have_test have_hash <"$stamp" || true; fi
[ "$have_test" = 1 ] || have_test=0
if [ "$have_hash" = "$hash" ] && [ "$have_test" -ge "$want_test" ]; then exit 0; fi
[ "$have_test" = 1 ] && want_test=1
pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
"${pip[@]}" install --upgrade pip >/dev/null
if [ "$want_test" = 1 ]; then
  "${pip[@]}" install -e ".[test]"
  # The parity test compares against the real fer package. fer 25.10.3's declared dependencies
  # pull torch/CUDA (facenet-pytorch) and moviepy, none of which its Haar + tflite path imports,
  # so it goes in without them; its imports need pillow, requests and pkg_resources
  # (setuptools < 82). Test environment only: videmo itself never imports fer.
  "${pip[@]}" install --no-deps "fer==25.10.3" pillow requests "setuptools<82"
else
  "${pip[@]}" install -e .
fi
# TensorFlow's wheel carries its C++ headers (tensorflow/include, about 430 MB of a 1.9 GB
# package) for compiling custom ops; nothing videmo runs reads them, so they go (README,
# "Install size"). The CPU-only build (tensorflow-cpu) would save more but has no 2.21 release.
tf_include=$("$VENV/bin/python" -c 'import importlib.util as u, os
s = u.find_spec("tensorflow")
print(os.path.join(os.path.dirname(s.origin), "include") if s and s.origin else "")' \
  2>/dev/null || true)
case "$tf_include" in */site-packages/tensorflow/include) rm -rf "$tf_include" ;; esac
echo "$want_test $hash" >"$stamp"
