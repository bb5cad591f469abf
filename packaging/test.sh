#!/usr/bin/env bash
# The README's second command: install what the tests need, then run the whole suite.
#   1. static checks (ruff, mypy) and the tests that need no systemd, on the host;
#   2. the systemd tier inside a private, real systemd (packaging/testbed);
#   3. on a real Debian 12 host (a VM, packaging/vm: systemd the real PID 1, cgroup v2): the
#      real_host tier (what depends on cgroup v2: OOMPolicy, swap, IPAddressDeny; install.sh as
#      an admin runs it, the hub, PAM, JupyterLab; testbed's delegated-scope path).
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

# --- the venv: Debian's python3, so that unprivileged users inside the testbed can run it -------
# Tests run hostd as other users (the hub's own user, sessions): they must be able to read the
# code. A checkout every user can traverse gets an editable .venv inside it; one they cannot
# (under /root, say) gets a venv in /var/cache with a copy of the code, refreshed each run; so
# does one under /tmp or /var/tmp, which sessions (PrivateTmp=) cannot see.
readable_by_all() {
  local dir=$1
  while [ "$dir" != / ]; do
    [ "$(( 0$(stat -c %a "$dir") & 05 ))" -eq 5 ] || return 1
    dir=$(dirname "$dir")
  done
}
case "$top/" in /tmp/*|/var/tmp/*) seen_by_sessions=0 ;; *) seen_by_sessions=1 ;; esac
if [ $seen_by_sessions = 1 ] && readable_by_all "$top"; then
  VENV="$top/.venv"; editable=1
else
  VENV=/var/cache/hostd-test/venv; editable=0
  install -d -m 0755 /var/cache/hostd-test
fi
stamp="$VENV/.hostd-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
pip_quiet() { "$VENV/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the test venv in $VENV"
  /usr/bin/python3 -m venv "$VENV"
  if [ $editable = 1 ]; then pip_quiet -e ".[test]"; else pip_quiet ".[test]"; fi
  "$VENV/bin/python" -c "import pystemd, pam, starlette, uvicorn, psutil" \
    || die "the venv is incomplete: pip install failed above"
  echo "$want" > "$stamp"
elif [ $editable = 0 ]; then
  pip_quiet --no-deps --force-reinstall .
fi
export PATH="$VENV/bin:$PATH"

# --- the spawner's systemd tier (tests/api/spawner/systemd): JupyterHub 6 is in the venv above (the test
#     extra); JupyterHub 5 beside it, the session's jupyterhub-singleuser, and
#     configurable-http-proxy from npm. Made once, beside the venv (readable by all); remade
#     when a pin below changes. The tests find them through HOSTD_SPAWNER_CACHE.
if [ $editable = 1 ]; then SPAWNER_CACHE="$top/.cache/spawner"; else SPAWNER_CACHE=/var/cache/hostd-test/spawner; fi
export HOSTD_SPAWNER_CACHE="$SPAWNER_CACHE"
HUB5_SPEC=("jupyterhub>=5,<6" "httptools>=0.6" "starlette>=0.40")  # + hostd, without its deps
SESSION_SPEC=("jupyterhub>=6,<7" "jupyter_server>=2" "ipykernel>=6")
CHP_SPEC="configurable-http-proxy@5"
venv_once() {  # DIR REQUIREMENTS...: a venv of Debian's python3 with exactly these
  local dir=$1; shift
  # With the venv's path: its scripts name it, so one made through another path (a worktree
  # whose .cache links here) is made again rather than run with scripts pointing elsewhere.
  local pins; pins=$( { echo "at $dir"; printf '%s\n' "$@"; } | sha256sum | cut -d' ' -f1)
  [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.hostd-installed" 2>/dev/null)" = "$pins" ] && return 0
  say "creating $dir"
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true
  echo "$pins" > "$dir/.hostd-installed"
}
lean() {  # DIR: as packaging/install.sh makes the session environment: without rfc3987-syntax
  if "$1/bin/python" -c "import rfc3987_syntax" 2>/dev/null; then
    "$1/bin/pip" uninstall -q -y --disable-pip-version-check rfc3987-syntax lark 2>&1 \
      | grep -v "^WARNING: Location" || true
  fi
}
venv_once "$SPAWNER_CACHE/session" "${SESSION_SPEC[@]}"
lean "$SPAWNER_CACHE/session"
"$SPAWNER_CACHE/session/bin/python" -c "import jupyterhub, jupyter_server, ipykernel" \
  || die "the session venv is incomplete: pip install failed above"
# As packaging/install.sh does for the session environment (its kernels on Unix sockets, say).
install -D -m 0644 packaging/session/jupyter_server_config.py \
  "$SPAWNER_CACHE/session/etc/jupyter/jupyter_server_config.py"
HUB5="$SPAWNER_CACHE/jupyterhub5"
venv_once "$HUB5" "${HUB5_SPEC[@]}"
# hostd itself, as in the venv above: editable, or a fresh copy of a private checkout.
if [ $editable = 0 ] || [ "$(cat "$HUB5/.hostd-project" 2>/dev/null)" != "$want" ]; then
  if [ $editable = 1 ]; then hostd_pkg=(-e .); else hostd_pkg=(--force-reinstall .); fi
  "$HUB5/bin/pip" install -q --disable-pip-version-check --no-deps "${hostd_pkg[@]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  echo "$want" > "$HUB5/.hostd-project"
fi
# From /: python -c would import the checkout in the working directory.
(cd / && "$HUB5/bin/python" -c "import hostd.api.spawner") \
  || die "the JupyterHub 5 venv is incomplete: pip install failed above"
if [ "$(cat "$SPAWNER_CACHE/node/.hostd-installed" 2>/dev/null)" != "$CHP_SPEC" ]; then
  if ! command -v npm >/dev/null; then  # Debian's nodejs and npm, unless node is there already
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  say "npm install $CHP_SPEC"
  rm -rf "$SPAWNER_CACHE/node"
  npm install --silent --no-audit --no-fund --prefix "$SPAWNER_CACHE/node" "$CHP_SPEC" >/dev/null
  echo "$CHP_SPEC" > "$SPAWNER_CACHE/node/.hostd-installed"
fi
[ -x "$SPAWNER_CACHE/node/node_modules/.bin/configurable-http-proxy" ] \
  || die "configurable-http-proxy is missing: npm install failed above"

# --- the hub's systemd tier (tests/api/hub/systemd): the sessions' JupyterLab (made with Debian's python3,
#     readable by all, as /opt/hostd/session is on a machine) with packaging/session's Jupyter
#     config; for the browser test Debian's chromium and playwright-core from npm (Playwright's
#     own browser download cannot work here and is not used), and Debian's prometheus, which
#     scrapes the hub in test_prometheus.py (its own service left disabled: the testbed boots
#     this machine's systemd config and must not start one). Made once, beside the venv;
#     remade when a pin below changes. The tests find them through HOSTD_HUB_CACHE.
if [ $editable = 1 ]; then HUB_CACHE="$top/.cache/hub"; else HUB_CACHE=/var/cache/hostd-test/hub; fi
export HOSTD_HUB_CACHE="$HUB_CACHE"
LAB_SPEC=("jupyterlab>=4,<5" "ipykernel>=6")
PLAYWRIGHT_SPEC="playwright-core@1"
venv_once "$HUB_CACHE/session" "${LAB_SPEC[@]}"
lean "$HUB_CACHE/session"
"$HUB_CACHE/session/bin/python" -c "import jupyterlab, ipykernel" \
  || die "the hub's session venv is incomplete: pip install failed above"
install -D -m 0644 packaging/session/jupyter_server_config.py \
  "$HUB_CACHE/session/etc/jupyter/jupyter_server_config.py"
hub_apt=()
[ -x /usr/bin/chromium ] || hub_apt+=(chromium)
command -v npm >/dev/null || hub_apt+=(nodejs npm)  # unless node is there already
[ -x /usr/bin/prometheus ] || hub_apt+=(prometheus)
# tests/api/hub/systemd/test_acme.py: a real ACME server on loopback (Debian's, test-only).
[ -x /usr/bin/pebble ] || hub_apt+=(pebble)
if [ ${#hub_apt[@]} -gt 0 ]; then
  say "apt-get install ${hub_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${hub_apt[@]}" >/dev/null
fi
if [ -e /etc/systemd/system/multi-user.target.wants/prometheus.service ]; then
  systemctl disable --quiet prometheus.service
fi
[ -x /usr/bin/prometheus ] || die "prometheus is missing: apt-get install failed above"
[ -x /usr/bin/pebble ] || die "pebble is missing: apt-get install failed above"
if [ "$(cat "$HUB_CACHE/node/.hostd-installed" 2>/dev/null)" != "$PLAYWRIGHT_SPEC" ]; then
  say "npm install $PLAYWRIGHT_SPEC"
  rm -rf "$HUB_CACHE/node"
  npm install --silent --no-audit --no-fund --prefix "$HUB_CACHE/node" "$PLAYWRIGHT_SPEC" >/dev/null
  echo "$PLAYWRIGHT_SPEC" > "$HUB_CACHE/node/.hostd-installed"
fi
[ -d "$HUB_CACHE/node/node_modules/playwright-core" ] && [ -x /usr/bin/chromium ] \
  || die "chromium or playwright-core is missing: the installs above failed"

status=0
run() { "$@" || { status=1; echo "test.sh: FAILED: $*" >&2; }; }

say "ruff"
run ruff check --quiet .
say "mypy"
run mypy --no-error-summary
say "import contracts (lint-imports)"
run lint-imports --no-cache
# In this script nothing may skip: a skip of a root or systemd test becomes a failure.
export HOSTD_NO_SKIP=1

say "tests without systemd (and the testbed's own tests), on the host"
run coverage run -m pytest -q -m "not systemd and not real_host" "$@"
run coverage report --include='hostd/units/*,hostd/cgroups/*' --fail-under=100 --skip-covered --skip-empty

say "systemd tier, inside packaging/testbed"
run packaging/testbed run --timeout 1500 -- "$VENV/bin/pytest" -q -m systemd "$@"

say "real-host tier, inside a Debian 12 VM (packaging/vm; the image is built once and cached)"
# pip runs on the host, not in the slow guest: install.sh copies these venvs (HOSTD_PREBUILT).
if packaging/vm build && prebuilt=$(packaging/vm prebuild); then
  shares=(--share "$prebuilt")
  [ $editable = 1 ] || shares+=(--share "$VENV")  # else it is in the checkout, shared anyway
  # Every real_host test (wherever it lives): the host-shaped claims (OOMPolicy, swap, the
  # metadata address, the OOM count from memory.events), then install.sh as an admin runs it,
  # which changes the host. Only the files that name the marker are collected: importing the
  # whole suite costs minutes in the guest. (The daemon's whole systemd tier in the VM, 38
  # tests, is not here yet: its fixed deadlines do not hold under TCG; README, Tests.)
  in_vm='mapfile -t files < <(grep -rlw --include="test_*.py" real_host tests | sort)
    exec "$0" -q -m real_host "${files[@]}" "$@"'
  run env HOSTD_PREBUILT="$prebuilt" packaging/vm run --timeout 1800 "${shares[@]}" -- \
    bash -c "$in_vm" "$VENV/bin/pytest" "$@"
else
  status=1; echo "test.sh: FAILED: the VM's image or the prebuilt venvs (see above)" >&2
fi

if [ $status = 0 ]; then say "all passed"; else say "FAILED"; fi
exit $status
