"""`hostctl verify`'s judgements: is this installation healthy? (hostd/ layer, pure).

Each ``judge_*`` function takes facts that hostd.cli.verify_host gathered from the machine
(``systemctl show`` text, a stat of the socket, the files of a probe unit's cgroup, ...) and
returns ``Check`` values: a status, one line for people, and, when something is wrong, the
command that fixes it. Nothing here opens a file, runs a command or looks up a user, so every
verdict is tested without a machine to break.

    ok    unit hostd.socket     active (listening), enabled
    FAIL  socket                /run/hostd/hostd.sock is root:hostd 0666, expected ...
          fix: systemctl restart hostd.socket hostd.service

``exit_status`` is 1 when any check failed; a warning (something odd that does not stop
sessions from working) and a skip (not applicable here) leave it 0.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from hostd.cgroups.usage import CgroupVersion

__all__ = [
    "DAEMON_UNITS",
    "HUB_UNIT",
    "PROBE_CPU_PERCENT",
    "PROBE_MEMORY_MAX",
    "SCRATCH_BITS",
    "SOCKET_MODE",
    "Check",
    "LimitProbe",
    "PathFacts",
    "Status",
    "UnitState",
    "exit_status",
    "format_report",
    "judge_acme_certificate",
    "judge_cgroup_shape",
    "judge_config",
    "judge_daemon_answer",
    "judge_hub_user",
    "judge_limits",
    "judge_pam",
    "judge_paths",
    "judge_proxy_group",
    "judge_scratch",
    "judge_session_env",
    "judge_socket",
    "judge_tls",
    "judge_units",
    "parse_systemctl_show",
    "summary",
]

Status = Literal["ok", "warn", "fail", "skip"]

SOCKET_MODE: Final = 0o660
DAEMON_UNITS: Final = ("hostd.socket", "hostd.service", "jupyter.slice")
HUB_UNIT: Final = "hostd-hub.service"
# The probe unit's limits: small, and exact in every cgroup version (a multiple of the page).
PROBE_MEMORY_MAX: Final = 64 * 1024 * 1024
PROBE_CPU_PERCENT: Final = 50
# What a group scratch directory needs: group-writable, and setgid so files stay the group's.
SCRATCH_BITS: Final = stat.S_ISGID | stat.S_IRWXG
_FIX_SOCKET: Final = "systemctl restart hostd.socket hostd.service (sessions keep running)"


@dataclass(frozen=True)
class Check:
    """One verdict: ``name`` says what was checked, ``detail`` what was found."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    # Lines shown under the fix (a unit's last journal lines, say).
    log: tuple[str, ...] = ()


# -- units ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitState:
    """A unit as ``systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState,
    NRestarts,ActiveEnterTimestampMonotonic`` has it (n_restarts: None for a unit that has no
    such counter, a socket or a slice; active_enter_us: CLOCK_MONOTONIC microseconds)."""

    name: str
    load_state: str = ""
    active_state: str = ""
    sub_state: str = ""
    unit_file_state: str = ""
    n_restarts: int | None = None
    active_enter_us: int = 0


def parse_systemctl_show(text: str) -> dict[str, UnitState]:
    """Units by Id from the text of ``systemctl show -p Id,LoadState,... UNIT...`` (one block of
    KEY=VALUE lines per unit, blank lines between)."""
    units: dict[str, UnitState] = {}
    for block in text.split("\n\n"):
        values = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        name = values.get("Id", "")
        if name:
            units[name] = UnitState(
                name=name,
                load_state=values.get("LoadState", ""),
                active_state=values.get("ActiveState", ""),
                sub_state=values.get("SubState", ""),
                unit_file_state=values.get("UnitFileState", ""),
                n_restarts=_whole(values.get("NRestarts")),
                active_enter_us=_whole(values.get("ActiveEnterTimestampMonotonic")) or 0,
            )
    return units


