"""`hostctl export --to z2jh`: hostd's config as a Zero to JupyterHub Helm values file, for a
site that outgrows one machine (hostd/ layer: reads hostd.toml, returns the file's text).

What maps one to one goes into the values (limits, the command, fixed environment, admins,
allowed users, culling, bound paths as hostPath volumes, group profiles as
KubeSpawner.group_overrides); what has no equivalent in a Kubernetes pod, or only a
structural one, is listed in the comment at the top, so nothing is dropped in silence.
Kubernetes is the engine beyond one machine: hostd does not grow a scheduler of its own.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any, Final

import yaml

from hostd.config import DEFAULT_SESSION_CMD, Config, parse_config
from hostd.units import SessionPolicy
from hostd.units.errors import ConfigError
from hostd.units.policy import METADATA_ADDRESS

__all__ = ["CHART_VERSION", "ExportRefused", "export_z2jh", "z2jh_values"]

# The chart version these values are written for and tested against (tests/hostd/cli/data).
CHART_VERSION: Final = "4.4.0"
_WRAPPER: Final = "hostd-session-exec"
_SINGLEUSER: Final = "jupyterhub-singleuser"
# Arguments about where the server listens: KubeSpawner sets the pod's address itself.
_LISTENING: Final = re.compile(r"--(ip|port|ServerApp\.(ip|port|sock|sock_mode|base_url))(=|$)")
# Paths every pod has of its own: never a host directory in a pod.
_POD_OWN: Final = frozenset({"/tmp", "/var/tmp"})  # noqa: S108 (names, not files made)
_WIDTH: Final = 96  # the header comment's lines
_UNITS: Final = (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10))


class ExportRefused(Exception):
    """hostd.toml cannot be exported (missing, not valid): the message says why."""


def _size(size: int) -> str | int:
    """Bytes as KubeSpawner writes them: "2G" where exact (its G is 2**30), else bytes."""
    for suffix, factor in _UNITS:
        if size % factor == 0:
            return f"{size // factor}{suffix}"
    return size


def _volume_name(path: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:50] or "root"
    name, number = f"hostd-{base}", 2
    while name in taken:
        name, number = f"hostd-{base}-{number}", number + 1
    taken.add(name)
    return name


def _command(config: Config, gaps: list[str]) -> list[str] | None:
    """singleuser.cmd from [commands] singleuser (or [session] cmd): the program after
    hostd-session-exec and its arguments, less where it listens; None: the chart's default."""
    return _singleuser_cmd(list(config.commands.get("singleuser", config.session.cmd)), gaps)


def _singleuser_cmd(argv: list[str], gaps: list[str]) -> list[str] | None:
    """A command as a pod's: jupyterhub-singleuser and its options, less where it listens."""
    if argv and Path(argv[0]).name == _WRAPPER:
        argv = argv[1:]
    if not argv or Path(argv[0]).name != _SINGLEUSER:
        if tuple(argv) != DEFAULT_SESSION_CMD:
            gaps.append(
                f"the session command {' '.join(argv)}: a z2jh pod runs jupyterhub-singleuser "
                "(the chart's singleuser.cmd); put its options in singleuser.extraEnv or the image"
            )
        return None
    kept = [arg for arg in argv[1:] if not _LISTENING.match(arg) and "{" not in arg]
    dropped = [arg for arg in argv[1:] if arg not in kept]
    if dropped:
        gaps.append(
            f"the command's {' '.join(dropped)}: structural, KubeSpawner sets where the pod listens"
        )
    return [_SINGLEUSER, *kept]


def _volumes(
    session: SessionPolicy, config: Config, gaps: list[str]
) -> tuple[list[Any], list[Any]]:
    volumes: list[Any] = []
    mounts: list[Any] = []
    taken: set[str] = set()
    scratch = None if config.shared.scratch is None else str(config.shared.scratch)
    listed = [
        *((path, True) for path in session.shared_paths),
        *((path, True) for path in session.readonly_paths),
        *((path, False) for path in session.readwrite_paths),
    ]
    seen: set[str] = set()
    for path, read_only in listed:
        if path in seen:
            continue  # one mount per path: the first list that names it (shared, read-only)
        seen.add(path)
        if path == "/" or "{" in path or path in _POD_OWN:
            gaps.append(
                f"{'read-only' if read_only else 'writable'} path {path}: structural (a pod's "
                "file system is its image's; the home is singleuser.storage)"
            )
            continue
        name = _volume_name(path, taken)
        volumes.append({"name": name, "hostPath": {"path": path, "type": "Directory"}})
        mounts.append({"name": name, "mountPath": path, "readOnly": read_only})
        if path == scratch:
            gaps.append(
                f"[shared] scratch {path} (group {config.shared.scratch_group}): a hostPath "
                "volume; its group and setgid are the node's"
            )
    if volumes:
        gaps.append(
            "hostPath volumes are one node's directories: on more nodes, use a shared volume "
            "(NFS, a ReadWriteMany PersistentVolumeClaim) at the same mountPath"
        )
    return volumes, mounts


