#!/usr/bin/env bash
# The benchmark of issue 8: hostd against systemd-run (the floor), JupyterHub 6 +
# jupyterhub-systemdspawner 1.0.2 (the anchor, seed 002's settings) and, when they are in the
# tree, the hub and JupyterHub + HostdSpawner. Everything runs inside packaging/testbed (a
# private, real systemd 252) and is torn down with it.
#
#   packaging/bench.sh            # the full run (~20 min on 2 cores): the README's table
#   packaging/bench.sh --quick    # fewer repetitions, N=10 only (~5 min), for development
#   packaging/bench.sh --only a,b # some rows (keys as the table prints them)
#
# Installs once (root, Debian 12), under .cache/bench/ (world-readable: the sessions' users
# run the session environment):
#   - apt: wrk (HTTP load for the proxy rows), npm if missing (configurable-http-proxy);
#   - session/: JupyterLab 4 and jupyterhub-singleuser 6, made with Debian's python3, byte-compiled;
#   - session-lean/: the same less rfc3987-syntax (the "lean" rows: see below);
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
  local want; want=$(printf '%s\n' "$@" | sha256sum | cut -d' ' -f1)
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
venv_once "$CACHE/session" "${SESSION_SPEC[@]}"
# The same environment less rfc3987-syntax (nothing requires it: jsonschema's format-nongpl
# extra pulls it in, through jupyter-events). Importing jsonschema then builds an RFC 3987
# grammar with lark on every start: 2.5 s of CPU of JupyterLab's ~4 s (py-spy). The "lean"
# rows measure what dropping it gives.
if [ "$(cat "$CACHE/session-lean/.hostd-lean" 2>/dev/null)" != "$(cat "$CACHE/session/.hostd-installed")" ]; then
  say "creating $CACHE/session-lean"
  rm -rf "$CACHE/session-lean"
  /usr/bin/python3 -m venv "$CACHE/session-lean"
  pip_quiet "$CACHE/session-lean/bin/pip" install -q --disable-pip-version-check "${SESSION_SPEC[@]}"
  pip_quiet "$CACHE/session-lean/bin/pip" uninstall -q -y rfc3987-syntax lark
  "$CACHE/session-lean/bin/python" -m compileall -q -j 0 "$CACHE/session-lean/lib" >/dev/null 2>&1 || true
  cp "$CACHE/session/.hostd-installed" "$CACHE/session-lean/.hostd-lean"
fi
venv_once "$CACHE/anchor" "${ANCHOR_SPEC[@]}"
(cd / && "$CACHE/session/bin/python" -c "import jupyterlab, jupyterhub.singleuser") \
  || die "the session environment is incomplete: pip install failed above"
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
