#!/usr/bin/env bash
# The README's second command: install what the tests need, then run the whole suite.
#   1. static checks (ruff, mypy) and the tests that need no systemd, on the host;
#   2. the systemd tier inside a private, real systemd (packaging/testbed).
# Idempotent and quiet on a second run. Exit status is non-zero when anything fails.
# Extra arguments go to both pytest runs (e.g. -k memory, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root: the systemd tier boots a private systemd (packaging/testbed)"
command -v apt-get >/dev/null || die "needs a Debian or Ubuntu machine (apt-get)"

# --- apt: build deps of pystemd, the session Python, the systemd stack the testbed boots -------
APT_PACKAGES=(libsystemd-dev pkg-config python3-venv python3-dev gcc systemd dbus libpam-systemd
              util-linux passwd sudo procps)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the venv: Debian's python3 so that unprivileged users inside the testbed can run it -------
VENV="$top/.venv"
stamp="$VENV/.hostd-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the test venv in .venv"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import pystemd, pam, sqlmodel, starlette, uvicorn, psutil" \
    || die "the venv is incomplete: pip install failed above"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"

status=0
run() { "$@" || { status=1; echo "test.sh: FAILED: $*" >&2; }; }

say "ruff"
run ruff check --quiet .
say "mypy"
run mypy --no-error-summary
# In this script nothing may skip: a skip of a root or systemd test becomes a failure.
export HOSTD_NO_SKIP=1

say "tests without systemd (and the testbed's own tests), on the host"
run coverage run -m pytest -q -m "not systemd" "$@"
run coverage report --include='units/*,cgroups/*' --fail-under=100 --skip-covered --skip-empty

say "systemd tier, inside packaging/testbed"
run packaging/testbed run --timeout 1500 -- "$VENV/bin/pytest" -q -m systemd "$@"

if [ $status = 0 ]; then say "all passed"; else say "FAILED"; fi
exit $status
