"""`hostctl verify` and `hostctl check-config`: gather the facts, let hostd.cli.verify judge them
(hostd/ layer: the I/O half; every verdict is in hostd.cli.verify).

What it does to the machine: reads files and unit states (a few times over some seconds, to
see a unit that restarts over and over), asks the daemon GET /v1/health,
runs the session environment's Python as ``nobody``, and starts one short-lived probe unit in
jupyter.slice (``hostd-verify-<random>.service``: ``sleep`` with a memory limit and a CPU
quota) to read what the kernel made of them; the probe is stopped before it returns. It never
changes a setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import secrets
import stat
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hostd.cgroups.reader import CgroupReader
from hostd.cli.verify import (
    DAEMON_UNITS,
    HUB_UNIT,
    PROBE_CPU_PERCENT,
    PROBE_MEMORY_MAX,
    Check,
    LimitProbe,
    PathFacts,
    UnitState,
    judge_acme_certificate,
    judge_cgroup_shape,
    judge_config,
    judge_daemon_answer,
    judge_hub_user,
    judge_limits,
    judge_pam,
    judge_paths,
    judge_proxy_group,
    judge_scratch,
    judge_session_env,
    judge_socket,
    judge_tls,
    judge_units,
    parse_systemctl_show,
)
from hostd.cli.verify_gpus import gpu_checks
from hostd.cli.verify_jupyterhub_host import jupyterhub_checks, jupyterhub_mode
from hostd.cli.verify_programs import ProgramFacts, judge_command
from hostd.cli.verify_restarts import (
    JOURNAL_LINES,
    RESTARTING_UNITS,
    WATCH_S,
    judge_restart_loop,
    restart_looping,
    settled,
)
from hostd.config import Config, load_config, parse_config
from hostd.units import SLICE, listens_on_socket
from hostd.units.errors import ConfigError, HostdError
from hostd.units.programs import programs_of, session_path, shebang_programs

__all__ = [
    "HUB_CONFIG",
    "PREFIX",
    "SELF_SIGNED_DROPIN",
    "check_config",
    "check_hub_config",
    "config_checks",
    "path_facts",
    "probe_limits",
    "program_checks",
    "program_facts",
    "verify",
    "watch_units",
]

PREFIX: Final = Path("/opt/hostd")
HUB_USER: Final = "hostd-hub"
PAM_DIR: Final = Path("/etc/pam.d")
HUB_CONFIG: Final = Path("/etc/hostd/hub.toml")
# Written by install.sh --self-signed: --ssl-cert/--ssl-key on the hub's command line.
SELF_SIGNED_DROPIN: Final = Path("/etc/systemd/system/hostd-hub.service.d/self-signed.conf")
SELF_SIGNED: Final = (Path("/etc/hostd/tls/hub.crt"), Path("/etc/hostd/tls/hub.key"))
UNPRIVILEGED: Final = "nobody"
_TIMEOUT_S: Final = 60.0


def _run(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False, **options
    )


def path_facts(path: Path, *, follow: bool = False) -> PathFacts | None:
    """lstat (follow: stat) of path with owner and group names; None if it does not exist."""
    try:
        st = path.stat() if follow else path.lstat()
    except OSError:
        return None
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return PathFacts(path=str(path), mode=st.st_mode, owner=owner, group=group)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _load(path: Path) -> tuple[Config, Check]:
    """The config and its check; on problems, the defaults (so the other checks still run)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return parse_config(""), judge_config(str(path), description=None, problems=exc.problems)
    where = str(config.source or f"{path} (missing: every default)")
    return config, judge_config(where, description=config.describe(), problems=())


# How deep "#!" lines are followed (a script whose interpreter is a script...): execve's own
# limit is 4; two covers env and a venv's python.
_SHEBANG_DEPTH: Final = 2


