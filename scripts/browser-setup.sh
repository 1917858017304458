#!/usr/bin/env bash
# A real headless browser for videmo's browser tests (pytest -m browser) and ffmpeg for the
# annotation page's transcoding: Debian's chromium + chromium-driver + ffmpeg, installed with
# apt-get when missing. Idempotent: exits at once when all three are there.
#
#   bash scripts/browser-setup.sh          # as root (or with the packages already installed)
#
# Selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium by the tests, so Selenium
# Manager never runs and nothing is downloaded outside the distribution's packages.
set -euo pipefail
say() { echo "browser-setup: $*"; }
PKGS=(chromium chromium-driver ffmpeg)
have_all() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && command -v ffmpeg >/dev/null
}
if have_all; then say "chromium, chromedriver and ffmpeg present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  say "missing packages; as root run: apt-get install -y ${PKGS[*]}" >&2
  exit 3
fi
command -v apt-get >/dev/null || { say "apt-get not found: install ${PKGS[*]} yourself" >&2; exit 3; }
say "installing ${PKGS[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
have_all || { say "installed, but /usr/bin/chromium or /usr/bin/chromedriver is missing" >&2; exit 1; }
say "done: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
