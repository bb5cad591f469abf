#!/usr/bin/env bash
# The README's first command: install hostd on this machine and start it.
#
#   ./packaging/install.sh                     install, or upgrade in place (sessions keep running)
#   ./packaging/install.sh --self-signed HOST  the same, plus a self-signed TLS certificate for
#                                              the hub (for testing; not for production)
#   ./packaging/install.sh --jupyterhub[=6|5]  JupyterHub 6 (or 5) with HostdSpawner and
#                                              configurable-http-proxy, as jupyterhub.service,
#                                              instead of hostd-hub (run it with the flag each time)
#   ./packaging/install.sh --uninstall         remove the units, the venvs, the system users and
#                                              groups; keep the config, the databases and homes
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
# --jupyterhub: JupyterHub and its proxy in an environment of their own, as their own user.
JH_ENV=$PREFIX/jupyterhub
JH_USER=jupyterhub
JH_COMMENT="hostd's JupyterHub"      # tells --uninstall the account is install.sh's to remove
JH_UNIT=jupyterhub.service
JH_MARK="# hostd: installed by packaging/install.sh --jupyterhub"  # the unit's first line
JH_ETC=/etc/jupyterhub
JH_CONFIG=$JH_ETC/jupyterhub_config.py
JH_STATE=/var/lib/jupyterhub
JH_TLS_DIR=$JH_ETC/tls
CHP_SPEC=configurable-http-proxy@5
# What HostdSpawner imports besides JupyterHub (hostd itself goes in without its dependencies).
JH_SPEC_EXTRA=("httptools>=0.6" "starlette>=0.40" "sniffio>=1.3")
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
# jh_unit_ours: true if $UNIT_DIR/$JH_UNIT is install.sh's (an admin's own jupyterhub.service,
# seed 002's say, is never replaced or removed).
jh_unit_ours() { [ -e "$UNIT_DIR/$JH_UNIT" ] && head -n 1 "$UNIT_DIR/$JH_UNIT" | grep -qxF "$JH_MARK"; }
jh_config_ours() { [ -e "$JH_CONFIG" ] && head -n 1 "$JH_CONFIG" | grep -qF "written once by hostd's"; }
jh_user_ours() { [ "$(getent passwd "$JH_USER" | cut -d: -f5)" = "$JH_COMMENT" ]; }

usage() {
  echo "usage:"
  sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'
}

