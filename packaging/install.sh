#!/usr/bin/env bash
# The README's first command: install hostd on this machine and start it.
#
#   ./packaging/install.sh                     install, or upgrade in place (sessions keep running)
#   ./packaging/install.sh --self-signed HOST  the same, plus a self-signed TLS certificate for
#                                              the hub (for testing; not for production)
#   ./packaging/install.sh --uninstall         remove the units, the venvs, the system user and
#                                              group; keep the config, the databases and homes
#   ./packaging/install.sh --purge             --uninstall, and the config and databases too
#
# Needs root on Debian 12 or Ubuntu 22.04+. Where PID 1 is not systemd (a container, a CI
# machine) the same install runs inside a long-lived private systemd, `packaging/testbed up
# hostd`, whose services listen on this machine's loopback.
#
# Running it again changes only what changed: the daemon's venv is rebuilt when the source
# changed, units are copied when they differ, and hostd / hostd-hub are restarted only then.
# Sessions are units of their own and keep running through all of it. An admin's config
# (/etc/hostd/*.toml, /etc/pam.d/hostd) is never overwritten.
#
# For tests only: HOSTD_PREBUILT=DIR (packaging/vm prebuild) holds DIR/venv and DIR/session,
# built by the same steps for $PREFIX on an identical Debian; they are copied in instead of
# pip-installed (pip in a slow VM takes many minutes). Unset, as for every admin, pip runs.
set -euo pipefail
umask 022  # what it installs is readable by every user (the session environment must be)
cd "$(dirname "$0")/.."
src=$(pwd)
args=("$@")

PREFIX=/opt/hostd
VENV=$PREFIX/venv
SESSION_ENV=$PREFIX/session
SESSION_SPEC=(jupyterlab)
ETC=/etc/hostd
CONFIG=$ETC/hostd.toml
HUB_CONFIG=$ETC/hub.toml
TLS_DIR=$ETC/tls
PAM_FILE=/etc/pam.d/hostd
UNIT_DIR=/etc/systemd/system
UNITS=(hostd.socket hostd.service hostd-hub.service jupyter.slice)
HUB_USER=hostd-hub
PROXY_GROUP=hostd-proxy
HUB_PORT=8000  # the hub's default (JupyterHub's); /etc/hostd/hub.toml can change it
HUB_DROPIN=$UNIT_DIR/hostd-hub.service.d/self-signed.conf
# What the daemon's venv is built from; its hash decides whether an upgrade reinstalls.
SOURCES=(pyproject.toml README.md hostd api units cgroups)

current="starting"
fix="read the output above, fix the cause and run install.sh again (it resumes safely)"
step() { current=$1; printf '\033[1m==> %s\033[0m\n' "$1"; }
hint() { fix=$1; }
say() { printf '    %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
# quiet CMD...: run it; show its output (less pip's venv warnings) only if it fails.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" | grep -v "^WARNING: Location" >&2 || true
    return 1
  fi
}
on_error() {
  printf '\ninstall.sh: FAILED at "%s" (line %s)\n  how to fix: %s\n' "$current" "$1" "$fix" >&2
  exit 1
}
trap 'on_error $LINENO' ERR

usage() {
  echo "usage:"
  sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//'
}

