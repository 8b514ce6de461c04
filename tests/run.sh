#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs ruff and pytest.
# Debian packages are installed when run as root (CI and the dev machines are root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests start: Chromium (login page), nginx (CNS TLS), slapd (LDAP),
# redis-server and postgresql (the scale-out stores).
DEBS=(xmlsec1 chromium nginx slapd ldap-utils redis-server postgresql)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip_quiet() {  # pip's output only when it fails
  local log
  log=$(mktemp)
  if ! .venv/bin/pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; return 1
  fi
  rm -f "$log"
}
echo "installing Python packages"
pip_quiet -e '.[test]'
# spid-sp-test (AgID's conformance suite) pins packaging==21.2 and old ruamel.yaml through
# spid-compliant-certificates, which conflict with pytest: install both without their pins,
# then their real dependencies.
pip_quiet --no-deps spid-sp-test==1.2.18 spid-compliant-certificates==0.5.5
pip_quiet "iso3166>=2" "ruamel.yaml>=0.17" "xmlschema>=1.7.1" "requests>=2.26"

echo "ruff"
.venv/bin/ruff check .
exec .venv/bin/pytest -q "$@"