mode=install
tls_host=""
jupyterhub=""  # the JupyterHub major version of --jupyterhub; empty: hostd-hub
while [ $# -gt 0 ]; do
  case "$1" in
    --jupyterhub | --jupyterhub=6) jupyterhub=6 ;;
    --jupyterhub=5) jupyterhub=5 ;;
    --jupyterhub=*) die "$1: JupyterHub 6 or 5 (--jupyterhub=6, --jupyterhub=5)" ;;
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
[ "$mode" = install ] || [ -z "$jupyterhub" ] || die "--jupyterhub goes with an install; --$mode removes it too"
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
  jh_ours=0
  if jh_unit_ours; then jh_ours=1; fi
  step "stopping hostd, the hub and every session (jupyter.slice)"
  systemctl disable --now hostd-hub.service hostd.socket hostd.service >/dev/null 2>&1 || true
  if [ $jh_ours = 1 ]; then systemctl disable --now "$JH_UNIT" >/dev/null 2>&1 || true; fi
  systemctl stop jupyter.slice >/dev/null 2>&1 || true
  step "removing the units"
  for unit in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$unit"; done
  rm -rf "$UNIT_DIR/hostd-hub.service.d"
  if [ $jh_ours = 1 ]; then rm -rf "$UNIT_DIR/$JH_UNIT" "$UNIT_DIR/$JH_UNIT.d"; fi
  systemctl daemon-reload
  systemctl reset-failed hostd.service hostd-hub.service 'jupyter-*.service' >/dev/null 2>&1 || true
  if [ $jh_ours = 1 ]; then systemctl reset-failed "$JH_UNIT" >/dev/null 2>&1 || true; fi
  step "removing $PREFIX, the commands, the user $HUB_USER and the groups hostd and $PROXY_GROUP"
  rm -rf "$PREFIX" /run/hostd
  rm -f /usr/local/bin/hostd /usr/local/bin/hostctl /usr/local/bin/hostd-hub
  if getent passwd "$HUB_USER" >/dev/null; then userdel "$HUB_USER"; fi
  if getent group "$HUB_USER" >/dev/null; then groupdel "$HUB_USER"; fi
  if jh_user_ours; then
    userdel "$JH_USER"
    if getent group "$JH_USER" >/dev/null; then groupdel "$JH_USER" || true; fi
    say "removed user $JH_USER (--jupyterhub's)"
  fi
  if getent group hostd >/dev/null; then
    groupdel hostd || say "kept group hostd: it is some account's primary group"
  fi
  if getent group "$PROXY_GROUP" >/dev/null; then
    groupdel "$PROXY_GROUP" || say "kept group $PROXY_GROUP: it is some account's primary group"
  fi
  if [ "$mode" = purge ]; then
    step "purging the config, the TLS files, the PAM file and the databases"
    rm -rf "$ETC" /var/lib/hostd /var/lib/hostd-hub "$PAM_FILE"
    if jh_config_ours; then  # --jupyterhub's; an admin's own jupyterhub_config.py stays
      rm -rf "$JH_CONFIG" "$JH_TLS_DIR" "$JH_STATE"
      rmdir "$JH_ETC" 2>/dev/null || say "kept $JH_ETC: it holds files install.sh did not write"
    fi
  else
    say "kept: $ETC (config, TLS), $PAM_FILE, /var/lib/hostd and /var/lib/hostd-hub (databases)"
    if jh_config_ours; then say "kept: $JH_ETC and $JH_STATE (--jupyterhub's config and database)"; fi
    say "remove them too with: $0 --purge"
  fi
  say "users' homes and any shared or scratch directories are never removed"
  echo "hostd is uninstalled."
  exit 0
fi

# -- install, upgrade ---------------------------------------------------------------------------

if [ -n "$jupyterhub" ] && [ -e "$UNIT_DIR/$JH_UNIT" ] && ! jh_unit_ours; then
  die "$UNIT_DIR/$JH_UNIT is not install.sh's (your own JupyterHub?): nothing changed.
  how to fix: stop it and move it aside (systemctl disable --now $JH_UNIT; mv $UNIT_DIR/$JH_UNIT /root/),
  then run install.sh --jupyterhub again; your jupyterhub_config.py carries over (README, JupyterHub)"
fi
# JupyterHub upgrades its database (upgrade-db, below), but an older JupyterHub cannot read a
# newer one's: refused before anything changes, rather than a hub that restart-loops.
JH_DB=$JH_STATE/jupyterhub.sqlite
jh_installed=$(sed -n '1s/^jupyterhub>=\([0-9]*\),.*/\1/p' "$JH_ENV/.hostd-spec" 2>/dev/null || true)
if [ -n "$jupyterhub" ] && [ -n "$jh_installed" ] && [ "$jupyterhub" -lt "$jh_installed" ] && [ -e "$JH_DB" ]; then
  die "JupyterHub $jupyterhub cannot read JupyterHub $jh_installed's database $JH_DB: nothing changed.
  how to fix: systemctl stop jupyterhub; mv $JH_DB $JH_DB.jupyterhub$jh_installed
  (JupyterHub $jupyterhub starts a new one: users log in again), then run install.sh --jupyterhub=$jupyterhub again"