mode=install
tls_host=""
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) mode=uninstall ;;
    --purge) mode=purge ;;
    --self-signed)
      if [ $# -lt 2 ] || [ -z "$2" ]; then die "--self-signed needs a host name: --self-signed hub.example.org"; fi
      tls_host=$2
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done
[ "$mode" = install ] || [ -z "$tls_host" ] || die "--self-signed goes with an install, not --$mode"
if [ -n "$tls_host" ] && ! [[ $tls_host =~ ^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$ ]]; then
  die "--self-signed $tls_host: not a host name or IP address"
fi
[ "$(id -u)" = 0 ] || die "run as root (sudo ./packaging/install.sh)"

if [ "$(cat /proc/1/comm)" != systemd ] && [ -z "${HOSTD_INSIDE_TESTBED:-}" ]; then
  echo "PID 1 is not systemd on this machine: hostd goes into a private systemd,"
  echo "'packaging/testbed up hostd', whose services listen on this machine's loopback"
  echo "(run commands in it with: packaging/testbed exec hostd -- hostctl status;"
  echo " stop it, and everything installed in it, with: packaging/testbed down hostd)."
  if ! packaging/testbed status hostd 2>/dev/null | awk '$2 == "up" { up = 1 } END { exit !up }'; then
    packaging/testbed down hostd >/dev/null 2>&1 || true
    packaging/testbed up hostd
  fi
  exec packaging/testbed exec hostd -- env HOSTD_INSIDE_TESTBED=1 "$src/packaging/install.sh" ${args[@]+"${args[@]}"}
fi

# -- uninstall, purge ---------------------------------------------------------------------------

if [ "$mode" != install ]; then
  step "stopping hostd, the hub and every session (jupyter.slice)"
  systemctl disable --now hostd-hub.service hostd.socket hostd.service >/dev/null 2>&1 || true
  systemctl stop jupyter.slice >/dev/null 2>&1 || true
  step "removing the units"
  for unit in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$unit"; done
  rm -rf "$UNIT_DIR/hostd-hub.service.d"
  systemctl daemon-reload
  systemctl reset-failed hostd.service hostd-hub.service 'jupyter-*.service' >/dev/null 2>&1 || true
  step "removing $PREFIX, the commands, the user $HUB_USER and the groups hostd and $PROXY_GROUP"
  rm -rf "$PREFIX" /run/hostd
  rm -f /usr/local/bin/hostd /usr/local/bin/hostctl /usr/local/bin/hostd-hub
  if getent passwd "$HUB_USER" >/dev/null; then userdel "$HUB_USER"; fi
  if getent group "$HUB_USER" >/dev/null; then groupdel "$HUB_USER"; fi
  if getent group hostd >/dev/null; then
    groupdel hostd || say "kept group hostd: it is some account's primary group"
  fi
  if getent group "$PROXY_GROUP" >/dev/null; then
    groupdel "$PROXY_GROUP" || say "kept group $PROXY_GROUP: it is some account's primary group"
  fi
  if [ "$mode" = purge ]; then
    step "purging the config, the TLS files, the PAM file and the databases"
    rm -rf "$ETC" /var/lib/hostd /var/lib/hostd-hub "$PAM_FILE"
  else
    say "kept: $ETC (config, TLS), $PAM_FILE, /var/lib/hostd and /var/lib/hostd-hub (databases)"
    say "remove them too with: $0 --purge"
  fi
  say "users' homes and any shared or scratch directories are never removed"
  echo "hostd is uninstalled."
  exit 0
fi

# -- install, upgrade ---------------------------------------------------------------------------

changed_daemon=0  # the daemon's code or units changed: restart hostd
changed_hub=0     # the hub's code, unit or TLS drop-in changed: restart hostd-hub

# install_file SRC DEST MODE: copy when missing or different; true if it copied.
install_file() {
  if [ -e "$2" ] && cmp -s "$1" "$2"; then return 1; fi
  install -D -m "$3" "$1" "$2"
  say "installed $2"
}

# install_config SRC DEST: an admin's file is never overwritten; the new default is shown.
install_config() {
  if [ ! -e "$2" ]; then
    install -D -m 0644 "$1" "$2"
    say "installed $2"
  elif ! cmp -s "$1" "$2"; then
    say "kept your $2 (the shipped default is $1)"
  fi
}

step "apt packages"
hint "check the network and apt sources (apt-get update), then run install.sh again"
need=()
for p in python3-venv python3-dev gcc libsystemd-dev pkg-config dbus libpam-runtime; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ -n "$tls_host" ] && ! command -v openssl >/dev/null; then need+=(openssl); fi
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

step "groups hostd and $PROXY_GROUP, system user $HUB_USER"
hint "check /etc/passwd and /etc/group (groupadd, useradd); a user or group of that name must be hostd's"
# Members of group hostd may use the daemon's socket: the hub, and JupyterHub with the spawner.
getent group hostd >/dev/null || { groupadd --system hostd; say "created group hostd"; }
if ! getent passwd "$HUB_USER" >/dev/null; then
  useradd --system --user-group --groups hostd --home-dir /var/lib/hostd-hub --no-create-home \
    --shell /usr/sbin/nologin --comment "hostd hub" "$HUB_USER"
  say "created user $HUB_USER (groups $HUB_USER, hostd)"
elif ! id -nG "$HUB_USER" | tr ' ' '\n' | grep -qx hostd; then
  usermod -aG hostd "$HUB_USER"
  say "added $HUB_USER to group hostd"
fi
# Members of group $PROXY_GROUP reach the sessions' Unix sockets ([daemon] proxy_group): the hub
# alone (JupyterHub's user too, with the spawner). Nobody else belongs in it.
getent group "$PROXY_GROUP" >/dev/null \
  || { groupadd --system "$PROXY_GROUP"; say "created group $PROXY_GROUP"; }