def _directories(path: str) -> tuple[PathFacts, ...]:
    """Every directory a user passes through to reach path: those the path names and those its
    symbolic links resolve to (stat, links followed), root first, each once."""
    seen: dict[str, PathFacts] = {}
    for written in (Path(path), Path(os.path.realpath(path))):
        for directory in reversed(written.parents):
            if str(directory) not in seen:
                facts = path_facts(directory, follow=True)
                if facts is not None:
                    seen[str(directory)] = facts
    return tuple(seen.values())


def _resolve(name: str, search_path: Sequence[str]) -> str | None:
    """Where exec finds name: itself if it has a slash, else the first executable file on
    search_path (as execvp(3) and sh's exec look)."""
    if "/" in name:
        return name
    for directory in search_path:
        candidate = Path(directory) / name
        try:
            st = candidate.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return str(candidate)
    return None


def _head(path: str) -> bytes:
    try:
        with Path(path).open("rb") as file:
            return file.read(256)
    except OSError:
        return b""


def program_facts(
    name: str, search_path: Sequence[str], *, interpreter_of: str = "", depth: int = 0
) -> list[ProgramFacts]:
    """What a session's exec of name meets: the file, the directories above it, and (for a
    script) its interpreter's, each as ProgramFacts. Only stat(2) and a read of the first
    line: no process is started."""
    path = _resolve(name, search_path)
    if path is None:
        return [ProgramFacts(name, None, None, interpreter_of=interpreter_of)]
    target = path_facts(Path(path), follow=True)
    pip = Path(path).parent / "pip"
    found = [
        ProgramFacts(
            name,
            path,
            target,
            _directories(path) if target is not None else (),
            interpreter_of=interpreter_of,
            pip=str(pip) if pip.is_file() else None,
        )
    ]
    if target is not None and stat.S_ISREG(target.mode) and depth < _SHEBANG_DEPTH:
        for interpreter in shebang_programs(_head(path)):
            found += program_facts(interpreter, search_path, interpreter_of=path, depth=depth + 1)
    return found


def program_checks(config: Config) -> list[Check]:
    """One check per configured command ([session] cmd, each [commands] entry): every program
    it runs (the wrapper, the program after it, their interpreters) runnable by every user."""
    search_path = session_path(config.session.environment)
    commands = {"session.cmd": config.session.cmd} | {
        f"commands.{name}": argv for name, argv in config.commands.items()
    }
    return [
        judge_command(
            where,
            [facts for name in programs_of(argv) for facts in program_facts(name, search_path)],
            search_path=search_path,
        )
        for where, argv in commands.items()
    ]


def config_checks(config: Config) -> list[Check]:
    """What the config names on this machine: programs, bound paths, the scratch directory,
    the GPUs' device nodes."""
    session = config.session
    # Templates ({USERNAME}) are per user; judge_paths leaves them out.
    bound = {
        "session.shared_paths": session.shared_paths,
        "session.readonly_paths": session.readonly_paths,
        "session.readwrite_paths": tuple(
            path for path in session.readwrite_paths if Path(path) != config.shared.scratch
        ),
    }
    existing = [path for paths in bound.values() for path in paths if Path(path).exists()]
    scratch = config.shared.scratch
    on_socket = any(listens_on_socket(argv) for argv in (session.cmd, *config.commands.values()))
    return [
        *program_checks(config),
        *judge_paths(bound, existing),
        judge_scratch(
            None if scratch is None else str(scratch),
            None if scratch is None else path_facts(scratch),
            group=config.shared.scratch_group,
            group_exists=_group_exists(config.shared.scratch_group),
        ),
        judge_proxy_group(
            on_socket=on_socket,
            group=config.daemon.proxy_group,
            members=_members(config.daemon.proxy_group),
            hub_users=config.daemon.act_for_others,
        ),
        *gpu_checks(config.gpus),
    ]


