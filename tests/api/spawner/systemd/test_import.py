"""Issue 14's one documented step, by effect: seed 002's jupyterhub_config.py lines verbatim
(only spawner_class changed to "hostd"), then `hostctl import` of that file is the daemon's
whole [session] and [commands]: a real JupyterHub (5.x and 6.x) as a non-root user starts a
PAM user's server with every seed setting enforced, and a kernel answers through the proxy.

The daemon's config here is what the real `hostctl import --apply` wrote, nothing typed by hand
(this module's ``daemon`` replaces the conftest's, whose policy is written out).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.spawner.systemd.conftest import (
    BASE,
    HUB_ACCOUNTS,
    PROXY_GROUP,
    SESSION_EXEC,
    SESSION_VENV,
    JupyterHub,
    run,
    seed_002_unit,
)
from tests.api.spawner.systemd.test_jupyterhub import log_in, run_in_kernel, spawn, stop
from tests.hostd.daemon.systemd.conftest import VENV_BIN, Daemon, unit_property, units_left
from tests.seeds import SEED_002_ON_HOSTD

pytestmark = pytest.mark.systemd


@pytest.fixture(scope="module")
def daemon(spawner_paths: None) -> Iterator[Daemon]:
    root = BASE / f"daemon-import-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    # install.sh's layout under a prefix: bin/hostd-session-exec, session/bin/... (the venv
    # test.sh made for sessions).
    prefix = root / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy(SESSION_EXEC, prefix / "bin" / "hostd-session-exec")  # a file, as installed
    (prefix / "session").symlink_to(SESSION_VENV)
    seed = root / "jupyterhub_config.py"
    seed.write_text(SEED_002_ON_HOSTD)
    imported, hub_toml = root / "imported.toml", root / "hub.toml"
    done = run(
        str(VENV_BIN / "hostctl"),
        "import",
        str(seed),
        "--config",
        str(imported),
        "--hub-config",
        str(hub_toml),
        "--hostd-prefix",
        str(prefix),
        "--apply",
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"wrote {imported}; apply: hostctl reload" in done.stdout
    assert not hub_toml.exists()  # nothing of the hub's in seed 002
    run("groupadd", PROXY_GROUP)
    d = Daemon(
        root,
        imported.read_text(),  # [session] and [commands], as hostctl import wrote them
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


def test_seed_002_after_hostctl_import_spawns_with_every_seed_setting(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    user = make_pam_user()
    assert log_in(hub, user) == 302, hub.tail()
    events = spawn(hub, user.name)
    assert events[-1].get("ready"), (events, hub.tail())
    unit = f"jupyter-{user.name}.service"
    expected = seed_002_unit(user.name)
    assert {key: unit_property(unit, key) for key in expected} == expected
    assert asyncio.run(run_in_kernel(hub, user.name, "print(6*7)")) == "42\n"
    stop(hub, user.name)
    assert units_left(f"jupyter-{user.name}") == []
