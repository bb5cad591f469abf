"""One way to start and stop a server per row: raw systemd-run, hostd's API, a JupyterHub.

Every ``spawn`` measures from the request to the first HTTP answer of the server itself
(``.../api`` answering below 500, JupyterHub's own test), so the rows compare the same thing.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.env import (
    _OPENER,
    SINGLEUSER,
    TINY,
    Hostd,
    HostdHub,
    JupyterHub,
    http,
    lab_argv,
    sh,
    unit_cpu_s,
    wait_answers,
)
from tests.loopback import free_port
from units.names import unit_name_for

SPAWN_DEADLINE_S = 240.0  # the bench's own bound; the systems' own timeouts are their defaults


@dataclass
class Spawned:
    user: str
    ok: bool
    seconds: float  # request -> first answer (or -> failure)
    reason: str = ""
    cpu_s: float | None = None  # the server's CPU time when it first answered
    extra: dict[str, Any] = field(default_factory=dict)


class Driver:
    name = ""
    unit_pattern = ""
    # The parts of the last stop, from the system's own log where it tells them (JupyterHub).
    stop_parts: dict[str, float] = {}  # noqa: RUF012 - replaced, never mutated
    cpu_at_ready = True  # read the server's CPU time when it answers (off for N at once)

    def prepare(self, user: str) -> None:
        """Untimed set-up for a user (JupyterHub's user record)."""

    def unit(self, user: str) -> str:
        raise NotImplementedError

    def spawn(self, user: str, t0: float | None = None) -> Spawned:
        raise NotImplementedError

    def stop(self, user: str) -> float:
        raise NotImplementedError

    def measure_cpu(self, spawned: Spawned) -> None:
        if spawned.ok and self.cpu_at_ready:
            spawned.cpu_s = unit_cpu_s(self.unit(spawned.user))


class RawDriver(Driver):
    """(a) The floor: systemd-run of the JupyterLab command with seed 002's unit properties,
    then polling the port every 20 ms until ``/api`` answers.

    ``server`` "lab" is hostd's JupyterLab command, "pip" the same from session-pip (JupyterLab
    as pip installs it); "tiny" Python's http.server (to see a spawn path's own cost without
    JupyterLab's seconds of start); "singleuser" is jupyterhub-singleuser of the same
    environment, as JupyterHub's rows run it, with the variables JupyterHub would pass (its API
    URL a FakeHubAPI's: no hub needed).
    """

    name = "systemd-run"
    unit_pattern = "bench-floor-*"

    def __init__(self, server: str = "lab", hub_api: str = "") -> None:
        self.server = server
        self.hub_api = hub_api  # for singleuser: a FakeHubAPI's URL

    def unit(self, user: str) -> str:
        return f"bench-floor-{user}.service"

    def command(self, user: str, port: int, base: str) -> list[str]:
        if self.server == "tiny":
            return [arg.replace("{PORT}", str(port)) for arg in TINY]
        if self.server == "singleuser":
            hub = {
                "JUPYTERHUB_API_TOKEN": "bench-not-a-secret",
                "JUPYTERHUB_API_URL": self.hub_api,
                "JUPYTERHUB_ACTIVITY_URL": f"{self.hub_api}/users/{user}/activity",
                "JUPYTERHUB_BASE_URL": "/",
                "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
                "JUPYTERHUB_HOST": "",
                "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{base}oauth_callback",
                "JUPYTERHUB_OAUTH_SCOPES": "[]",
                "JUPYTERHUB_OAUTH_ACCESS_SCOPES": "[]",
                "JUPYTERHUB_SERVER_NAME": "",
                "JUPYTERHUB_SERVICE_PREFIX": base,
                "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{base}",
                "JUPYTERHUB_USER": user,
            }
            return [*(f"--setenv={k}={v}" for k, v in hub.items()), SINGLEUSER]
        return lab_argv(port, base, pip=self.server == "pip")

    def spawn(self, user: str, t0: float | None = None) -> Spawned:
        port, base = free_port(), f"/user/{user}/"
        argv = [
            "systemd-run", "--quiet", f"--unit={self.unit(user)}", f"--uid={user}",
            f"--gid={user}", f"--working-directory=/home/{user}", "-p", "Type=exec",
            "-p", "MemoryMax=2G", "-p", "CPUQuota=100%", "-p", "PrivateTmp=yes",
            "-p", "PrivateDevices=yes", "-p", "NoNewPrivileges=yes",
            "-p", "MemoryAccounting=yes", "-p", "CPUAccounting=yes", "-p", "TasksAccounting=yes",
            "-p", "CollectMode=inactive-or-failed", "--setenv=SHELL=/bin/bash",
            *self.command(user, port, base),
        ]  # fmt: skip
        t0 = time.monotonic() if t0 is None else t0
        done = sh(*argv, check=False)
        if done.returncode != 0:
            return Spawned(user, False, time.monotonic() - t0, done.stderr.strip()[-200:])
        ok = wait_answers(f"http://127.0.0.1:{port}{base}api", t0 + SPAWN_DEADLINE_S)
        spawned = Spawned(user, ok, time.monotonic() - t0, "" if ok else "no answer")
        self.measure_cpu(spawned)
        return spawned

    def stop(self, user: str) -> float:
        t0 = time.monotonic()
        sh("systemctl", "stop", self.unit(user), check=False)
        return time.monotonic() - t0


class HostdDriver(Driver):
    """(b) POST /v1/sessions/{user}?wait=true, then the URL it gives answers ``api``."""

    name = "hostd"
    unit_pattern = "jupyter-*.service"

    def __init__(self, hostd: Hostd, body: dict[str, Any] | None = None) -> None:
        self.hostd = hostd
        self.body = body or {}

    def unit(self, user: str) -> str:
        return f"jupyter-{user}.service"

    def spawn(self, user: str, t0: float | None = None) -> Spawned:
        t0 = time.monotonic() if t0 is None else t0
        try:
            status, view = self.hostd.api("POST", f"/v1/sessions/{user}?wait=true", self.body)
        except OSError as exc:
            return Spawned(user, False, time.monotonic() - t0, f"connection: {exc}")
        answered = time.monotonic()
        if status not in (200, 201):
            reason = f"{status} {(view or {}).get('code', '')}"
            return Spawned(user, False, answered - t0, reason)
        ok = wait_answers(f"{view['url']}api", t0 + SPAWN_DEADLINE_S)
        spawned = Spawned(user, ok, time.monotonic() - t0, "" if ok else "no answer")
        spawned.extra["api_answer_s"] = answered - t0
        self.measure_cpu(spawned)
        return spawned

    def stop(self, user: str) -> float:
        t0 = time.monotonic()
        status, body = self.hostd.api("DELETE", f"/v1/sessions/{user}")
        if status != 200:
            raise RuntimeError(f"hostd stop {user}: {status} {body}")
        return time.monotonic() - t0


class HubDriver(Driver):
    """(c), (d), (f): JupyterHub's REST API. POST .../server (202 at once), the progress
    stream until ready or failed, then the server answers ``api`` through the hub's proxy."""

    def __init__(self, hub: JupyterHub | HostdHub, name: str, unit_template: str) -> None:
        self.hub = hub
        self.name = name
        self.unit_template = unit_template
        self.unit_pattern = unit_template.format(user="*")

    def unit(self, user: str) -> str:
        return self.unit_template.format(user=user)

    def prepare(self, user: str) -> None:
        if isinstance(self.hub, JupyterHub):
            self.hub.add_user(user)

    def token_for(self, user: str) -> str:
        """JupyterHub: the bench's service token; hostd-hub: the user's own (see log_in)."""
        if isinstance(self.hub, HostdHub):
            return self.hub.tokens[user]
        return self.hub.token

    def api(self, user: str, method: str, path: str, timeout: float = 60) -> tuple[int, Any]:
        status, payload = http(
            f"{self.hub.url}/hub/api{path}", method, token=self.token_for(user), timeout=timeout
        )
        try:
            return status, json.loads(payload) if payload.strip() else None
        except ValueError:
            return status, payload.decode(errors="replace")

    def progress(self, user: str, timeout: float) -> dict[str, Any]:
        """The last event of user's spawn: ready, failed, or the stream's end."""
        request = urllib.request.Request(f"{self.hub.url}/hub/api/users/{user}/server/progress")  # noqa: S310
        request.add_header("Authorization", f"token {self.token_for(user)}")
        last: dict[str, Any] = {}
        with _OPENER.open(request, timeout=timeout) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                last = json.loads(line[len("data:") :])
                if last.get("ready") or last.get("failed"):
                    break
        return last

    def spawn(self, user: str, t0: float | None = None) -> Spawned:
        t0 = time.monotonic() if t0 is None else t0
        try:
            status, body = self.api(user, "POST", f"/users/{user}/server", SPAWN_DEADLINE_S)
        except OSError as exc:
            return Spawned(user, False, time.monotonic() - t0, f"connection: {exc}")
        if status not in (201, 202):
            return Spawned(user, False, time.monotonic() - t0, f"POST {status}: {body}"[:200])
        try:
            event = self.progress(user, SPAWN_DEADLINE_S)
        except OSError as exc:
            return Spawned(user, False, time.monotonic() - t0, f"progress: {exc}")
        if not event.get("ready"):
            reason = str(event.get("message") or event or "no ready event")
            return Spawned(user, False, time.monotonic() - t0, short_reason(reason))
        ready = time.monotonic()
        ok = wait_answers(f"{self.hub.url}{event['url']}api", t0 + SPAWN_DEADLINE_S)
        spawned = Spawned(user, ok, time.monotonic() - t0, "" if ok else "no answer via proxy")
        spawned.extra["ready_event_s"] = ready - t0
        self.measure_cpu(spawned)
        return spawned

    def stop(self, user: str) -> float:
        log_at = self.hub.log.stat().st_size if isinstance(self.hub, JupyterHub) else None
        t0 = time.monotonic()
        status, body = self.api(user, "DELETE", f"/users/{user}/server", 120)
        if status == 202:  # slower than slow_stop_timeout: wait until it is gone
            while time.monotonic() - t0 < 120:
                _s, model = self.api(user, "GET", f"/users/{user}")
                if not (model or {}).get("servers"):
                    break
                time.sleep(0.05)
        elif status not in (204, 400):  # 400: not running (a failed spawn)
            raise RuntimeError(f"JupyterHub stop {user}: {status} {body}")
        seconds = time.monotonic() - t0
        if isinstance(self.hub, JupyterHub) and log_at is not None:
            self.stop_parts = stop_parts_from_log(self.hub.log, log_at, user)
        return seconds


# JupyterHub's own account of a stop (handlers/base.py: proxy route deleted, then User.stop:
# poll, stop, commits, hooks), and HostdSpawner's of the daemon's part inside it.
_HUB_STOP = re.compile(r"User (\S+) server took ([0-9.]+) seconds to stop")
_HOSTD_STOP = re.compile(r"hostd: (\S+) stopped in ([0-9.]+) s")


def stop_parts_from_log(log: Path, offset: int, user: str) -> dict[str, float]:
    """What the hub's log, from ``offset`` on, says the parts of ``user``'s stop took."""
    with log.open("rb") as stream:
        stream.seek(offset)
        text = stream.read().decode(errors="replace")
    parts: dict[str, float] = {}
    for name, pattern, who in (
        ("hub_stop_s", _HUB_STOP, user),
        ("spawner_stop_s", _HOSTD_STOP, unit_name_for(user)),
    ):
        for found in pattern.finditer(text):
            if found.group(1) == who:
                parts[name] = float(found.group(2))
    return parts


def short_reason(text: str) -> str:
    for marker in ("didn't respond", "did not respond", "timeout", "Timeout", "refused"):
        if marker in text:
            at = text.index(marker)
            return text[max(0, at - 60) : at + 60].strip()
    return text[:120]


def spawn_many(
    driver: Driver, users: list[str], workers: int | None = None
) -> tuple[list[Spawned], float]:
    """All users' spawns at once (one thread each, released together); (spawns, wall)."""
    results: list[Spawned] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(users) + 1)
    t0_box: list[float] = []

    def one(user: str) -> None:
        gate.wait()
        spawned = driver.spawn(user, t0=t0_box[0])
        with lock:
            results.append(spawned)

    threads = [threading.Thread(target=one, args=(u,), daemon=True) for u in users]
    for t in threads:
        t.start()
    t0_box.append(time.monotonic())
    gate.wait()
    for t in threads:
        t.join(SPAWN_DEADLINE_S + 60)
    wall = max((s.seconds for s in results if s.ok), default=0.0)
    return results, wall


def stop_many(driver: Driver, users: list[str], parallel: int = 8) -> None:
    """Untimed clean-up: stop users' servers, a few at a time."""
    queue = collections.deque(users)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                user = queue.popleft()
            with contextlib.suppress(Exception):  # clean-up goes on; units are stopped after
                driver.stop(user)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)


def reasons(spawns: list[Spawned]) -> dict[str, int]:
    """Failure reasons counted, URLs and user names taken out so that alike ones add up."""

    def general(reason: str) -> str:
        reason = re.sub(r"https?://\S+", "<url>", reason)
        return re.sub(r"\b(?:cb|cf|tb|ft|pb|hb)\d{3}[0-9a-f]{4}\b", "<user>", reason)

    return dict(collections.Counter(general(s.reason) for s in spawns if not s.ok))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


__all__ = ["Driver", "HostdDriver", "HubDriver", "RawDriver", "Spawned", "http", "spawn_many"]
