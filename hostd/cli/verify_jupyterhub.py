"""`hostctl verify`'s judgements of install.sh --jupyterhub's mode (hostd/ layer, pure).

In that mode JupyterHub (``jupyterhub.service``, its own user) serves the port instead of
hostd-hub, with HostdSpawner. What must hold for a spawn to work: the unit runs and is not
restart-looping, hostd-hub is not fighting it for the port, JupyterHub's user is in the
daemon's socket group, ``proxy_group`` and ``shadow`` (PAM) and named in ``act_for_others``,
``[commands] singleuser`` names programs that are there, and HostdSpawner imports in
JupyterHub's environment. hostd.cli.verify_jupyterhub_host gathers the facts; nothing here
opens a file or runs a command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from hostd.cli.verify import HUB_UNIT, Check, UnitState

__all__ = [
    "JUPYTERHUB_UNIT",
    "JUPYTERHUB_USER",
    "PAM_GROUP",
    "JupyterHubFacts",
    "judge_jupyterhub",
]

JUPYTERHUB_UNIT: Final = "jupyterhub.service"
JUPYTERHUB_USER: Final = "jupyterhub"
# PAMAuthenticator's pam_unix reads /etc/shadow itself when it runs as a user in this group.
PAM_GROUP: Final = "shadow"
_LOGS: Final = f"journalctl -u {JUPYTERHUB_UNIT} -n 50"


@dataclass(frozen=True)
class JupyterHubFacts:
    """What hostd.cli.verify_jupyterhub_host found on the machine."""

    unit: UnitState
    restarts: int | None  # systemd's NRestarts: automatic restarts since the last manual start
    hub_unit: UnitState  # hostd-hub.service, which must not run beside it
    user_groups: frozenset[str] | None  # None: no such account
    socket_group: str
    proxy_group: str
    act_for_others: tuple[str, ...]
    config_file: str
    singleuser: tuple[str, ...] | None  # [commands] singleuser; None: not set
    runnable: Mapping[str, bool]  # each program of singleuser: a file every user may execute
    spawner: tuple[bool, str]  # HostdSpawner imports in JupyterHub's environment; what it said


def judge_jupyterhub(facts: JupyterHubFacts) -> list[Check]:
    """Every check of the JupyterHub mode, in report order."""
    return [
        _judge_unit(facts.unit, facts.restarts),
        _judge_hub_unit(facts.hub_unit),
        _judge_user(facts),
        _judge_singleuser(facts),
        _judge_spawner(facts.spawner),
    ]


def _judge_unit(unit: UnitState, restarts: int | None) -> Check:
    label = f"unit {JUPYTERHUB_UNIT}"
    state = f"{unit.active_state} ({unit.sub_state}), {unit.unit_file_state or 'unknown'}"
    if unit.load_state != "loaded":
        return Check(label, "fail", "not installed", "run packaging/install.sh --jupyterhub again")
    if unit.sub_state == "auto-restart" or (restarts or 0) > 0:
        return Check(
            label,
            "fail",
            f"{state}: restart-looping (systemd restarted it {restarts or 0} times)",
            f"see why: {_LOGS}; once fixed: systemctl restart {JUPYTERHUB_UNIT}",
        )
    if unit.active_state != "active":
        return Check(label, "fail", state, f"systemctl start {JUPYTERHUB_UNIT}; then {_LOGS}")
    if unit.unit_file_state != "enabled":
        return Check(label, "warn", f"{state}: not started at boot", "systemctl enable jupyterhub")
    return Check(label, "ok", state)


def _judge_hub_unit(unit: UnitState) -> Check:
    label = f"unit {HUB_UNIT}"
    if unit.active_state in ("active", "activating", "reloading"):
        return Check(
            label,
            "fail",
            f"{unit.active_state} beside {JUPYTERHUB_UNIT}: two hubs for one port",
            f"systemctl disable --now {HUB_UNIT}",
        )
    state = unit.active_state or "inactive"
    return Check(label, "ok", f"{state}: {JUPYTERHUB_UNIT} serves instead")


def _judge_user(facts: JupyterHubFacts) -> Check:
    label = "JupyterHub's user"
    user = JUPYTERHUB_USER
    if facts.user_groups is None:
        return Check(label, "fail", f"no account {user}", "run packaging/install.sh --jupyterhub")
    needed = (facts.socket_group, facts.proxy_group, PAM_GROUP)
    missing = [group for group in needed if group not in facts.user_groups]
    if missing:
        return Check(
            label,
            "fail",
            f"{user} is not in group {', '.join(missing)} (needs {', '.join(needed)})",
            f"usermod -aG {','.join(missing)} {user}; systemctl restart {JUPYTERHUB_UNIT}",
        )
    if user not in facts.act_for_others:
        return Check(
            label,
            "fail",
            f"{user} is not in [daemon] act_for_others of {facts.config_file}: "
            "it could start a server only for itself",
            f"hostctl config add-item daemon.act_for_others {user}; hostctl reload daemon",
        )
    return Check(label, "ok", f"{user} in groups {', '.join(needed)}; acts for others")


def _judge_singleuser(facts: JupyterHubFacts) -> Check:
    label = "JupyterHub's singleuser"
    if facts.singleuser is None:
        return Check(
            label,
            "fail",
            f"[commands] singleuser is not set in {facts.config_file}: every spawn is refused",
            "run packaging/install.sh --jupyterhub again (it writes it)",
        )
    absent = [program for program, ok in facts.runnable.items() if not ok]
    if absent:
        return Check(
            label,
            "fail",
            f"{', '.join(absent)} missing or not executable by users: every spawn fails",
            "run packaging/install.sh --jupyterhub again "
            "(it installs jupyterhub into the session environment)",
        )
    return Check(label, "ok", " ".join(facts.runnable))


def _judge_spawner(spawner: tuple[bool, str]) -> Check:
    imports, said = spawner
    label = "JupyterHub's environment"
    if not imports:
        return Check(
            label,
            "fail",
            f"HostdSpawner does not import: {said}",
            "run packaging/install.sh --jupyterhub again",
        )
    return Check(label, "ok", said)