def _whole(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _state(unit: UnitState) -> str:
    enabled = f", {unit.unit_file_state}" if unit.unit_file_state else ""
    return f"{unit.active_state} ({unit.sub_state}){enabled}"


def _judge_unit(unit: UnitState, *, must_run: bool, enable: bool) -> Check:
    label = f"unit {unit.name}"
    logs = f"systemctl status {unit.name}; journalctl -u {unit.name} -n 50"
    if unit.load_state != "loaded":
        return Check(
            label,
            "fail",
            f"not installed (LoadState={unit.load_state or 'unknown'})",
            "run packaging/install.sh again",
        )
    if unit.active_state == "failed":
        return Check(label, "fail", _state(unit), f"see why: {logs}")
    if must_run and unit.active_state not in ("active", "activating", "reloading"):
        return Check(label, "fail", _state(unit), f"systemctl start {unit.name}; then {logs}")
    if enable and unit.unit_file_state not in ("enabled", "static", "indirect", "alias"):
        return Check(
            label, "warn", f"{_state(unit)}: not started at boot", f"systemctl enable {unit.name}"
        )
    if unit.name == "hostd.service" and unit.active_state == "inactive":
        return Check(label, "warn", f"{_state(unit)}: starts on the socket's first request")
    if unit.name.endswith(".slice") and unit.active_state != "active":
        return Check(label, "ok", f"installed, {unit.active_state} (active while sessions run)")
    return Check(label, "ok", _state(unit))


def judge_units(units: Mapping[str, UnitState], *, hub_installed: bool) -> list[Check]:
    """hostd.socket must listen; hostd.service may wait for it (socket activation) but must not
    have failed; jupyter.slice must be installed; hostd-hub must run once the hub exists."""
    checks = [
        _judge_unit(
            units.get(name, UnitState(name)),
            must_run=name == "hostd.socket",
            enable=name != "jupyter.slice",
        )
        for name in DAEMON_UNITS
    ]
    if hub_installed:
        checks.append(
            _judge_unit(units.get(HUB_UNIT, UnitState(HUB_UNIT)), must_run=True, enable=True)
        )
    else:
        checks.append(
            Check(f"unit {HUB_UNIT}", "skip", "this version has no hub (hostd-hub --help fails)")
        )
    return checks


# -- the socket and the daemon --------------------------------------------------------------


@dataclass(frozen=True)
class PathFacts:
    """What lstat(2) says of a path, with owner and group as names (numbers if unknown)."""

    path: str
    mode: int  # st_mode: type and permission bits
    owner: str
    group: str

    @property
    def permissions(self) -> int:
        return stat.S_IMODE(self.mode)

    def describe(self) -> str:
        return f"{self.owner}:{self.group} {self.permissions:04o}"


def judge_socket(path: str, facts: PathFacts | None, *, group: str) -> Check:
    """The daemon's one door: a socket, root:<group>, 0660 — never open to every user."""
    want = f"root:{group} {SOCKET_MODE:04o}"
    if facts is None:
        return Check(
            "socket", "fail", f"{path} does not exist: hostd.socket is not listening", _FIX_SOCKET
        )
    if not stat.S_ISSOCK(facts.mode):
        return Check("socket", "fail", f"{path} is not a socket", f"rm {path}; {_FIX_SOCKET}")
    found = f"{path} is {facts.describe()}, expected {want}"
    if facts.permissions & 0o007:
        return Check("socket", "fail", f"{found}: every local user can use the daemon", _FIX_SOCKET)
    if facts.owner != "root":
        return Check("socket", "fail", f"{found}: the daemon's socket must be root's", _FIX_SOCKET)
    if facts.group != group:
        return Check("socket", "fail", f"{found}: group {group} cannot use it", _FIX_SOCKET)
    if facts.permissions != SOCKET_MODE:
        return Check("socket", "fail", f"{found}: group {group} cannot use it", _FIX_SOCKET)
    return Check("socket", "ok", f"{path} is {want}")


def judge_daemon_answer(path: str, health: Mapping[str, object] | None, error: str | None) -> Check:
    """GET /v1/health over the socket."""
    if health is None:
        return Check(
            "daemon",
            "fail",
            f"no answer on {path}: {error or 'unknown error'}",
            "systemctl status hostd; journalctl -u hostd -n 50",
        )
    shown = ", ".join(
        f"{key} {value}" for key, value in health.items() if not isinstance(value, dict | list)
    )
    return Check("daemon", "ok", f"answers on {path}" + (f" ({shown})" if shown else ""))


# -- configuration and what it names --------------------------------------------------------


def judge_config(
    path: str,
    *,
    description: str | None,
    problems: Sequence[tuple[str, str]],
    hub: bool = False,
) -> Check:
    """The config loaded (description: what it says) or did not (problems); hub: the hub's."""
    name = "hub config" if hub else "config"
    if problems:
        listed = "; ".join(f"{key}: {message}" for key, message in problems)
        check = (
            f"hostd-hub --check-config --config {path}" if hub else f"hostctl check-config {path}"
        )
        service = "hostd-hub" if hub else "hostd"
        return Check(
            name, "fail", f"{path}: {listed}", f"fix it ({check}), then systemctl restart {service}"
        )
    return Check(name, "ok", f"{path}: {description}")


def judge_pam(path: str, text: str | None) -> Check:
    """The hub's logins go through PAM's service file; without it PAM uses 'other' (deny)."""
    fix = f"copy packaging/pam.d/hostd to {path} (or run packaging/install.sh again)"
    if text is None:
        return Check("PAM", "fail", f"{path} is missing: nobody can log in to the hub", fix)
    lines = [
        line.split()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    kinds = {words[0].lstrip("-") for words in lines}
    if "auth" not in kinds and not any(words[0] == "@include" for words in lines):
        return Check("PAM", "fail", f"{path} has no auth line: nobody can log in to the hub", fix)
    return Check("PAM", "ok", f"{path} ({len(lines)} rules)")


def judge_paths(paths: Mapping[str, Iterable[str]], existing: Iterable[str]) -> list[Check]:
    """Paths bound into sessions (by config key) must exist: systemd refuses a unit whose
    ReadOnlyPaths=, ReadWritePaths= or BindReadOnlyPaths= names a missing one (226/NAMESPACE).
    Templates ({USERNAME}) are per user and not checked."""
    found = set(existing)
    checks: list[Check] = []
    for key, listed in paths.items():
        plain = [path for path in listed if "{" not in path]
        if not plain:
            continue
        missing = [path for path in plain if path not in found]
        if missing:
            checks.append(
                Check(
                    f"paths {key}",
                    "fail",
                    f"{', '.join(missing)} missing: every session would fail to start",
                    f"mkdir -p {' '.join(missing)} (or remove them from {key})",
                )
            )
        else:
            checks.append(Check(f"paths {key}", "ok", ", ".join(plain)))
    return checks


def judge_scratch(
    path: str | None, facts: PathFacts | None, *, group: str, group_exists: bool
) -> Check:
    """[shared] scratch: a directory of group scratch_group, group-writable and setgid."""
    if path is None:
        return Check("scratch", "skip", "no [shared] scratch configured")
    if not group_exists:
        return Check(
            "scratch",
            "fail",
            f"group {group} ([shared] scratch_group) does not exist",
            f"groupadd {group}",
        )
    if facts is None:
        return Check(
            "scratch",
            "fail",
            f"{path} does not exist: every session would fail to start",
            "systemctl restart hostd (it makes the directory)",
        )
    if not stat.S_ISDIR(facts.mode):
        return Check(
            "scratch", "fail", f"{path} is not a directory", f"rm {path}; systemctl restart hostd"
        )
    if facts.group != group or facts.permissions & SCRATCH_BITS != SCRATCH_BITS:
        return Check(
            "scratch",
            "warn",
            f"{path} is {facts.describe()}: members of {group} cannot all write there",
            f"chgrp {group} {path} && chmod 3775 {path}",
        )
    return Check("scratch", "ok", f"{path} is {facts.describe()}, writable by group {group}")


def judge_proxy_group(
    *, on_socket: bool, group: str, members: tuple[str, ...] | None, hub_users: tuple[str, ...]
) -> Check:
    """[daemon] proxy_group: exists when a session listens on a Unix socket, and holds only
    the identities that act for others (the hub): each member reaches every session's server.
    ``members`` is None when there is no such group."""
    if not on_socket:
        return Check("proxy group", "skip", "no session listens on a Unix socket ({SOCKET})")
    if members is None:
        return Check(
            "proxy group",
            "fail",
            f"group {group} ([daemon] proxy_group) does not exist: every session on a Unix "
            "socket would be refused",
            f"groupadd --system {group} && usermod -aG {group} "
            + (" ".join(hub_users) or "hostd-hub"),
        )
    others = sorted(set(members) - set(hub_users))
    if others:
        return Check(
            "proxy group",
            "warn",
            f"group {group} holds {', '.join(others)}, not in [daemon] act_for_others: "
            "they can reach every user's server",
            f"gpasswd -d {others[0]} {group}",
        )
    held = ", ".join(members) or "nobody yet: no hub can reach the sessions"
    return Check("proxy group", "ok", f"group {group}: {held}")


# -- the sessions' machinery ----------------------------------------------------------------


@dataclass(frozen=True)
class LimitProbe:
    """What a probe unit in jupyter.slice (MemoryMax=PROBE_MEMORY_MAX,
    CPUQuota=PROBE_CPU_PERCENT%) found in its own cgroup.

    ``error`` is set when the unit could not run at all. ``controllers`` says, for "memory"
    and "cpu", whether the unit had a cgroup directory in that controller's hierarchy;
    ``files`` holds the limit files' text (None: the file is not there).
    """

    version: CgroupVersion | None = None
    controllers: Mapping[str, bool] = field(default_factory=dict)
    files: Mapping[str, str | None] = field(default_factory=dict)
    error: str | None = None


def _file_int(files: Mapping[str, str | None], name: str) -> int | None:
    text = files.get(name)
    try:
        return None if text is None else int(text.split()[0])
    except (ValueError, IndexError):
        return None


def judge_cgroup_shape(
    version: CgroupVersion | None, *, allow_swap: bool, ip_address_deny: bool
) -> Check:
    """Which cgroup shape the host has, and what hostd cannot enforce on v1 or hybrid: the
    swap cap (MemorySwapMax=) and IPAddressDeny= (eBPF) exist only on cgroup v2."""
    if version is None:
        return Check("cgroup shape", "skip", "not probed")
    if version == "v2":
        return Check(
            "cgroup shape", "ok", "cgroup v2 (unified): every limit hostd sets is enforced"
        )
    lost = [
        *([] if allow_swap else ["the swap cap (sessions may swap past mem_limit)"]),
        *(
            ["ip_address_deny (169.254.169.254 and the like stay reachable)"]
            if ip_address_deny
            else []
        ),
    ]
    if not lost:
        return Check("cgroup shape", "ok", "cgroup v1 or hybrid: nothing configured needs v2")
    return Check(
        "cgroup shape",
        "warn",
        f"cgroup v1 or hybrid: not enforced here: {'; '.join(lost)}",
        "boot with systemd.unified_cgroup_hierarchy=1 (Debian 12's default)",
    )


def judge_limits(probe: LimitProbe) -> list[Check]:
    """Two checks: the memory and cpu controllers hold jupyter.slice's units (so mem_limit
    is enforced), and the kernel enforces a CPU quota (cpu_limit)."""
    if probe.error is not None:
        detail = f"a probe unit in jupyter.slice did not start: {probe.error}"
        fix = "systemctl status jupyter.slice; journalctl -n 50"
        return [Check("cgroups", "fail", detail, fix), Check("CPU quota", "skip", "not probed")]
    where = f"cgroup {probe.version or 'none'}"
    missing = [name for name in ("memory", "cpu") if not probe.controllers.get(name)]
    if missing:
        cgroups = Check(
            "cgroups",
            "fail",
            f"no {' and '.join(missing)} controller for units in jupyter.slice ({where}): "
            "limits would not be enforced",
            "boot with the controllers enabled (cgroup_enable=memory) or delegated to systemd",
        )
    else:
        memory_file = "memory.max" if probe.version == "v2" else "memory.limit_in_bytes"
        memory = _file_int(probe.files, memory_file)
        if memory == PROBE_MEMORY_MAX:
            cgroups = Check(
                "cgroups",
                "ok",
                f"memory and cpu controllers in jupyter.slice ({where}); MemoryMax= applied",
            )
        else:
            cgroups = Check(
                "cgroups",
                "fail",
                f"MemoryMax={PROBE_MEMORY_MAX} became {memory_file} "
                f"{probe.files.get(memory_file)!r} ({where}): mem_limit would not hold",
                "check that systemd manages the memory controller (systemctl show jupyter.slice)",
            )
    return [cgroups, _judge_quota(probe, where)]


def _judge_quota(probe: LimitProbe, where: str) -> Check:
    if not probe.controllers.get("cpu"):
        return Check(
            "CPU quota", "fail", f"no cpu controller ({where}): cpu_limit cannot be enforced"
        )
    if probe.version == "v2":
        text = probe.files.get("cpu.max")
        parts = (text or "").split()
        quota = int(parts[0]) if parts and parts[0].isdigit() else None
        period = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        shown = "cpu.max"
    else:
        quota, period = (
            _file_int(probe.files, "cpu.cfs_quota_us"),
            _file_int(probe.files, "cpu.cfs_period_us"),
        )
        text = probe.files.get("cpu.cfs_quota_us")
        shown = "cpu.cfs_quota_us"
    if text is None:
        return Check(
            "CPU quota",
            "fail",
            f"the kernel has no CPU bandwidth control ({shown} is missing; CONFIG_CFS_BANDWIDTH): "
            "cpu_limit cannot be enforced",
            "use a kernel built with CONFIG_CFS_BANDWIDTH=y (every Debian and Ubuntu kernel is)",
        )
    if quota is None or not period or round(100 * quota / period) != PROBE_CPU_PERCENT:
        return Check(
            "CPU quota",
            "fail",
            f"CPUQuota={PROBE_CPU_PERCENT}% became {shown} {text.strip()!r} ({where}): "
            "cpu_limit would not hold",
        )
    return Check(
        "CPU quota",
        "ok",
        f"CPUQuota={PROBE_CPU_PERCENT}% enforced by the kernel ({quota} of {period} us)",
    )


def judge_session_env(
    python: str, *, exists: bool, returncode: int | None, output: str, user: str
) -> Check:
    """The sessions' Python imports JupyterLab when run as an ordinary user."""
    label = "session environment"
    if not exists:
        return Check(label, "fail", f"{python} is missing", "run packaging/install.sh again")
    if returncode != 0:
        last = output.strip().splitlines()[-1] if output.strip() else f"exit status {returncode}"
        env = python.rsplit("/", 2)[0]
        return Check(
            label,
            "fail",
            f"{python} -c 'import jupyterlab' as {user} failed: {last}",
            f"{env}/bin/pip install jupyterlab; chmod -R go+rX {env}",
        )
    version = output.strip().splitlines()[-1] if output.strip() else "?"
    return Check(label, "ok", f"{python} imports jupyterlab {version} as {user}")


def judge_hub_user(
    *, installed: bool, user: str, exists: bool, groups: Iterable[str], socket_group: str
) -> Check:
    """The hub's own system user, in the daemon's socket group."""
    if not installed:
        return Check(f"user {user}", "skip", "this version has no hub")
    if not exists:
        return Check(
            f"user {user}",
            "fail",
            "does not exist: hostd-hub.service cannot start",
            "run packaging/install.sh again",
        )
    if socket_group not in set(groups):
        return Check(
            f"user {user}",
            "fail",
            f"not in group {socket_group}: the hub cannot reach the daemon",
            f"usermod -aG {socket_group} {user}; systemctl restart hostd-hub",
        )
    return Check(f"user {user}", "ok", f"in group {socket_group}")


def judge_tls(
    cert: tuple[str, PathFacts | None] | None,
    key: tuple[str, PathFacts | None] | None,
    *,
    hub_user: str,
    self_signed: bool,
) -> Check:
    """The hub's certificate and key (path and lstat each; None: not configured): there, and
    the key readable by the hub's user but nobody else."""
    if cert is None or key is None:
        return Check("TLS", "skip", "the hub serves plain HTTP (no ssl_cert/ssl_key)")
    for path, facts in (cert, key):
        if facts is None:
            return Check(
                "TLS", "fail", f"{path} does not exist: the hub cannot start", "see TLS in README"
            )
    key_path, key_facts = key
    assert key_facts is not None
    fix = f"chown root:{hub_user} {key_path} && chmod 0640 {key_path}"
    if key_facts.permissions & 0o004:
        return Check(
            "TLS",
            "fail",
            f"{key_path} is {key_facts.describe()}: every local user can read the private key",
            fix,
        )
    readable = (key_facts.owner == hub_user and key_facts.permissions & 0o400) or (
        key_facts.group == hub_user and key_facts.permissions & 0o040
    )
    if not readable:
        return Check(
            "TLS", "fail", f"{key_path} is {key_facts.describe()}: {hub_user} cannot read it", fix
        )
    if self_signed:
        return Check(
            "TLS",
            "warn",
            f"{cert[0]} is self-signed (install.sh --self-signed): not for production",
            "see TLS in README",
        )
    return Check("TLS", "ok", f"{cert[0]}, key readable by {hub_user} only")


def judge_acme_certificate(
    path: str,
    not_after: datetime | None,
    *,
    renew_days: float,
    now: datetime,
    last_failure: str | None,
) -> Check:
    """The certificate the hub keeps over ACME (state_dir/acme/cert.pem): its expiry
    (not_after, None: no readable certificate), judged against acme_renew_days; the hub's
    last renewal failure (its last-failure file), if any, says why it is not renewed."""
    why = f"; last failure: {last_failure}" if last_failure else ""
    fix = "journalctl -u hostd-hub (see HTTPS by itself in README)"
    if not_after is None:
        return Check("TLS", "fail", f"no certificate in {path} yet: HTTPS is not served{why}", fix)
    days = (not_after - now) / timedelta(days=1)
    when = f"{not_after:%Y-%m-%d %H:%M} UTC"
    if days <= 0:
        return Check("TLS", "fail", f"the ACME certificate expired on {when}{why}", fix)
    if days < renew_days:
        return Check(
            "TLS",
            "warn",
            f"the ACME certificate expires on {when}, in {days:.0f} days: the hub should have "
            f"renewed it (acme_renew_days = {renew_days:g}){why}",
            fix,
        )
    return Check("TLS", "ok", f"ACME certificate, expires on {when} ({days:.0f} days left){why}")


# -- the report -----------------------------------------------------------------------------


def format_report(checks: Sequence[Check], *, title: str = "hostctl verify") -> str:
    """One aligned line per check (status, name, detail), each failure's or warning's fix
    under it, and the summary."""
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        status = check.status.upper() if check.status in ("fail", "warn") else check.status
        detail = " / ".join(line.strip() for line in check.detail.splitlines() if line.strip())
        lines.append(f"{status:<5} {check.name:<{width}}  {detail}".rstrip())
        if check.fix and check.status in ("fail", "warn"):
            lines.append(f"{'':<5} {'':<{width}}  fix: {check.fix}")
        if check.status in ("fail", "warn"):
            lines.extend(f"{'':<5} {'':<{width}}  | {line}" for line in check.log)
    lines.append(summary(checks, title=title))
    return "\n".join(lines)


def summary(checks: Sequence[Check], *, title: str = "hostctl verify") -> str:
    counts = {
        status: sum(1 for check in checks if check.status == status)
        for status in ("ok", "warn", "fail", "skip")
    }
    ran = len(checks) - counts["skip"]
    notes = [
        f"{counts[s]} {word}" for s, word in (("warn", "warning"), ("skip", "skipped")) if counts[s]
    ]
    tail = f" ({', '.join(notes)})" if notes else ""
    if counts["fail"]:
        return f"{title}: {counts['fail']} of {ran} checks FAILED{tail}"
    return f"{title}: all {ran} checks passed{tail}"


def exit_status(checks: Iterable[Check]) -> int:
    return 1 if any(check.status == "fail" for check in checks) else 0
