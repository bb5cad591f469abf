#!/usr/bin/env bash
# The benchmark of issue 8: hostd against systemd-run (the floor), JupyterHub 6 +
# jupyterhub-systemdspawner 1.0.2 (the anchor, seed 002's settings) and, when they are in the
# tree, the hub and JupyterHub + HostdSpawner. Everything runs inside packaging/testbed (a
# private, real systemd 252) and is torn down with it.
#
#   packaging/bench.sh            # the full run (~18 min on 2 cores): the README's table
#   packaging/bench.sh --quick    # fewer repetitions, N=10 only (~6 min), for development
#   packaging/bench.sh --only a,b # some rows (keys as the table prints them; any mode's rows)
#
# Installs once (root, Debian 12), under .cache/bench/ (world-readable: the sessions' users
# run the session environment):
#   - apt: wrk (HTTP load for the proxy rows), npm if missing (configurable-http-proxy);
#   - session/: JupyterLab 4 and jupyterhub-singleuser 6, made with Debian's python3 as
#     packaging/install.sh makes its session environment (less rfc3987-syntax and lark,
#     byte-compiled, its Jupyter server config): what an install gives, in every main row;
#   - session-pip/: the same exactly as pip installs it (the "pip" rows: see below);
#   - anchor/:  JupyterHub 6 + jupyterhub-systemdspawner 1.0.2, the anchor (a venv of its own);
#   - node/:    configurable-http-proxy from npm.
# Prints one table and writes it, with every sample, to tests/bench/results/<time>-<mode>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root: the benchmark boots a private systemd (packaging/testbed)"
command -v apt-get >/dev/null || die "needs a Debian or Ubuntu machine (apt-get)"

APT_PACKAGES=(wrk python3-venv libsystemd-dev pkg-config python3-dev gcc systemd dbus
              libpam-systemd util-linux passwd procps)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)  # node may come from elsewhere than Debian
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# hostd itself: the test venv that packaging/test.sh makes (the same rules: an editable .venv
# in a checkout every user can read, else a copy in /var/cache/hostd-test/venv).
readable_by_all() {
  local dir=$1
  while [ "$dir" != / ]; do
    [ "$(( 0$(stat -c %a "$dir") & 05 ))" -eq 5 ] || return 1
    dir=$(dirname "$dir")
  done
}
if readable_by_all "$top"; then VENV="$top/.venv"; else VENV=/var/cache/hostd-test/venv; fi
pip_quiet() { "$@" 2>&1 | grep -v -e "^WARNING: Location" -e "^$" || true; }
if [ ! -x "$VENV/bin/hostd" ] || ! "$VENV/bin/python" -c "import hostd, psutil" 2>/dev/null; then
  say "making the test venv (packaging/test.sh's) in $VENV"
  /usr/bin/python3 -m venv "$VENV"
  pip_quiet "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
fi
readable_by_all "$top" || pip_quiet "$VENV/bin/pip" install -q --no-deps --force-reinstall .