fi

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
# configurable-http-proxy runs on Debian's node (unless a node and npm are there already).
if [ -n "$jupyterhub" ] && ! command -v node >/dev/null; then need+=(nodejs); fi
if [ -n "$jupyterhub" ] && ! command -v npm >/dev/null && [ ! -d "${HOSTD_PREBUILT:-/nonexistent}/jupyterhub/node" ] \
  && [ ! -x "$JH_ENV/node/node_modules/.bin/configurable-http-proxy" ]; then
  need+=(npm)
fi
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

if [ -n "$jupyterhub" ]; then
  # JupyterHub's account: the daemon's socket (hostd; it acts for the users it spawns, so it is
  # named in [daemon] act_for_others below), the sessions' sockets ($PROXY_GROUP: its proxy
  # connects to them) and shadow (PAMAuthenticator's pam_unix reads /etc/shadow itself; the
  # alternative, unix_chkpwd, checks only the caller's own password).
  jh_groups=(hostd "$PROXY_GROUP" shadow)
  if ! getent passwd "$JH_USER" >/dev/null; then
    useradd --system --user-group --groups "$(IFS=,; echo "${jh_groups[*]}")" \
      --home-dir "$JH_STATE" --no-create-home --shell /usr/sbin/nologin --comment "$JH_COMMENT" "$JH_USER"
    say "created user $JH_USER (groups $JH_USER, ${jh_groups[*]})"
  fi
  for g in "${jh_groups[@]}"; do
    if ! id -nG "$JH_USER" | tr ' ' '\n' | grep -qx "$g"; then
      usermod -aG "$g" "$JH_USER"
      say "added $JH_USER to group $g"
    fi
  done
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
if [ -n "$jupyterhub" ]; then
  next=$((jupyterhub + 1))
  step "jupyterhub-singleuser (JupyterHub $jupyterhub) in the session environment"
  hint "pip could not install jupyterhub into $SESSION_ENV: see its error above (network, PyPI)"
  singleuser_spec="jupyterhub>=$jupyterhub,<$next"
  if [ -x "$SESSION_ENV/bin/jupyterhub-singleuser" ] \
    && [ "$(cat "$SESSION_ENV/.hostd-singleuser" 2>/dev/null)" = "$singleuser_spec" ]; then
    say "up to date"
  else
    quiet "$SESSION_ENV/bin/pip" install --disable-pip-version-check "$singleuser_spec"
    "$SESSION_ENV/bin/python" -m compileall -q "$SESSION_ENV/lib" >/dev/null || true
    echo "$singleuser_spec" > "$SESSION_ENV/.hostd-singleuser"
    say "installed $SESSION_ENV/bin/jupyterhub-singleuser ($("$SESSION_ENV/bin/python" -c 'import jupyterhub; print(jupyterhub.__version__)'))"
  fi

  step "JupyterHub $jupyterhub, HostdSpawner and configurable-http-proxy in $JH_ENV"
  hint "pip or npm could not install them: see the error above (network, PyPI, npm's registry)"
  # HostdSpawner needs hostd's client and wire only: hostd without its dependencies (no
  # pystemd, uvicorn, sqlmodel in JupyterHub's environment), plus what they import. hostd
  # installs one import name, hostd: checked below, as no stray top-level module may appear.
  jh_spec=("jupyterhub>=$jupyterhub,<$next" "${JH_SPEC_EXTRA[@]}")
  jh_stamp=$(printf '%s\n' "${jh_spec[@]}" "$want")
  if [ -x "$JH_ENV/bin/jupyterhub" ] && [ "$(cat "$JH_ENV/.hostd-spec" 2>/dev/null)" = "$jh_stamp" ]; then
    say "up to date"
  elif [ -n "${HOSTD_PREBUILT:-}" ] && [ -d "$HOSTD_PREBUILT/jupyterhub" ]; then
    [ "$(cat "$HOSTD_PREBUILT/jupyterhub/.hostd-spec" 2>/dev/null)" = "$jh_stamp" ] \
      || die "HOSTD_PREBUILT=$HOSTD_PREBUILT: its jupyterhub was not built for ${jh_spec[0]} and these sources (packaging/vm prebuild)"
    rm -rf "$JH_ENV"
    cp -a "$HOSTD_PREBUILT/jupyterhub" "$JH_ENV"
    changed_hub=1
    say "installed JupyterHub $("$JH_ENV/bin/python" -c 'import jupyterhub; print(jupyterhub.__version__)') (copied from $HOSTD_PREBUILT/jupyterhub)"
  else
    if [ -x "$JH_ENV/bin/python" ] && [ "$(head -n 1 "$JH_ENV/.hostd-spec" 2>/dev/null)" != "${jh_spec[0]}" ]; then
      rm -rf "$JH_ENV"  # another JupyterHub major version: a fresh environment, not a downgrade
    fi
    [ -x "$JH_ENV/bin/python" ] || /usr/bin/python3 -m venv "$JH_ENV"
    quiet "$JH_ENV/bin/pip" install --disable-pip-version-check "${jh_spec[@]}"
    build=$(mktemp -d)
    tar --exclude=__pycache__ -cf - "${SOURCES[@]}" | tar -xf - -C "$build"
    quiet "$JH_ENV/bin/pip" install --disable-pip-version-check --no-deps --force-reinstall "$build"
    rm -rf "$build"
    "$JH_ENV/bin/python" -m compileall -q "$JH_ENV/lib" >/dev/null || true
    if [ -e "$JH_DB" ] && [ -e "$JH_CONFIG" ]; then
      # A newer JupyterHub may need a newer schema: upgrade-db backs the sqlite file up beside
      # it first, and does nothing when the schema is current. Not while the old one runs.
      hint "jupyterhub upgrade-db failed (see above); its backup of $JH_DB is beside it"
      systemctl stop "$JH_UNIT" 2>/dev/null || true
      # (It runs alembic from PATH: JupyterHub's own, as in its unit.)
      (cd "$JH_STATE" && quiet runuser -u "$JH_USER" -- env PATH="$JH_ENV/bin:/usr/bin:/bin" \
        HOME="$JH_STATE" "$JH_ENV/bin/jupyterhub" upgrade-db -f "$JH_CONFIG")
      say "checked $JH_DB against JupyterHub's schema (jupyterhub upgrade-db)"
    fi
    echo "$jh_stamp" > "$JH_ENV/.hostd-spec"
    changed_hub=1
    say "installed JupyterHub $("$JH_ENV/bin/python" -c 'import jupyterhub; print(jupyterhub.__version__)') and hostd $("$JH_ENV/bin/python" -c 'from importlib.metadata import version; print(version("hostd"))')"
  fi
  # -I: not the working directory's modules (this checkout has api/, units/ at its top).
  (cd / && "$JH_ENV/bin/python" -I -c 'import hostd.api.spawner') \
    || die "$JH_ENV: HostdSpawner does not import (see the error above)"
  stray=$(cd / && "$JH_ENV/bin/python" -I -c 'import importlib.util as u
print(" ".join(n for n in ("api", "units", "cgroups") if u.find_spec(n)))')
  [ -z "$stray" ] || die "$JH_ENV has top-level modules $stray: remove $JH_ENV and run install.sh again"
  if [ -x "$JH_ENV/node/node_modules/.bin/configurable-http-proxy" ] \
    && [ "$(cat "$JH_ENV/node/.hostd-spec" 2>/dev/null)" = "$CHP_SPEC" ]; then
    say "configurable-http-proxy up to date"
  else
    rm -rf "$JH_ENV/node"
    quiet npm install --no-audit --no-fund --prefix "$JH_ENV/node" "$CHP_SPEC"
    echo "$CHP_SPEC" > "$JH_ENV/node/.hostd-spec"
    changed_hub=1
    say "installed configurable-http-proxy $("$JH_ENV/node/node_modules/.bin/configurable-http-proxy" --version)"
  fi
  [ "$(readlink "$JH_ENV/bin/configurable-http-proxy" 2>/dev/null)" = ../node/node_modules/.bin/configurable-http-proxy ] \
    || ln -sfn ../node/node_modules/.bin/configurable-http-proxy "$JH_ENV/bin/configurable-http-proxy"
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
if [ -n "$jupyterhub" ]; then
  # JupyterHub's user acts for the users it spawns; its servers run [commands] singleuser: on
  # the session's Unix socket with JupyterHub 6, on a loopback port with 5 (which cannot connect
  # to a socket). An admin's own singleuser is kept; one of these two is switched with -- .
  hostctl_config() { "$VENV/bin/hostctl" config "$@" --config "$CONFIG" | sed 's/^/    /'; }
  exec_=/opt/hostd/bin/hostd-session-exec singleuser=$SESSION_ENV/bin/jupyterhub-singleuser
  on_socket="[\"$exec_\", \"$singleuser\", \"--ServerApp.sock={SOCKET}\", \"--ServerApp.sock_mode=0660\", \"--ServerApp.port=8888\"]"
  on_port="[\"$exec_\", \"$singleuser\", \"--ip=127.0.0.1\", \"--port={PORT}\"]"
  if [ "$jupyterhub" = 6 ]; then want_cmd=$on_socket; other_cmd=$on_port; else want_cmd=$on_port; other_cmd=$on_socket; fi
  # "yes"/"no" (JupyterHub's user in act_for_others), then "unset", "ours", "other" or "admin's".
  read -r acts command_state < <("$VENV/bin/python" -c 'import json, sys, tomllib
config = tomllib.load(open(sys.argv[1], "rb"))
acts = sys.argv[2] in config.get("daemon", {}).get("act_for_others", ["hostd-hub"])
current = config.get("commands", {}).get("singleuser")
state = ("unset" if current is None else "ours" if current == json.loads(sys.argv[3])
         else "other" if current == json.loads(sys.argv[4]) else "admins")
print("yes" if acts else "no", state)' "$CONFIG" "$JH_USER" "$want_cmd" "$other_cmd")
  if [ "$acts" = no ]; then
    hostctl_config add-item daemon.act_for_others "$JH_USER"
    changed_daemon=1
  fi
  case $command_state in
    unset | other) hostctl_config set commands.singleuser "$want_cmd"; changed_daemon=1 ;;
    admins) say "kept your [commands] singleuser in $CONFIG (JupyterHub $jupyterhub's would be: singleuser = $want_cmd)" ;;
  esac
