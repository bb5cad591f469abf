#!/usr/bin/env bash
# The README's first command: install hostd on this machine and start it.
#
#   ./packaging/install.sh            install, or upgrade in place (sessions keep running)
#   ./packaging/install.sh --uninstall    remove units, venvs and the hostd group; keep the
#                                         config, the database and users' homes
#   ./packaging/install.sh --purge        --uninstall, and the config and database too
#
# Needs root on Debian 12 or Ubuntu 22.04+. Where PID 1 is not systemd (a container, a CI
# machine) the same install runs inside a long-lived private systemd, `packaging/testbed up
# hostd`, whose services listen on this machine's loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

PREFIX=/opt/hostd
VENV=$PREFIX/venv
SESSION_ENV=$PREFIX/session
CONFIG=/etc/hostd/hostd.toml
UNITS=(hostd.socket hostd.service jupyter.slice)

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
trap 'die "step failed (line $LINENO): see the output above; fix it and run install.sh again"' ERR

[ "$(id -u)" = 0 ] || die "run as root"
mode=install
case "${1:-}" in
  "") ;;
  --uninstall) mode=uninstall ;;
  --purge) mode=purge ;;
  *) die "unknown option ${1}: use --uninstall or --purge" ;;
esac

if [ "$(cat /proc/1/comm)" != systemd ] && [ -z "${HOSTD_INSIDE_TESTBED:-}" ]; then
  echo "PID 1 is not systemd on this machine: hostd goes into a private systemd,"
  echo "'packaging/testbed up hostd' (stop it with: packaging/testbed down hostd)."
  if ! packaging/testbed status hostd >/dev/null 2>&1; then
    packaging/testbed up hostd
  fi
  exec packaging/testbed exec hostd -- env HOSTD_INSIDE_TESTBED=1 "$src/packaging/install.sh" "$@"
fi

if [ "$mode" != install ]; then
  step "stopping and removing hostd's units (running sessions are stopped too)"
  systemctl disable --now hostd.socket hostd.service 2>/dev/null || true
  systemctl stop 'jupyter-*.service' jupyter.slice 2>/dev/null || true
  for unit in "${UNITS[@]}"; do rm -f "/etc/systemd/system/$unit"; done
  systemctl daemon-reload
  step "removing $PREFIX and the group hostd"
  rm -rf "$PREFIX" /usr/local/bin/hostd /usr/local/bin/hostctl
  groupdel hostd 2>/dev/null || true
  if [ "$mode" = purge ]; then
    step "purging the config and the database"
    rm -rf /etc/hostd /var/lib/hostd
  else
    echo "kept: $CONFIG and /var/lib/hostd (use --purge to remove them)"
  fi
  exit 0
fi

step "apt packages (python3-venv, libsystemd-dev and pkg-config to build pystemd)"
need=()
for p in python3-venv python3-dev gcc libsystemd-dev pkg-config dbus; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

step "group hostd (members may use the daemon's socket)"
getent group hostd >/dev/null || groupadd --system hostd

step "the daemon's venv in $VENV"
[ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "$src" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/hostd" --version >/dev/null
for tool in hostd hostctl; do ln -sf "$VENV/bin/$tool" "/usr/local/bin/$tool"; done
install -D -m 0755 "$src/packaging/hostd-session-exec" "$PREFIX/bin/hostd-session-exec"
install -m 0644 "$src/README.md" "$PREFIX/README.md"

step "the session environment in $SESSION_ENV (JupyterLab; read-only to users)"
[ -x "$SESSION_ENV/bin/python" ] || /usr/bin/python3 -m venv "$SESSION_ENV"
"$SESSION_ENV/bin/pip" install -q --disable-pip-version-check jupyterlab 2>&1 | grep -v "^WARNING: Location" || true
# Byte-compiled once here, so no session pays for it (and none can write there).
"$SESSION_ENV/bin/python" -m compileall -q "$SESSION_ENV/lib" >/dev/null || true
chown -R root:root "$PREFIX"
chmod -R go-w "$PREFIX"

step "config $CONFIG (an existing one is never overwritten)"
install -d -m 0755 /etc/hostd
if [ -e "$CONFIG" ]; then
  echo "kept your $CONFIG; the current defaults are in $src/packaging/hostd.toml"
else
  install -m 0644 "$src/packaging/hostd.toml" "$CONFIG"
fi
"$VENV/bin/hostd" check-config "$CONFIG"

step "systemd units: ${UNITS[*]}"
for unit in "${UNITS[@]}"; do install -m 0644 "$src/packaging/systemd/$unit" /etc/systemd/system/; done
systemctl daemon-reload
systemctl enable --now hostd.socket >/dev/null 2>&1
# An upgrade restarts the daemon only; sessions are units of their own and keep running.
systemctl restart hostd.service

step "checking"
for _ in $(seq 50); do systemctl is-active --quiet hostd.service && break; sleep 0.1; done
systemctl is-active hostd.socket hostd.service
"$VENV/bin/hostctl" status

cat <<EOF

hostd is installed and running.
  hostctl status                      sessions (as root, or a member of group hostd)
  hostctl start alice --mem 2G        start alice's JupyterLab (alice must be a real account)
  systemctl status hostd              the daemon;  journalctl -u jupyter-alice  a session's log
  $CONFIG                  the policy (hostd check-config, then systemctl restart hostd)
EOF
