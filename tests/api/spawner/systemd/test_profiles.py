"""[[profile_list]] through a real JupyterHub (5.x and 6.x) and HostdSpawner, inside a real
systemd: JupyterHub's spawn page shows the choices the daemon gives the user (options_form),
a start with user_options {"profile": slug} gets the choice's MemoryMax and CPUQuota (the
unit and the kernel's cgroup), and a hidden slug fails the spawn with the daemon's words."""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.spawner.systemd.conftest import (
    BASE,
    DAEMON_POLICY,
    HUB_ACCOUNTS,
    PROXY_GROUP,
    JupyterHub,
    PamUser,
    http,
    run,
)
from tests.api.spawner.systemd.test_jupyterhub import logged_in_opener, server_model, stop
from tests.hostd.daemon.systemd.conftest import Daemon, unit_property

pytestmark = pytest.mark.systemd

TINY_BYTES = 400 * 2**20
CHOICES = """
[[profile_list]]
slug = "tiny"
display_name = "Tiny: 400 MB"
mem_limit = "400M"
cpu_limit = 0.5

[[profile_list]]
slug = "standard"
display_name = "Standard: 2 GB"
default = true

[[profile_list]]
slug = "staff"
display_name = "Staff"
groups = ["root"]
"""


@pytest.fixture(scope="module")
def daemon(spawner_paths: None) -> Iterator[Daemon]:
    """conftest's, with choices (the other spawner tests run without any)."""
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    run("groupadd", PROXY_GROUP)
    d = Daemon(
        root,
        DAEMON_POLICY + CHOICES,
        act_for_others=tuple(HUB_ACCOUNTS.values()),
        proxy_group=PROXY_GROUP,
    )
    d.config.chmod(0o644)
    d.start()
    yield d
    d.terminate()
    shutil.rmtree(d.socket.parent, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    run("groupdel", PROXY_GROUP, check=False)


def logged_in(hub: JupyterHub, user: PamUser) -> urllib.request.OpenerDirector:
    status, opener = logged_in_opener(hub, user)
    assert status == 302, hub.tail()
    return opener


def kernel_memory_limit(unit: str) -> int:
    group = unit_property(unit, "ControlGroup").lstrip("/")
    return int(Path("/sys/fs/cgroup/memory", group, "memory.limit_in_bytes").read_text())


def spawn_with(hub: JupyterHub, user: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    answer = hub.api("POST", f"/users/{user}/server", options)
    if answer.status == 400:  # refused before JupyterHub answered 202
        return [{"failed": True, "message": answer.json()["message"]}]
    assert answer.status in (201, 202), (answer.status, answer.body, hub.tail())
    return hub.progress(user)


def test_the_spawn_page_offers_the_users_choices(hub: JupyterHub, make_pam_user: Any) -> None:
    user = make_pam_user()
    opener = logged_in(hub, user)
    page = http(f"{hub.url}/hub/spawn/{user.name}", opener=opener).body.decode()
    assert '<fieldset id="hostd-profiles">' in page, page[:2000]
    assert 'value="tiny">' in page and 'value="standard" checked>' in page
    assert 'value="staff"' not in page  # only root's group may see it
    assert "400.0M memory · 0.5 CPU" in page


def test_user_options_start_the_chosen_profile_with_its_limits(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    user = make_pam_user()
    assert hub.api("POST", f"/users/{user.name}").status in (201, 409)
    events = spawn_with(hub, user.name, {"profile": "tiny"})
    assert events[-1].get("ready"), (events, hub.tail())
    unit = f"jupyter-{user.name}.service"
    assert unit_property(unit, "MemoryMax") == str(TINY_BYTES)
    assert unit_property(unit, "CPUQuotaPerSecUSec") == "500ms"
    assert kernel_memory_limit(unit) == TINY_BYTES
    stop(hub, user.name)


def test_a_hidden_profile_fails_the_spawn_with_the_daemons_words(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    user = make_pam_user()
    assert hub.api("POST", f"/users/{user.name}").status in (201, 409)
    events = spawn_with(hub, user.name, {"profile": "staff"})
    assert events[-1].get("failed"), (events, hub.tail())
    assert "no profile staff to choose (the choices: tiny, standard)" in events[-1]["message"]
    assert server_model(hub, user.name) is None
    assert unit_property(f"jupyter-{user.name}.service", "LoadState") == "not-found"
