#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs ruff and pytest.
# Debian packages are installed when run as root (CI and the dev machines are root).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(libxmlsec1-dev libxmlsec1-openssl xmlsec1 pkg-config chromium)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
exec .venv/bin/pytest -q "$@"