def _group_overrides(config: Config, gaps: list[str]) -> dict[str, Any]:
    groups = config.profiles.groups
    overrides: dict[str, Any] = {}
    for index, (group, limits) in enumerate(groups):
        override: dict[str, Any] = {}
        if limits.mem_limit is not None:
            override["mem_limit"] = _size(limits.mem_limit)
        if limits.cpu_limit is not None:
            override["cpu_limit"] = limits.cpu_limit
        # JupyterHub applies overrides in the order of their keys, the last one winning;
        # hostd's first group in file order wins: its key sorts last.
        key = f"{len(groups) - index:03d}-hostd-group-{group}"
        overrides[key] = {"groups": [group], "spawner_override": override}
    if groups:
        gaps.append(
            "group profiles are for JupyterHub's groups now (hostd's were Linux groups): make "
            "them in JupyterHub (hub.config.JupyterHub.load_groups, or an authenticator that "
            "manages groups)"
        )
    for user in config.profiles.users:
        gaps.append(
            f"the profile of user {user}: KubeSpawner has no per-user override; put {user} in "
            "a group of its own"
        )
    return overrides


def _profile_list(config: Config, gaps: list[str]) -> list[dict[str, Any]]:
    """[[profile_list]] as KubeSpawner's profile_list (the same vocabulary: slug,
    display_name, description, default), each choice's limits and command in
    kubespawner_override, its GPUs as the NVIDIA device plugin's resource."""
    profiles = []
    for choice in config.profile_list.choices:
        override: dict[str, Any] = {}
        if choice.mem_limit is not None:
            override["mem_limit"] = _size(choice.mem_limit)
        if choice.cpu_limit is not None:
            override["cpu_limit"] = choice.cpu_limit
        if choice.command is not None:
            command = _singleuser_cmd(list(config.commands[choice.command]), gaps)
            if command is not None:
                override["cmd"] = command
        if choice.gpus:
            override["extra_resource_limits"] = {"nvidia.com/gpu": str(choice.gpus)}
        profile: dict[str, Any] = {"display_name": choice.display_name, "slug": choice.slug}
        if choice.description:
            profile["description"] = choice.description
        if choice.default:
            profile["default"] = True
        if override:
            profile["kubespawner_override"] = override
        profiles.append(profile)
        if choice.groups:
            gaps.append(
                f"[[profile_list]] {choice.slug} is shown to groups {', '.join(choice.groups)} "
                "only: KubeSpawner shows every choice to everyone (make profile_list a "
                "callable in hub.extraConfig to filter by JupyterHub's groups)"
            )
    return profiles


def _no_equivalent(config: Config, gaps: list[str]) -> None:
    session, default = config.session, SessionPolicy(cmd=DEFAULT_SESSION_CMD)
    facts = [
        ("isolate_tmp", "structural: every pod has its own /tmp"),
        ("isolate_devices", "structural: a pod sees no host devices unless given them"),
        (
            "disable_user_sudo",
            "structural: the chart runs the server as uid 1000 without privilege escalation",
        ),
        ("user_workingdir", "the image's working directory (or --notebook-dir in singleuser.cmd)"),
        ("allow_swap", "no equivalent: Kubernetes nodes decide swap"),
        ("oom_policy", "no equivalent: the kernel OOM-kills within the pod's limit"),
        ("unit_extra_properties", "no equivalent: systemd directives"),
        ("max_mem_limit", "no equivalent: users pick sizes with singleuser.profileList"),
        ("max_cpu_limit", "no equivalent: users pick sizes with singleuser.profileList"),
    ]
    for name, why in facts:
        value = getattr(session, name)
        if value != getattr(default, name) and value not in (None, (), {}):
            gaps.append(f"[session] {name} = {value!r}: {why}")
    other = [a for a in session.ip_address_deny if a != METADATA_ADDRESS]
    if other:
        gaps.append(
            f"[session] ip_address_deny {', '.join(other)}: write them as "
            "singleuser.networkPolicy.egress rules"
        )
    if config.auth.admin_groups:
        gaps.append(
            f"[auth] admin_groups {', '.join(config.auth.admin_groups)}: the authenticator's "
            "own (e.g. hub.config.PAMAuthenticator.admin_groups does not apply in a pod)"
        )
    if config.daemon.allowed_groups:
        gaps.append(
            f"[daemon] allowed_groups {', '.join(config.daemon.allowed_groups)}: the "
            "authenticator's own (hub.config.<Authenticator>.allowed_groups)"
        )
    gaps.append(
        "[capacity] memory_share and the admission queue: structural, the Kubernetes "
        "scheduler places pods by their requests (singleuser.memory.guarantee)"
    )
    gaps.append(
        "PAM logins and Linux accounts: structural, pick an authenticator (hub.config) and "
        "singleuser.uid; homes become persistent volumes (singleuser.storage)"
    )