fi
"$VENV/bin/hostd" check-config "$CONFIG" | sed 's/^/    /'
if [ $hub_present = 1 ]; then
  hint "fix what check-config printed above in $HUB_CONFIG, then run install.sh again"
  "$VENV/bin/hostd-hub" --check-config --config "$HUB_CONFIG" | sed 's/^/    /'
fi

# The certificate and key of --self-signed: the hub's, or JupyterHub's (readable by its user).
if [ -n "$jupyterhub" ]; then
  tls_dir=$JH_TLS_DIR tls_group=$JH_USER tls_name=jupyterhub
else
  tls_dir=$TLS_DIR tls_group=$HUB_USER tls_name=hub
fi
if [ -n "$tls_host" ]; then
  step "a self-signed TLS certificate for $tls_host in $tls_dir"
  hint "openssl failed: see its error above"
  install -d -m 0750 -o root -g "$tls_group" "$tls_dir"
  if [ -e "$tls_dir/$tls_name.crt" ] || [ -e "$tls_dir/$tls_name.key" ]; then
    say "kept the existing $tls_dir/$tls_name.crt and $tls_name.key (remove both to make new ones)"
  else
    if [[ $tls_host =~ ^[0-9.]+$ || $tls_host == *:* ]]; then san="IP:$tls_host"; else san="DNS:$tls_host"; fi
    (umask 077 && openssl req -x509 -newkey rsa:3072 -sha256 -days 365 -nodes -batch \
      -subj "/CN=$tls_host" -addext "subjectAltName=$san" \
      -keyout "$tls_dir/$tls_name.key" -out "$tls_dir/$tls_name.crt" 2>/dev/null)
    chown root:"$tls_group" "$tls_dir/$tls_name.key" && chmod 0640 "$tls_dir/$tls_name.key"
    chmod 0644 "$tls_dir/$tls_name.crt"
    say "made $tls_dir/$tls_name.crt and $tls_name.key for $tls_host, valid 365 days"
  fi
