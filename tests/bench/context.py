"""The run's shared state: settings of the mode, users, and the systems under test, each
started once on first use and stopped by ``close``."""

from __future__ import annotations

import contextlib
import importlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tests.bench.drivers import HostdDriver, HubDriver
from tests.bench.env import (
    ANCHOR_VENV,
    CHP,
    HOSTD_BIN,
    HUB6_VENV,
    SEED_POLICY,
    SESSION_EXEC,
    SINGLEUSER,
    TINY,
    TOP,
    WORK,
    WS_ECHO,
    FakeHubAPI,
    Hostd,
    HostdHub,
    JupyterHub,
    Users,
    lab_argv,
    lab_socket_argv,
    sh,
    stop_units,
    ws_echo_argv,
)

PASSWORD = "bench-Pw-1"  # throwaway accounts in the testbed's overlay


class OurHubDriver(HubDriver):
    """hostd-hub's users log in (PAM, through the daemon) and make a token: untimed."""

    hub: HostdHub

    def prepare(self, user: str) -> None:
        sh("chpasswd", input=f"{user}:{PASSWORD}\n")
        self.hub.log_in(user, PASSWORD)


# A tiny server for JupyterHub's rows: listens where JUPYTERHUB_SERVICE_URL says.
TINY_HUB = (
    "import os, http.server, urllib.parse as u;"
    " a = u.urlparse(os.environ['JUPYTERHUB_SERVICE_URL']);"
    " http.server.ThreadingHTTPServer((a.hostname, a.port),"
    " http.server.SimpleHTTPRequestHandler).serve_forever()"
)
TINY_PREFIX = "ft"  # JupyterHub users whose server is the tiny one

ANCHOR_SPAWNER = f"""
# Seed 002, as written for systemdspawner
c.JupyterHub.spawner_class = 'systemdspawner.SystemdSpawner'
c.SystemdSpawner.default_shell = '/bin/bash'
c.SystemdSpawner.mem_limit = '2G'
c.SystemdSpawner.cpu_limit = 1.0
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = True
c.SystemdSpawner.disable_user_sudo = True
c.SystemdSpawner.unit_extra_properties = {{'RuntimeDirectoryPreserve': 'no'}}
# The same JupyterLab environment as every other row
c.Spawner.cmd = ['{SINGLEUSER}']

def pick_command(spawner):
    if spawner.user.name.startswith('{TINY_PREFIX}'):
        spawner.cmd = ['/usr/bin/python3', '-c', {TINY_HUB!r}]

c.Spawner.pre_spawn_hook = pick_command
"""

HOSTD_SPAWNER = """
# Seed 002's lines; only spawner_class differs from the anchor's
c.JupyterHub.spawner_class = 'hostd'
c.SystemdSpawner.default_shell = '/bin/bash'
c.SystemdSpawner.mem_limit = '2G'
c.SystemdSpawner.cpu_limit = 1.0
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = True
c.SystemdSpawner.disable_user_sudo = True
c.SystemdSpawner.unit_extra_properties = {{'RuntimeDirectoryPreserve': 'no'}}
c.HostdSpawner.hostd_socket = '{socket}'
c.HostdSpawner.hostd_config = '{config}'
"""


