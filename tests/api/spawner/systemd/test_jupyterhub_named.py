"""HostdSpawner with JupyterHub's named servers (allow_named_servers), in a real JupyterHub 6
inside a real systemd: two servers of one PAM user, each its own unit in the user's slice, each
answering through JupyterHub's proxy at /user/<name>/<server>/, stopped leaving nothing."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.spawner.systemd.conftest import (
    BASE,
    DAEMON_POLICY,
    HUB_ACCOUNTS,
    HUB_VENVS,
    PROXY_GROUP,
    JupyterHub,
    add_user,
    http,
    remove_user,
    run,
)
from tests.hostd.daemon.systemd.conftest import Daemon, unit_property, units_left

pytestmark = pytest.mark.systemd

VERSION = "jupyterhub6"
NAMED_POLICY = DAEMON_POLICY.replace("[commands]", "named_server_limit = 2\n\n[commands]", 1)
NAMED_HUB = """
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 2
"""


@pytest.fixture(scope="module")
def named_daemon(spawner_paths: None) -> Iterator[Daemon]:
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    run("groupadd", "-f", PROXY_GROUP)
    d = Daemon(
        root, NAMED_POLICY, act_for_others=tuple(HUB_ACCOUNTS.values()), proxy_group=PROXY_GROUP
    )
    d.config.chmod(0o644)
    d.start()
    yield d
    d.terminate()
    shutil.rmtree(d.socket.parent, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    run("groupdel", PROXY_GROUP, check=False)


@pytest.fixture(scope="module")
def named_hub(named_daemon: Daemon) -> Iterator[JupyterHub]:
    name = HUB_ACCOUNTS[VERSION]
    home = BASE / name
    home.mkdir(mode=0o700)
    add_user(name, groups=f"hostd,shadow,{PROXY_GROUP}", home=home)
    shutil.chown(home, name, name)
    jupyterhub = JupyterHub(VERSION, name, home, named_daemon)
    jupyterhub.config.write_text(jupyterhub.config.read_text() + NAMED_HUB)
    try:
        jupyterhub.start()
        yield jupyterhub
    finally:
        jupyterhub.stop()
        remove_user(name)
        shutil.rmtree(home, ignore_errors=True)


def progress(hub: JupyterHub, path: str, timeout: float = 90) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{hub.url}/hub/api{path}/progress")  # noqa: S310
    request.add_header("Authorization", f"token {hub.token}")
    events = []
    with urllib.request.urlopen(request, timeout=timeout) as stream:  # noqa: S310 (http only)
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data:"):
                events.append(json.loads(line[len("data:") :]))
                if events[-1].get("ready") or events[-1].get("failed"):
                    break
    return events


def test_two_named_servers_of_one_user_through_jupyterhub(
    named_hub: JupyterHub, make_pam_user: Any
) -> None:
    assert HUB_VENVS[VERSION].exists()
    hub = named_hub
    user = make_pam_user().name
    assert hub.api("POST", f"/users/{user}").status in (201, 409)
    for server in ("one", "two"):
        answer = hub.api("POST", f"/users/{user}/servers/{server}")
        assert answer.status in (201, 202), (answer.status, answer.body, hub.tail())
        events = progress(hub, f"/users/{user}/servers/{server}")
        assert events[-1].get("ready"), (events, hub.tail())
    servers = hub.api("GET", f"/users/{user}").json()["servers"]
    assert sorted(servers) == ["one", "two"]
    for server in ("one", "two"):
        unit = f"jupyter-{user}:{server}.service"
        assert unit_property(unit, "Slice") == f"jupyter-{user}.slice"
        assert unit_property(unit, "ActiveState") == "active"
        status = http(f"{hub.url}/user/{user}/{server}/api/status", token=hub.token)
        assert status.status == 200, (status.status, status.body, hub.tail())
    # The user's total share, once, whatever the count of servers.
    assert unit_property(f"jupyter-{user}.slice", "MemoryMax") == str(2 * 1024**3)
    for server in ("one", "two"):
        answer = hub.api("DELETE", f"/users/{user}/servers/{server}")
        assert answer.status in (202, 204), (answer.status, answer.body)
    deadline = time.monotonic() + 30
    while units_left(f"jupyter-{user}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert units_left(f"jupyter-{user}") == []