fi
if [ -n "$tls_host" ] && [ -z "$jupyterhub" ]; then
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

if [ -n "$jupyterhub" ]; then
  step "JupyterHub's config $JH_CONFIG (yours once written: never overwritten)"
  hint "see the error above; $JH_CONFIG is made from packaging/jupyterhub/jupyterhub_config.py"
  jh_cert=$JH_TLS_DIR/jupyterhub.crt jh_key=$JH_TLS_DIR/jupyterhub.key
  if [ -e "$JH_CONFIG" ]; then
    say "kept your $JH_CONFIG"
    if [ -n "$tls_host" ] && ! grep -q '^c\.JupyterHub\.ssl_cert' "$JH_CONFIG"; then
      say "to serve HTTPS with the certificate made above, add to it, then: systemctl restart jupyterhub"
      say "  c.JupyterHub.ssl_cert = \"$jh_cert\""
      say "  c.JupyterHub.ssl_key = \"$jh_key\""
    fi
    # Written by an older install.sh: JupyterHub's own proxy class gives node 10 s to listen
    # and exits on a slow or busy host (README, JupyterHub).
    if ! grep -q '^c\.JupyterHub\.proxy_class' "$JH_CONFIG"; then
      say "to give the proxy more than JupyterHub's 10 s to start, add to it, then: systemctl restart jupyterhub"
      grep -E '^c\.(JupyterHub\.proxy_class|PatientConfigurableHTTPProxy)' \
        "$src/packaging/jupyterhub/jupyterhub_config.py" | while IFS= read -r line; do say "  $line"; done
    fi
  else
    # Where it listens: the hub's address and port (/etc/hostd/hub.toml: one hub per port).
    tmp=$(mktemp)
    "$VENV/bin/python" -c 'import sys; from pathlib import Path