# The cache is world-readable: the sessions' users run session/ and must reach it.
CACHE="$top/.cache/bench"
readable_by_all "$top" || die "$top must be readable by every user (sessions run from $CACHE)"
install -d -m 0755 "$top/.cache" "$CACHE"
SESSION_SPEC=("jupyterlab>=4,<5" "jupyterhub>=6,<7")
ANCHOR_SPEC=("jupyterhub>=6,<7" "jupyterhub-systemdspawner==1.0.2")
CHP_SPEC="configurable-http-proxy@5"
venv_once() {  # DIR REQUIREMENTS...
  local dir=$1; shift
  # The stamp holds the venv's path too: a venv's scripts name its path, so one made through
  # another path (a worktree's .cache linked here) has scripts that point elsewhere.
  local want; want=$( { echo "at $dir"; printf '%s\n' "$@"; } | sha256sum | cut -d' ' -f1)
  [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.hostd-installed" 2>/dev/null)" = "$want" ] && return 0
  say "creating $dir"
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir"
  pip_quiet "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  # Byte-compiled here, as root: the sessions' users cannot write __pycache__ in it, and a
  # server that compiles its imports on every start pays for it in start time.
  "$dir/bin/python" -m compileall -q -j 0 "$dir/lib" >/dev/null 2>&1 || true
  echo "$want" > "$dir/.hostd-installed"
}
# The session environments. "install": as packaging/install.sh makes $SESSION_ENV (keep the two
# in step): nothing needs rfc3987-syntax (jsonschema's format-nongpl extra pulls it in, through
# jupyter-events), yet with it every JupyterLab start builds an RFC 3987 grammar with lark, 2.5 s
# of CPU of ~4 s (py-spy); then byte-compiled, and its Jupyter server config. "pip": JupyterLab
# exactly as `pip install` leaves it (pip byte-compiles what it installs), for the "pip" rows:
# what the install's recipe gains. The stamp holds the recipe: a change to it re-makes the venv.
SESSION_DROP=(rfc3987-syntax lark)
SESSION_CONFIG="$top/packaging/session/jupyter_server_config.py"
session_env() {  # DIR install|pip
  local dir=$1 kind=$2 want
  want=$( {
    echo "recipe 2: $kind at $dir"; printf '%s\n' "${SESSION_SPEC[@]}"
    if [ "$kind" = install ]; then
      printf 'drop %s\n' "${SESSION_DROP[@]}"
      sha256sum < "$SESSION_CONFIG"
    fi
  } | sha256sum | cut -d' ' -f1)
  [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.hostd-installed" 2>/dev/null)" = "$want" ] && return 0
  say "creating $dir ($kind)"
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir"
  pip_quiet "$dir/bin/pip" install -q --disable-pip-version-check "${SESSION_SPEC[@]}"
  if [ "$kind" = install ]; then
    pip_quiet "$dir/bin/pip" uninstall -q -y --disable-pip-version-check "${SESSION_DROP[@]}"
    "$dir/bin/python" -m compileall -q -j 0 "$dir/lib" >/dev/null 2>&1 || true
    install -D -m 0644 "$SESSION_CONFIG" "$dir/etc/jupyter/jupyter_server_config.py"
  fi
  echo "$want" > "$dir/.hostd-installed"
}
session_env "$CACHE/session" install
session_env "$CACHE/session-pip" pip
rm -rf "$CACHE/session-lean"  # the "lean" rows' venv of before: session/ is that one now
venv_once "$CACHE/anchor" "${ANCHOR_SPEC[@]}"
for env in session session-pip; do
  (cd / && "$CACHE/$env/bin/python" -c "import jupyterlab, jupyterhub.singleuser") \
    || die "the session environment $CACHE/$env is incomplete: pip install failed above"
done
! "$CACHE/session/bin/python" -m pip show -q rfc3987-syntax >/dev/null 2>&1 \
  || die "$CACHE/session still has rfc3987-syntax: pip uninstall failed above"
(cd / && "$CACHE/anchor/bin/python" -c "import systemdspawner, jupyterhub") \
  || die "the anchor's environment is incomplete: pip install failed above"
if [ "$(cat "$CACHE/node/.hostd-installed" 2>/dev/null)" != "$CHP_SPEC" ]; then
  say "npm install $CHP_SPEC"
  rm -rf "$CACHE/node"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/node" "$CHP_SPEC" >/dev/null
  echo "$CHP_SPEC" > "$CACHE/node/.hostd-installed"
fi
[ -x "$CACHE/node/node_modules/.bin/configurable-http-proxy" ] \
  || die "configurable-http-proxy is missing: npm install failed above"

say "benchmark inside packaging/testbed (results in tests/bench/results/)"
exec packaging/testbed run --timeout 5400 -- "$VENV/bin/python" -m tests.bench "$@"