if ! id -nG "$HUB_USER" | tr ' ' '\n' | grep -qx "$PROXY_GROUP"; then
  usermod -aG "$PROXY_GROUP" "$HUB_USER"
  say "added $HUB_USER to group $PROXY_GROUP"
  changed_hub=1  # a running hub gets the group at its restart
fi

step "the daemon's venv $VENV"
hint "pip could not build or fetch a package: see its error above (network, PyPI, a compiler)"
want=$(find "${SOURCES[@]}" -name __pycache__ -prune -o -type f -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/hostd" ] && [ "$(cat "$VENV/.hostd-source" 2>/dev/null)" = "$want" ]; then
  say "up to date"
elif [ -n "${HOSTD_PREBUILT:-}" ]; then
  [ "$(cat "$HOSTD_PREBUILT/venv/.hostd-source" 2>/dev/null)" = "$want" ] \
    || die "HOSTD_PREBUILT=$HOSTD_PREBUILT: its venv was not built from these sources (packaging/vm prebuild)"
  rm -rf "$VENV"
  install -d -m 0755 "$PREFIX"
  cp -a "$HOSTD_PREBUILT/venv" "$VENV"
  say "installed $("$VENV/bin/hostd" --version) (copied from $HOSTD_PREBUILT/venv)"
  changed_daemon=1
  changed_hub=1
else
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
  # Built from a copy: pip builds in the tree it is given, and the checkout stays as it was.
  build=$(mktemp -d)
  tar --exclude=__pycache__ -cf - "${SOURCES[@]}" | tar -xf - -C "$build"
  quiet "$VENV/bin/pip" install --disable-pip-version-check --upgrade "$build"
  rm -rf "$build"
  "$VENV/bin/hostd" --version >/dev/null
  echo "$want" > "$VENV/.hostd-source"
  say "installed $("$VENV/bin/hostd" --version)"
  changed_daemon=1
  changed_hub=1
fi
for tool in hostd hostctl hostd-hub; do
  [ "$(readlink "/usr/local/bin/$tool" 2>/dev/null)" = "$VENV/bin/$tool" ] \
    || ln -sfn "$VENV/bin/$tool" "/usr/local/bin/$tool"
done
install_file "$src/packaging/hostd-session-exec" "$PREFIX/bin/hostd-session-exec" 0755 || true
install_file "$src/README.md" "$PREFIX/README.md" 0644 || true
# The hub exists from the version that ships it; before that the unit is installed but idle.
hub_present=0
if "$VENV/bin/hostd-hub" --help >/dev/null 2>&1; then hub_present=1; fi

step "the session environment $SESSION_ENV (JupyterLab; read-only to users)"
hint "pip could not install ${SESSION_SPEC[*]}: see its error above (network, PyPI)"
spec=$(printf '%s\n' "${SESSION_SPEC[@]}")
if [ -x "$SESSION_ENV/bin/jupyter" ] && [ "$(cat "$SESSION_ENV/.hostd-spec" 2>/dev/null)" = "$spec" ]; then
  say "up to date (upgrade it with: $SESSION_ENV/bin/pip install -U jupyterlab)"
elif [ -n "${HOSTD_PREBUILT:-}" ]; then
  [ "$(cat "$HOSTD_PREBUILT/session/.hostd-spec" 2>/dev/null)" = "$spec" ] \
    || die "HOSTD_PREBUILT=$HOSTD_PREBUILT: its session was not built for ${SESSION_SPEC[*]} (packaging/vm prebuild)"
  rm -rf "$SESSION_ENV"
  install -d -m 0755 "$PREFIX"
  cp -a "$HOSTD_PREBUILT/session" "$SESSION_ENV"
  say "installed JupyterLab $("$SESSION_ENV/bin/python" -c 'import jupyterlab; print(jupyterlab.__version__)') (copied from $HOSTD_PREBUILT/session)"
else
  [ -x "$SESSION_ENV/bin/python" ] || /usr/bin/python3 -m venv "$SESSION_ENV"
  quiet "$SESSION_ENV/bin/pip" install --disable-pip-version-check "${SESSION_SPEC[@]}"
  "$SESSION_ENV/bin/python" -c "import jupyterlab"
  # Nothing needs rfc3987-syntax (jsonschema's format-nongpl extra pulls it in through
  # jupyter-events), yet with it every JupyterLab start builds an RFC 3987 grammar with lark:
  # 2.5 s of the ~4 s of CPU a start costs, and half the stop time (packaging/bench.sh, the
  # "pip" rows). Without it jsonschema skips that one format check.
  quiet "$SESSION_ENV/bin/pip" uninstall -y --disable-pip-version-check rfc3987-syntax lark
  # Byte-compiled once here, so no session pays for it (and none can write there).
  "$SESSION_ENV/bin/python" -m compileall -q "$SESSION_ENV/lib" >/dev/null || true
  echo "$spec" > "$SESSION_ENV/.hostd-spec"
  say "installed JupyterLab $("$SESSION_ENV/bin/python" -c 'import jupyterlab; print(jupyterlab.__version__)')"
fi
# Its Jupyter server config keeps the session's token out of the pages JupyterLab serves and
# puts its kernels on Unix sockets in the session's runtime directory.
if ! cmp -s "$src/packaging/session/jupyter_server_config.py" \
    "$SESSION_ENV/etc/jupyter/jupyter_server_config.py"; then
  install -D -m 0644 "$src/packaging/session/jupyter_server_config.py" \
    "$SESSION_ENV/etc/jupyter/jupyter_server_config.py"
fi
# Root's, readable by all, writable by none else; touched only when something is off, so a
# second run changes nothing.
if [ -n "$(find "$PREFIX" ! -type l \( ! -user root -o -perm /022 -o ! -perm -004 \) -print -quit)" ]; then
  chown -R root:root "$PREFIX"
  chmod -R u+rwX,go+rX,go-w "$PREFIX"
fi

step "config in $ETC and the PAM service $PAM_FILE (yours are never overwritten)"
hint "fix what check-config printed above in $CONFIG, then run install.sh again"
[ -d "$ETC" ] || install -d -m 0755 "$ETC"
install_config "$src/packaging/hostd.toml" "$CONFIG"
install_config "$src/packaging/hub.toml" "$HUB_CONFIG"
install_config "$src/packaging/pam.d/hostd" "$PAM_FILE"
"$VENV/bin/hostd" check-config "$CONFIG" | sed 's/^/    /'
if [ $hub_present = 1 ]; then
  hint "fix what check-config printed above in $HUB_CONFIG, then run install.sh again"
  "$VENV/bin/hostd-hub" --check-config --config "$HUB_CONFIG" | sed 's/^/    /'
fi

if [ -n "$tls_host" ]; then
  step "a self-signed TLS certificate for $tls_host in $TLS_DIR"
  hint "openssl failed: see its error above"
  install -d -m 0750 -o root -g "$HUB_USER" "$TLS_DIR"
  if [ -e "$TLS_DIR/hub.crt" ] || [ -e "$TLS_DIR/hub.key" ]; then
    say "kept the existing $TLS_DIR/hub.crt and hub.key (remove both to make new ones)"
  else
    if [[ $tls_host =~ ^[0-9.]+$ || $tls_host == *:* ]]; then san="IP:$tls_host"; else san="DNS:$tls_host"; fi
    (umask 077 && openssl req -x509 -newkey rsa:3072 -sha256 -days 365 -nodes -batch \
      -subj "/CN=$tls_host" -addext "subjectAltName=$san" \
      -keyout "$TLS_DIR/hub.key" -out "$TLS_DIR/hub.crt" 2>/dev/null)
    chown root:"$HUB_USER" "$TLS_DIR/hub.key" && chmod 0640 "$TLS_DIR/hub.key"
    chmod 0644 "$TLS_DIR/hub.crt"
    say "made $TLS_DIR/hub.crt and hub.key for $tls_host, valid 365 days"
  fi
  tmp=$(mktemp)
  cat > "$tmp" <<EOF
# Written by install.sh --self-signed $tls_host: the hub serves HTTPS with a self-signed
# certificate. For testing only: browsers warn, and nothing vouches for it. For production,
# put a real certificate and key in $TLS_DIR (key readable by group $HUB_USER) and remove
# this file (or point ssl_cert/ssl_key in $HUB_CONFIG at them).
[Service]
ExecStart=
ExecStart=$VENV/bin/hostd-hub --config $HUB_CONFIG --ssl-cert $TLS_DIR/hub.crt --ssl-key $TLS_DIR/hub.key
EOF
  if install_file "$tmp" "$HUB_DROPIN" 0644; then changed_hub=1; fi
  rm -f "$tmp"
  printf '\033[1;33m    NOT FOR PRODUCTION: a self-signed certificate makes browsers warn and proves nothing.\033[0m\n'
fi

step "systemd units: ${UNITS[*]}"
hint "systemd refused a unit: see 'systemctl status UNIT' and 'journalctl -xe'"
units_changed=0
socket_changed=0
for unit in "${UNITS[@]}"; do
  if install_file "$src/packaging/systemd/$unit" "$UNIT_DIR/$unit" 0644; then
    units_changed=1
    case $unit in
      hostd-hub.*) changed_hub=1 ;;
      hostd.socket) socket_changed=1 ;;
      # jupyter.slice is not restarted: that would stop every session. Its new settings
      # apply once no session runs (or: systemctl set-property jupyter.slice ...).
      *) changed_daemon=1 ;;
    esac
  fi