def z2jh_values(config: Config) -> tuple[dict[str, Any], list[str]]:
    """The values for hostd's config, and what has no equivalent (one line each)."""
    session = config.session
    gaps: list[str] = []
    singleuser: dict[str, Any] = {}
    if session.mem_limit is not None:
        singleuser["memory"] = {"limit": _size(session.mem_limit)}
    if session.cpu_limit is not None:
        singleuser["cpu"] = {"limit": session.cpu_limit}
    command = _command(config, gaps)
    if command is not None:
        singleuser["cmd"] = command
    environment = {**session.environment, "SHELL": session.default_shell}
    singleuser["extraEnv"] = dict(sorted(environment.items()))
    profiles = _profile_list(config, gaps)
    if profiles:
        singleuser["profileList"] = profiles
    volumes, mounts = _volumes(session, config, gaps)
    if volumes:
        singleuser["storage"] = {"extraVolumes": volumes, "extraVolumeMounts": mounts}
    # The chart blocks the cloud metadata service by default; say it, as hostd's default.
    singleuser["networkPolicy"] = {
        "egressAllowRules": {"cloudMetadataServer": METADATA_ADDRESS not in session.ip_address_deny}
    }
    hub_config: dict[str, Any] = {}
    authenticator: dict[str, Any] = {}
    if config.auth.admin_users:
        authenticator["admin_users"] = sorted(config.auth.admin_users)
    if config.daemon.allowed_users:
        authenticator["allowed_users"] = sorted(config.daemon.allowed_users)
    if authenticator:
        hub_config["Authenticator"] = authenticator
    overrides = _group_overrides(config, gaps)
    if overrides:
        hub_config["KubeSpawner"] = {"group_overrides": overrides}
    hub: dict[str, Any] = {"concurrentSpawnLimit": config.capacity.max_concurrent_starts}
    if hub_config:
        hub["config"] = hub_config
    idle = config.capacity.idle_timeout_s
    cull: dict[str, Any] = {"enabled": idle > 0}
    if idle > 0:
        cull.update({"timeout": round(idle), "users": False})
    if config.capacity.idle_warning_s and idle > 0:
        gaps.append("[capacity] idle_warning: no equivalent, the culler warns nobody")
    gaps.append(
        "[capacity] idle_cpu_percent: no equivalent, the culler goes by JupyterHub's activity"
    )
    _no_equivalent(config, gaps)
    return {"hub": hub, "singleuser": singleuser, "cull": cull}, gaps


def _load(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExportRefused(f"{path}: no such file (hostctl export reads hostd's config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportRefused(f"cannot read {path}: {exc}") from None
    try:
        return parse_config(text, source=path)
    except ConfigError as exc:
        problems = "; ".join(f"{key}: {message}" for key, message in exc.problems)
        raise ExportRefused(f"{path} does not pass hostctl check-config: {problems}") from None
    except tomllib.TOMLDecodeError as exc:  # parse_config reports it as a ConfigError too
        raise ExportRefused(f"{path} is not valid TOML: {exc}") from None


def export_z2jh(path: Path) -> str:
    """The values file's text for the config at path; ExportRefused if it cannot be read."""
    config = _load(path)
    values, gaps = z2jh_values(config)
    header = [
        f"Zero to JupyterHub (chart {CHART_VERSION}) values, written by `hostctl export --to "
        f"z2jh` from {path}.",
        f"helm upgrade --install jhub jupyterhub/jupyterhub --version {CHART_VERSION} -f THIS_FILE",
        "",
        "No equivalent, or only a structural one (not in the values below):",
        *(f"- {gap}" for gap in gaps),
    ]
    wrapped = [
        part
        for line in header
        for part in (textwrap.wrap(line, _WIDTH, subsequent_indent="  ") or [""])
    ]
    comment = "\n".join(f"# {line}".rstrip() for line in wrapped)
    body = yaml.safe_dump(values, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return f"{comment}\n{body}"