def _members(group: str) -> tuple[str, ...] | None:
    """The accounts in a group (listed in /etc/group, or having it as primary group); None
    when there is no such group."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return None
    primary = {account.pw_name for account in pwd.getpwall() if account.pw_gid == entry.gr_gid}
    return tuple(sorted(set(entry.gr_mem) | primary))


def check_config(path: Path) -> list[Check]:
    """`hostctl check-config`: the file, and what it names on this machine."""
    config, checked = _load(path)
    if checked.status == "fail":
        return [checked]
    return [checked, *config_checks(config)]


_SHOWN: Final = (
    "Id,LoadState,ActiveState,SubState,UnitFileState,NRestarts,ActiveEnterTimestampMonotonic"
)
_LOOK_EVERY_S: Final = 0.25


def watch_units(names: Sequence[str] = RESTARTING_UNITS) -> dict[str, list[UnitState]]:
    """Look at each unit every _LOOK_EVERY_S until every one is looping or settled
    (hostd.cli.verify_restarts), or WATCH_S passed: the looks, oldest first. A unit that has
    run for long without a restart costs one look."""
    looks: dict[str, list[UnitState]] = {name: [] for name in names}
    deadline = time.monotonic() + WATCH_S
    while True:
        shown = _run(["systemctl", "show", "-p", _SHOWN, *names])
        if shown.returncode != 0:
            return looks
        # systemd's ...TimestampMonotonic is CLOCK_MONOTONIC, as time.monotonic_ns() is.
        now_us = time.monotonic_ns() // 1000
        units = parse_systemctl_show(shown.stdout)
        for name in names:
            if name in units:
                looks[name].append(units[name])
        if time.monotonic() >= deadline or all(
            not seen or restart_looping(seen) or settled(seen[-1], now_us)
            for seen in looks.values()
        ):
            return looks
        time.sleep(_LOOK_EVERY_S)


def _journal(unit: str) -> list[str]:
    """The unit's own last lines (its processes' output, not systemd's lines about it)."""
    shown = _run(
        ["journalctl", f"_SYSTEMD_UNIT={unit}", "-n", str(JOURNAL_LINES), "-o", "cat", "--no-pager"]
    )
    return shown.stdout.splitlines() if shown.returncode == 0 else []


def _units(hub_installed: bool, looks: dict[str, list[UnitState]]) -> list[Check]:
    names = [*DAEMON_UNITS, HUB_UNIT]
    shown = _run(["systemctl", "show", "-p", _SHOWN, *names])
    if shown.returncode != 0:
        reason = shown.stderr.strip() or f"exit status {shown.returncode}"
        return [Check("units", "fail", f"systemctl show failed: {reason}", "is systemd PID 1?")]
    checks = judge_units(parse_systemctl_show(shown.stdout), hub_installed=hub_installed)
    for name, seen in looks.items():
        if name == HUB_UNIT and not hub_installed:
            continue
        looping = judge_restart_loop(seen, [], hub_config=str(HUB_CONFIG))
        if looping is not None:  # judged again with the journal's word on why
            looping = judge_restart_loop(seen, _journal(name), hub_config=str(HUB_CONFIG))
            assert looping is not None
            checks = [looping if check.name == looping.name else check for check in checks]
    return checks


async def _health(socket_path: str) -> dict[str, Any]:
    # Imported here: the API client is not needed for check-config.
    from hostd.api.client import HostdClient

    async with HostdClient(socket_path) as client:
        return await asyncio.wait_for(client.health(), timeout=_TIMEOUT_S)


def _daemon_answer(socket_path: str) -> Check:
    try:
        health = asyncio.run(_health(socket_path))
    except (HostdError, TimeoutError, OSError) as exc:
        message = exc.message if isinstance(exc, HostdError) else str(exc) or type(exc).__name__
        return judge_daemon_answer(socket_path, None, message)
    return judge_daemon_answer(socket_path, health, None)