from hostd.api.hub.settings import load_hub_config
template, hub_toml, cert, key, out = sys.argv[1:]
hub = load_hub_config(Path(hub_toml))
host = f"[{hub.ip}]" if ":" in hub.ip else hub.ip
scheme = "https" if cert else "http"
if cert:
    note = "HTTPS with the certificate install.sh --self-signed made (not for production)."
    tls = f"c.JupyterHub.ssl_cert = \"{cert}\"\nc.JupyterHub.ssl_key = \"{key}\"\n"
else:
    note = "HTTPS: https:// here and c.JupyterHub.ssl_cert, ssl_key."
    tls = ""
text = Path(template).read_text()
text = text.replace("@BIND_URL@", f"{scheme}://{host}:{hub.port}").replace("@TLS_NOTE@", note)
Path(out).write_text(text.replace("# @TLS_LINES@\n", tls))' \
      "$src/packaging/jupyterhub/jupyterhub_config.py" "$HUB_CONFIG" \
      "${tls_host:+$jh_cert}" "${tls_host:+$jh_key}" "$tmp"
    install -d -m 0755 "$JH_ETC"
    install -m 0640 -o root -g "$JH_USER" "$tmp" "$JH_CONFIG"
    rm -f "$tmp"
    changed_hub=1
    say "wrote $JH_CONFIG ($(grep '^c.JupyterHub.bind_url' "$JH_CONFIG"))"
  fi
  if [ -n "$tls_host" ]; then
    printf '\033[1;33m    NOT FOR PRODUCTION: a self-signed certificate makes browsers warn and proves nothing.\033[0m\n'
  fi