def _importable(module: str) -> str | None:
    """None if ``module`` imports; else why not."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        return f"{module} is not in this tree ({exc.name})"
    except Exception as exc:
        return f"{module} does not import: {type(exc).__name__}: {exc}"
    return None


class Context:
    def __init__(self, mode: str, log: Callable[[str], None]) -> None:
        self.mode = mode
        self.quick = mode == "quick"
        self.log = log
        self.reps = 3 if self.quick else 10
        self.true_reps = 5 if self.quick else 20
        self.ns: tuple[int, ...] = (10,) if self.quick else (10, 20, 50)
        self.tiny_n = 100
        self.cores = psutil.cpu_count() or 1
        self.users = Users()
        self.data: dict[str, Any] = {}
        self.only: set[str] = set()  # --only: the rows asked for (empty: all)
        self._hostd: Hostd | None = None
        self._jupyterhub_account: str | None = None
        self._hubs: dict[str, JupyterHub] = {}
        self._broken: dict[str, str] = {}
        self._fake_hub: FakeHubAPI | None = None
        WORK.mkdir(parents=True, exist_ok=True)
        WORK.chmod(0o755)
        sh("groupadd", "-f", "hostd")
        # Sessions on Unix sockets (the proxy rows'): the hub reaches them through this group.
        sh("groupadd", "-f", "--system", "hostd-proxy")
        SESSION_EXEC.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TOP / "packaging" / "hostd-session-exec", SESSION_EXEC)
        SESSION_EXEC.chmod(0o755)
        shutil.copy(TOP / "tests" / "bench" / "ws_echo.py", WS_ECHO)
        WS_ECHO.chmod(0o644)

    # -- the systems under test -------------------------------------------------------------

    def fake_hub_api(self) -> str:
        if self._fake_hub is None:
            self._fake_hub = FakeHubAPI()
        return self._fake_hub.url

    def wanted(self, key: str) -> bool:
        return not self.only or key in self.only

    def hostd(self) -> Hostd:
        if self._hostd is None:
            session = {**SEED_POLICY, "unit_extra_properties": {"RuntimeDirectoryPreserve": "no"}}
            commands = {
                "tiny": TINY,
                "socket": lab_socket_argv(),  # the proxy rows' server (bench_proxy)
                "wsecho": ws_echo_argv(),  # the "proxy ws" row's server (bench_proxy)
                "wsechoport": ws_echo_argv(on_port=True),  # "proxy small lean"'s direct
                "pip": lab_argv("{PORT}", "{BASE_URL}", pip=True),
                "singleuser": [str(SESSION_EXEC), SINGLEUSER, "--ip=127.0.0.1", "--port={PORT}"],
            }
            # The two identities that act for other users: row c's hub, row d's JupyterHub.
            others = ("hostd-hub-bench", self.jupyterhub_account())
            hostd = Hostd(WORK / "hostd", session, commands, act_for_others=others)
            hostd.start()
            self._hostd = hostd
            hostd.api("GET", "/v1/sessions")
            time.sleep(1.0)
            self.data["hostd_idle_rss"] = hostd.rss_mib()
            self.data["hostd_idle_rss_pss"] = hostd.pss_mib()
        return self._hostd

    def hostd_driver(self, body: dict[str, Any] | None = None) -> HostdDriver:
        return HostdDriver(self.hostd(), body)

    def _hub(self, key: str, make: Callable[[], Any]) -> Any:
        if key in self._broken:
            raise RuntimeError(self._broken[key])
        if key not in self._hubs:
            try:
                hub = make()
                hub.start()
            except Exception as exc:
                self._broken[key] = f"{type(exc).__name__}: {exc}"
                raise
            self._hubs[key] = hub
            time.sleep(1.0)
            self.data[f"{key}_idle_rss"] = hub.rss_mib()
            self.data[f"{key}_idle_rss_pss"] = hub.pss_mib()
            if isinstance(hub, JupyterHub):
                self.data[f"{key}_idle_proxy_rss"] = hub.proxy_rss_mib()
        return self._hubs[key]

    def anchor(self) -> HubDriver:
        """(f) JupyterHub 6 + systemdspawner 1.0.2, as root (systemdspawner requires it)."""
        if not (ANCHOR_VENV / "bin" / "jupyterhub").exists() or not CHP.exists():
            raise RuntimeError("the anchor's JupyterHub is not installed: run packaging/bench.sh")
        hub = self._hub(
            "anchor", lambda: JupyterHub(ANCHOR_VENV, WORK / "anchor", ANCHOR_SPAWNER, None)
        )
        return HubDriver(hub, "JupyterHub 6 + systemdspawner", "jupyter-{user}-singleuser.service")

    def spawner_unavailable(self) -> str | None:
        return _importable("hostd.api.spawner")

    def jupyterhub_account(self) -> str:
        """Row d's JupyterHub runs as this account, in group hostd (made once)."""
        if self._jupyterhub_account is None:
            self._jupyterhub_account = self.users.make("jh")
            sh("usermod", "-aG", "hostd", self._jupyterhub_account)
        return self._jupyterhub_account

    def spawner_hub(self) -> HubDriver:
        """(d) JupyterHub 6 + HostdSpawner, as an unprivileged user in group hostd."""

        def make() -> JupyterHub:
            hostd = self.hostd()
            name = self.jupyterhub_account()
            config = HOSTD_SPAWNER.format(socket=hostd.socket, config=hostd.config)
            home = WORK / "hub-d"
            return JupyterHub(HUB6_VENV, home, config, name)

        hub = self._hub("spawner", make)
        return HubDriver(hub, "JupyterHub 6 + HostdSpawner", "jupyter-{user}.service")

    def our_hub_unavailable(self) -> str | None:
        return _importable("hostd.api.hub.cli") or (
            None if (HOSTD_BIN / "hostd-hub").exists() else "hostd-hub is not installed in the venv"
        )

    def our_hub(self) -> OurHubDriver:
        """(c) hostd-hub, as its own system user in group hostd; users log in with PAM."""

        def make() -> HostdHub:
            hostd = self.hostd()
            pam = Path("/etc/pam.d/hostd")
            if not pam.exists():
                shutil.copy(TOP / "packaging" / "pam.d" / "hostd", pam)
            sh("systemctl", "start", "systemd-user-sessions.service", check=False)  # no nologin
            name = "hostd-hub-bench"
            sh("useradd", "--system", "--user-group", "--groups", "hostd,hostd-proxy",
               "--no-create-home",
               "--home-dir", str(WORK / "hub-c"), "--shell", "/usr/sbin/nologin", name,
               check=False)  # fmt: skip
            return HostdHub(WORK / "hub-c", hostd, name)

        hub = self._hub("ourhub", make)
        return OurHubDriver(hub, "hostd-hub", "jupyter-{user}.service")

    # -- end ----------------------------------------------------------------------------------

    def close(self) -> None:
        for hub in self._hubs.values():
            with contextlib.suppress(Exception):
                hub.stop()
        if self._hostd is not None:
            with contextlib.suppress(Exception):
                for view in (self._hostd.api("GET", "/v1/sessions")[1] or {})["sessions"]:
                    self._hostd.api("DELETE", f"/v1/sessions/{view['user']}")
            self._hostd.stop()
        if self._fake_hub is not None:
            self._fake_hub.close()
        stop_units("jupyter-*")
        stop_units("bench-*")
        self.users.remove_all()
        shutil.rmtree(WORK, ignore_errors=True)
        shutil.rmtree(Path("/run/hostd-bench"), ignore_errors=True)
