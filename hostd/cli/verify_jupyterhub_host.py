"""`hostctl verify` of install.sh --jupyterhub's mode: gather the facts, let
hostd.cli.verify_jupyterhub judge them (hostd/ layer: the I/O half).

The mode is on when /etc/systemd/system/jupyterhub.service is install.sh's (its first line
says so): an admin's own JupyterHub unit is not judged. It reads unit states, the account
database and files, and runs JupyterHub's Python once (an import); it changes nothing.
"""

from __future__ import annotations

import contextlib
import grp
import pwd
import subprocess
from pathlib import Path
from typing import Final

from hostd.cli.verify import HUB_UNIT, Check, UnitState, parse_systemctl_show
from hostd.cli.verify_jupyterhub import (
    JUPYTERHUB_UNIT,
    JUPYTERHUB_USER,
    JupyterHubFacts,
    judge_jupyterhub,
)
from hostd.config import Config

__all__ = ["UNIT_FILE", "UNIT_MARK", "jupyterhub_checks", "jupyterhub_mode"]

UNIT_FILE: Final = Path("/etc/systemd/system") / JUPYTERHUB_UNIT
# The first line of packaging/systemd/jupyterhub.service.
UNIT_MARK: Final = "# hostd: installed by packaging/install.sh --jupyterhub"
_TIMEOUT_S: Final = 60.0


def jupyterhub_mode(unit_file: Path = UNIT_FILE) -> bool:
    """True when install.sh --jupyterhub installed JupyterHub's unit."""
    try:
        with unit_file.open(encoding="utf-8", errors="replace") as text:
            return text.readline().rstrip("\n") == UNIT_MARK
    except OSError:
        return False


def _units() -> tuple[dict[str, UnitState], int | None]:
    properties = "Id,LoadState,ActiveState,SubState,UnitFileState"
    shown = subprocess.run(
        ["systemctl", "show", "-p", properties, JUPYTERHUB_UNIT, HUB_UNIT],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    restarts = subprocess.run(
        ["systemctl", "show", "-p", "NRestarts", "--value", JUPYTERHUB_UNIT],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    ).stdout.strip()
    return parse_systemctl_show(shown.stdout), int(restarts) if restarts.isdigit() else None


def _groups(user: str) -> frozenset[str] | None:
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return None
    groups = {group.gr_name for group in grp.getgrall() if user in group.gr_mem}
    with contextlib.suppress(KeyError):
        groups.add(grp.getgrgid(account.pw_gid).gr_name)
    return frozenset(groups)


def _runnable(path: str) -> bool:
    """A regular file whose mode lets every user execute it (sessions run as users)."""
    try:
        info = Path(path).stat()
    except OSError:
        return False
    return Path(path).is_file() and bool(info.st_mode & 0o001)


def _spawner(python: Path) -> tuple[bool, str]:
    code = (
        "import jupyterhub, hostd.api.spawner; "
        "print(f'{__import__(\"sys\").prefix}: JupyterHub {jupyterhub.__version__}, HostdSpawner')"
    )
    try:
        result = subprocess.run(
            [str(python), "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
            cwd="/",
        )
    except OSError as exc:
        return False, f"{python}: {exc.strerror}"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return False, lines[-1] if lines else f"exit status {result.returncode}"
    return True, result.stdout.strip()


def jupyterhub_checks(config: Config, prefix: Path) -> list[Check]:
    """The checks of the JupyterHub mode, for the installation under prefix."""
    units, restarts = _units()
    singleuser = config.commands.get("singleuser")
    # hostd-session-exec, then the program it runs (the session environment's).
    programs = [] if singleuser is None else list(singleuser[:2])
    source = config.source
    facts = JupyterHubFacts(
        unit=units.get(JUPYTERHUB_UNIT, UnitState(JUPYTERHUB_UNIT)),
        restarts=restarts,
        hub_unit=units.get(HUB_UNIT, UnitState(HUB_UNIT)),
        user_groups=_groups(JUPYTERHUB_USER),
        socket_group=config.daemon.socket_group,
        proxy_group=config.daemon.proxy_group,
        act_for_others=config.daemon.act_for_others,
        config_file=str(source) if source is not None else "hostd.toml",
        singleuser=singleuser,
        runnable={program: _runnable(program) for program in programs if program.startswith("/")},
        spawner=_spawner(prefix / "jupyterhub" / "bin" / "python"),
    )
    return judge_jupyterhub(facts)