fi

step "systemd units: ${UNITS[*]}${jupyterhub:+ $JH_UNIT}"
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
if [ -n "$jupyterhub" ] && install_file "$src/packaging/systemd/$JH_UNIT" "$UNIT_DIR/$JH_UNIT" 0644; then
  units_changed=1
  changed_hub=1
fi
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

# hub_port: the port the hub of this mode listens on, from its config.
hub_port() {
  if [ -n "$jupyterhub" ]; then
    "$VENV/bin/python" -c 'import re, sys; from urllib.parse import urlsplit
text = open(sys.argv[1]).read()
urls = re.findall(r"^c\.JupyterHub\.bind_url\s*=\s*[\x27\x22]([^\x27\x22]+)", text, re.M)
ports = re.findall(r"^c\.JupyterHub\.port\s*=\s*(\d+)", text, re.M)
print(ports[-1] if ports else (urlsplit(urls[-1]).port if urls else None) or 8000)' "$JH_CONFIG"
  else
    "$VENV/bin/python" -c 'import sys; from pathlib import Path
from hostd.api.hub.settings import load_hub_config
print(load_hub_config(Path(sys.argv[1])).port)' "$HUB_CONFIG" 2>/dev/null || echo $HUB_PORT
  fi
}
# port_holders PORT: "UNIT PID NAME" of each process listening on TCP PORT (UNIT "-" if none).
port_holders() {
  "$VENV/bin/python" -c 'import re, sys, psutil
for conn in psutil.net_connections("tcp"):
    if conn.status != psutil.CONN_LISTEN or conn.laddr.port != int(sys.argv[1]):
        continue
    unit, name = "-", "?"
    if conn.pid is not None:
        try:
            name = psutil.Process(conn.pid).name()
            found = re.findall(r"/([^/\n]+\.(?:service|scope))$", open(f"/proc/{conn.pid}/cgroup").read(), re.M)
            unit = found[-1] if found else "-"
        except (OSError, psutil.Error):
            pass
    print(unit, conn.pid or "?", name)' "$1" | sort -u
}
# One hub per port: a port another process holds would make the hub restart-loop on
# "address already in use". Our own hubs (hostd-hub, JupyterHub's proxy) are no conflict.
port=$(hub_port)
conflicts=$(port_holders "$port" | awk '$1 != "hostd-hub.service" && $1 != "jupyterhub.service"')
if [ -n "$conflicts" ]; then
  read -r c_unit c_pid c_name <<< "$(head -n 1 <<< "$conflicts")"
  if [ "$c_unit" != - ]; then stop_it="systemctl disable --now $c_unit"; else stop_it="kill $c_pid"; fi
  if [ -n "$jupyterhub" ]; then where_port="c.JupyterHub.bind_url in $JH_CONFIG"; else where_port="port in $HUB_CONFIG"; fi
  die "port $port is held by $c_name (pid $c_pid, unit $c_unit), not by hostd's hub: the hub cannot listen there.
  how to fix: stop it ($stop_it), or give the hub another port ($where_port); then run install.sh again"
fi