done
if [ $units_changed = 1 ] || [ $changed_hub = 1 ]; then systemctl daemon-reload; fi

step "starting hostd"
hint "see why with: systemctl status hostd.socket hostd; journalctl -u hostd -n 50"
systemctl is-enabled --quiet hostd.socket 2>/dev/null || systemctl enable --quiet hostd.socket
systemctl is-enabled --quiet hostd.service 2>/dev/null || systemctl enable --quiet hostd.service
if [ $socket_changed = 1 ] && systemctl is-active --quiet hostd.socket; then
  # A new socket (path, mode, group) is made by restarting it, which stops hostd (Requires=)
  # for a moment; sessions keep running.
  systemctl restart hostd.socket
fi
systemctl start hostd.socket
if [ $changed_daemon = 1 ] && systemctl is-active --quiet hostd.service; then
  # An upgrade restarts the daemon only; sessions are units of their own and keep running.
  systemctl restart hostd.service
  say "restarted hostd (sessions keep running)"
else
  systemctl start hostd.service
fi
systemctl is-active --quiet hostd.socket hostd.service

step "the hub (hostd-hub.service)"
hint "see why with: systemctl status hostd-hub; journalctl -u hostd-hub -n 50"
if [ $hub_present = 1 ]; then
  systemctl is-enabled --quiet hostd-hub.service 2>/dev/null || systemctl enable --quiet hostd-hub.service
  if [ $changed_hub = 1 ] && systemctl is-active --quiet hostd-hub.service; then
    systemctl restart hostd-hub.service
    say "restarted hostd-hub (sessions keep running)"
  else
    systemctl start hostd-hub.service
  fi
  systemctl is-active --quiet hostd-hub.service
  say "running"