def probe_limits() -> LimitProbe:
    """Start a unit in jupyter.slice with a memory limit and a CPU quota, read what its cgroup
    files say while it runs, and stop it."""
    unit = f"hostd-verify-{secrets.token_hex(4)}.service"
    started = _run(
        [
            "systemd-run",
            "--quiet",
            "--collect",
            f"--unit={unit}",
            f"--slice={SLICE}",
            "--property=MemoryAccounting=yes",
            "--property=CPUAccounting=yes",
            f"--property=MemoryMax={PROBE_MEMORY_MAX}",
            f"--property=CPUQuota={PROBE_CPU_PERCENT}%",
            "/bin/sleep",
            "120",
        ]
    )
    if started.returncode != 0:
        return LimitProbe(error=started.stderr.strip() or f"exit status {started.returncode}")
    try:
        shown = _run(["systemctl", "show", "-p", "ControlGroup", "--value", unit])
        return _read_limits(shown.stdout.strip())
    finally:
        _run(["systemctl", "stop", unit])


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _read_limits(control_group: str) -> LimitProbe:
    reader = CgroupReader.load()
    mounts, version = reader.mounts, reader.version
    if version == "v2":
        directory = None if mounts.v2 is None else mounts.v2.path_of(control_group)
        present = directory is not None and Path(directory).is_dir()
        files = {
            name: _read(None if directory is None else f"{directory}/{name}")
            for name in ("memory.max", "cpu.max")
        }
        # A v2 cgroup lists the controllers it has (enabled in its parent) in cgroup.controllers.
        listed = _read(f"{directory}/cgroup.controllers") if present else None
        available = (listed or "").split()
        controllers = {name: name in available for name in ("memory", "cpu")}
        return LimitProbe(version=version, controllers=controllers, files=files)
    directories: dict[str, str | None] = {}
    for controller in ("memory", "cpu"):
        mount = mounts.v1_mount(controller)
        path = None if mount is None else mount.path_of(control_group)
        directories[controller] = path if path is not None and Path(path).is_dir() else None
    memory_dir, cpu_dir = directories["memory"], directories["cpu"]
    files = {
        "memory.limit_in_bytes": _read(memory_dir and f"{memory_dir}/memory.limit_in_bytes"),
        "cpu.cfs_quota_us": _read(cpu_dir and f"{cpu_dir}/cpu.cfs_quota_us"),
        "cpu.cfs_period_us": _read(cpu_dir and f"{cpu_dir}/cpu.cfs_period_us"),
    }
    controllers = {name: directory is not None for name, directory in directories.items()}
    return LimitProbe(version=version, controllers=controllers, files=files)


