"""SessionManager.policy: GET /v1/policy from the daemon's Config, and nothing secret in it.

Only the Config is read: no systemd and no store are touched, so none is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hostd.api.wire import policy_to_dict
from hostd.config import parse_config
from hostd.daemon.sessions import SessionManager
from hostd.units.values import PolicyView

CONFIG = """
[session]
cmd = ["/opt/hostd/session/bin/jupyter-lab", "--port={PORT}"]
isolate_tmp = true
disable_user_sudo = true
readonly_paths = ["/srv/data"]
unit_extra_properties = { TasksMax = 512 }
environment = { SITE_NAME = "admin-only-value" }
mem_limit = "1G"
max_mem_limit = "4G"

[commands]
singleuser = ["/opt/hostd/bin/hostd-session-exec", "/opt/hostd/session/bin/jupyterhub-singleuser"]
lab = ["/opt/hostd/session/bin/jupyter-lab"]

[auth]
pam_service = "hostd-secret-stack"
"""


async def policy_of(text: str, source: Path | None) -> PolicyView:
    config = parse_config(text, source=source, login_defs="UID_MIN 1000\n")
    none: Any = None
    return await SessionManager(config, none, none).policy()


async def test_the_policy_is_the_sessions_sandbox_the_command_names_and_the_limits() -> None:
    policy = await policy_of(CONFIG, Path("/etc/hostd/hostd.toml"))
    assert policy.config_file == "/etc/hostd/hostd.toml"
    assert (policy.isolate_tmp, policy.isolate_devices, policy.disable_user_sudo) == (
        True,
        False,
        True,
    )
    assert policy.readonly_paths == ("/srv/data",)
    assert policy.unit_extra_properties == {"TasksMax": 512}
    assert policy.commands == ("lab", "singleuser")
    assert (policy.mem_limit_bytes, policy.max_mem_limit_bytes) == (1024**3, 4 * 1024**3)


async def test_it_holds_no_command_line_environment_or_pam_setting() -> None:
    text = json.dumps(policy_to_dict(await policy_of(CONFIG, None)))
    for secretish in ("admin-only-value", "hostd-secret-stack", "jupyter-lab", "session-exec"):
        assert secretish not in text


async def test_a_daemon_on_its_defaults_names_no_file() -> None:
    policy = await policy_of("", None)
    assert (policy.config_file, policy.commands, policy.isolate_tmp) == (None, (), False)