else
  systemctl disable --now --quiet hostd-hub.service 2>/dev/null || true
  say "this version has no hub yet ($VENV/bin/hostd-hub --help fails): unit installed, not enabled"
fi

step "checking the installation (hostctl verify)"
hint "each FAIL line above says what is wrong and how to fix it"
"$VENV/bin/hostctl" verify --config "$CONFIG"

where="(no hub in this version yet)"
if [ $hub_present = 1 ]; then
  # "PORT https" (or http) as the hub will serve, from its config.
  read -r port scheme < <("$VENV/bin/python" -c 'import sys; from pathlib import Path
from hostd.api.hub.settings import load_hub_config
hub = load_hub_config(Path(sys.argv[1]))
print(hub.port, "https" if hub.tls or Path(sys.argv[2]).exists() else "http")' "$HUB_CONFIG" "$HUB_DROPIN") \
    || { port=$HUB_PORT; scheme=http; }
  host=$(hostname -f 2>/dev/null || hostname)
  where="$scheme://$host:$port/"
  if [ -n "${HOSTD_INSIDE_TESTBED:-}" ]; then
    where="$scheme://127.0.0.1:$port/ (inside packaging/testbed hostd, on this machine's loopback)"
  fi
fi
echo
echo "hostd is installed and running."
row() { printf '  %-34s %s\n' "$1" "$2"; }
row "hub" "$where"
row "hostctl status" "sessions (as root, or a member of group hostd)"
row "hostctl start alice --mem 2G" "start alice's JupyterLab (alice: a real account)"
row "hostctl verify" "check the installation again"
row "systemctl status hostd hostd-hub" "the services (journalctl -u jupyter-alice: a session's log)"
row "$CONFIG" "the policy: hostctl check-config, then systemctl restart hostd"
row "$HUB_CONFIG" "the hub: hostd-hub --check-config, then systemctl restart hostd-hub"
row "$PREFIX/README.md" "configuration reference, how-tos, troubleshooting"