def _session_env(prefix: Path) -> Check:
    python = prefix / "session" / "bin" / "python"
    user = UNPRIVILEGED
    options: dict[str, Any] = {"cwd": "/", "env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}}
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        account = None
    if os.geteuid() == 0 and account is not None:
        options |= {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
    if not python.exists():
        return judge_session_env(str(python), exists=False, returncode=None, output="", user=user)
    code = "import jupyterlab; print(jupyterlab.__version__)"
    result = _run([str(python), "-I", "-c", code], **options)
    output = result.stdout if result.returncode == 0 else result.stderr
    return judge_session_env(
        str(python), exists=True, returncode=result.returncode, output=output, user=user
    )


def _hub_installed(prefix: Path) -> bool:
    try:
        return _run([str(prefix / "venv" / "bin" / "hostd-hub"), "--help"]).returncode == 0
    except OSError:
        return False


def _hub_user(installed: bool, socket_group: str) -> Check:
    try:
        account = pwd.getpwnam(HUB_USER)
    except KeyError:
        return judge_hub_user(
            installed=installed, user=HUB_USER, exists=False, groups=(), socket_group=socket_group
        )
    groups = {g.gr_name for g in grp.getgrall() if HUB_USER in g.gr_mem}
    with contextlib.suppress(KeyError):
        groups.add(grp.getgrgid(account.pw_gid).gr_name)
    return judge_hub_user(
        installed=installed, user=HUB_USER, exists=True, groups=groups, socket_group=socket_group
    )


def _pam(service: str) -> Check:
    path = PAM_DIR / service
    try:
        text: str | None = path.read_text(errors="replace")
    except OSError:
        text = None
    return judge_pam(str(path), text)


def _hub_tls(installed: bool) -> list[Check]:
    """The hub's config ([hub] in hub.toml) and its certificate and key."""
    if not installed:
        return []
    return check_hub_config(HUB_CONFIG)


def check_hub_config(path: Path) -> list[Check]:
    """hub.toml at path, and the certificate and key it (or install.sh --self-signed) names."""
    from hostd.api.hub.settings import load_hub_config  # the hub's own rules; only when it is there

    self_signed = SELF_SIGNED_DROPIN.exists()
    try:
        hub = load_hub_config(path)
    except ConfigError as exc:
        return [judge_config(str(path), description=None, problems=exc.problems, hub=True)]
    scheme = "https" if self_signed or hub.tls else "http"
    where = f"{scheme}://{hub.ip or '*'}:{hub.port}/"
    checks = [judge_config(str(path), description=f"serves {where}", problems=(), hub=True)]
    if hub.acme and not self_signed:
        checks.append(_acme_certificate(hub.acme_dir, hub.acme_renew_days))
        return checks
    cert, key = SELF_SIGNED if self_signed else (hub.ssl_cert, hub.ssl_key)
    checks.append(
        judge_tls(
            None if cert is None else (str(cert), path_facts(cert)),
            None if key is None else (str(key), path_facts(key)),
            hub_user=HUB_USER,
            self_signed=self_signed,
        )
    )
    return checks


def _acme_certificate(acme_dir: Path, renew_days: float) -> Check:
    """Read the hub's ACME certificate and its last failure (root reads the hub's 0600 files)."""
    from hostd.api.hub.acme import CERT_FILE
    from hostd.api.hub.certs import read_cert_info
    from hostd.api.hub.renewal import LAST_FAILURE

    path = acme_dir / CERT_FILE
    try:
        not_after: datetime | None = read_cert_info(path.read_bytes()).not_after
    except (OSError, ValueError):
        not_after = None
    try:
        last_failure: str | None = (acme_dir / LAST_FAILURE).read_text(errors="replace").strip()
    except OSError:
        last_failure = None
    return judge_acme_certificate(
        str(path),
        not_after,
        renew_days=renew_days,
        now=datetime.now(UTC),
        last_failure=last_failure or None,
    )


def verify(config_path: Path, *, prefix: Path = PREFIX) -> list[Check]:
    """Every check of an installation, in the order the report shows them."""
    # The units are watched for a few seconds (a restart loop shows only over time) while
    # the other checks run.
    with ThreadPoolExecutor(max_workers=1) as pool:
        watching = pool.submit(watch_units)
        config, config_check = _load(config_path)
        hub_installed = _hub_installed(prefix)
        socket_path = str(config.daemon.socket)
        group = config.daemon.socket_group
        checks = [judge_socket(socket_path, path_facts(Path(socket_path)), group=group)]
        checks.append(_daemon_answer(socket_path))
        checks.append(_pam(config.auth.pam_service))
        probe = probe_limits()
        checks.extend(judge_limits(probe))
        checks.append(
            judge_cgroup_shape(
                probe.version,
                allow_swap=config.session.allow_swap,
                ip_address_deny=bool(config.session.ip_address_deny),
            )
        )
        checks.append(_session_env(prefix))
        if config_check.status != "fail":
            checks.extend(config_checks(config))
        checks.append(_hub_user(hub_installed, group))
        checks.extend(_hub_tls(hub_installed))
        looks = watching.result()
    checks = [config_check, *_units(hub_installed, looks), *checks]
    if jupyterhub_mode():  # install.sh --jupyterhub: JupyterHub serves instead of hostd-hub
        checks = [check for check in checks if check.name != f"unit {HUB_UNIT}"]
        checks.extend(jupyterhub_checks(config, prefix))
    return checks