if [ -n "$jupyterhub" ]; then
  step "JupyterHub (jupyterhub.service, instead of hostd-hub)"
  hint "see why with: systemctl status jupyterhub; journalctl -u jupyterhub -n 50"
  if systemctl is-enabled --quiet hostd-hub.service 2>/dev/null || systemctl is-active --quiet hostd-hub.service; then
    systemctl disable --now --quiet hostd-hub.service
    say "stopped and disabled hostd-hub (one hub per port; install.sh without --jupyterhub brings it back)"
  fi
  systemctl is-enabled --quiet "$JH_UNIT" 2>/dev/null || systemctl enable --quiet "$JH_UNIT"
  if [ $changed_hub = 1 ] && systemctl is-active --quiet "$JH_UNIT"; then
    systemctl restart "$JH_UNIT"
    say "restarted JupyterHub (sessions keep running)"
  else
    systemctl start "$JH_UNIT"
  fi
  # Up means: its proxy listens on the port, and systemd has not had to restart it. On a slow
  # host JupyterHub itself can take a minute to load, then give its proxy up to
  # PatientConfigurableHTTPProxy.start_timeout (120 s in the config written above).
  jh_wait=240 jh_since=$SECONDS
  while [ $((SECONDS - jh_since)) -lt $jh_wait ]; do
    if port_holders "$port" | grep -q "^$JH_UNIT "; then break; fi
    [ "$(systemctl show -p NRestarts --value "$JH_UNIT")" = 0 ] || break
    sleep 0.5
  done
  restarts=$(systemctl show -p NRestarts --value "$JH_UNIT")
  [ "$restarts" = 0 ] || die "JupyterHub exited and was restarted $restarts times: journalctl -u jupyterhub -n 50 says why"
  port_holders "$port" | grep -q "^$JH_UNIT " \
    || die "JupyterHub does not listen on port $port after $jh_wait s: journalctl -u jupyterhub -n 50 says why"
  say "running: JupyterHub $("$JH_ENV/bin/jupyterhub" --version) on port $port, as user $JH_USER"
fi

if [ -z "$jupyterhub" ] && jh_unit_ours; then
  step "back to hostd-hub: removing jupyterhub.service (install.sh --jupyterhub's)"
  systemctl disable --now --quiet "$JH_UNIT" || true
  rm -rf "$UNIT_DIR/$JH_UNIT" "$UNIT_DIR/$JH_UNIT.d"
  systemctl daemon-reload
  say "kept $JH_ENV, $JH_CONFIG and $JH_STATE (install.sh --jupyterhub uses them again)"
fi

if [ -z "$jupyterhub" ]; then
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
fi

step "checking the installation (hostctl verify)"
hint "each FAIL line above says what is wrong and how to fix it"
"$VENV/bin/hostctl" verify --config "$CONFIG"

where="(no hub in this version yet)"
if [ -n "$jupyterhub" ]; then
  scheme=http
  if grep -q '^c\.JupyterHub\.ssl_cert' "$JH_CONFIG"; then scheme=https; fi
  # The address it is bound to, or (every interface) this machine's name.
  host=$(sed -n 's|^c\.JupyterHub\.bind_url *= *["'"'"']https\{0,1\}://\([^:/]*\):.*|\1|p' "$JH_CONFIG" | tail -n 1)
  [ -n "$host" ] || host=$(hostname -f 2>/dev/null || hostname)
  where="$scheme://$host:$port/ (JupyterHub)"
  if [ -n "${HOSTD_INSIDE_TESTBED:-}" ]; then
    where="$scheme://127.0.0.1:$port/ (JupyterHub, inside packaging/testbed hostd, on this machine's loopback)"
  fi
elif [ $hub_present = 1 ]; then
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
if [ -n "$jupyterhub" ]; then
  row "systemctl status hostd jupyterhub" "the services (journalctl -u jupyterhub -f: JupyterHub's log)"
  row "journalctl -u jupyter-alice" "a session's log"
  row "$JH_CONFIG" "JupyterHub's: then systemctl restart jupyterhub"
else
  row "systemctl status hostd hostd-hub" "the services (journalctl -u jupyter-alice: a session's log)"
fi
row "$CONFIG" "the policy: hostctl check-config, then systemctl restart hostd"
[ -n "$jupyterhub" ] || row "$HUB_CONFIG" "the hub: hostd-hub --check-config, then systemctl restart hostd-hub"
row "$PREFIX/README.md" "configuration reference, how-tos, troubleshooting"
