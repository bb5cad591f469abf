"""What the hostd.config tests share: sample files, and the problems a text gives."""

from __future__ import annotations

import pytest

from hostd.config import parse_config
from hostd.units.errors import ConfigError

__all__ = ["FULL_DEFAULT_TOML", "SEED_TOML", "keys_of", "problems_of"]

# Every key with its default value: what `parse_config("")` gives, written out.
FULL_DEFAULT_TOML = """\
[daemon]
socket = "/run/hostd/hostd.sock"
socket_group = "hostd"
state_dir = "/var/lib/hostd"
runtime_dir = "/run/hostd"
# min_uid = 1000              # unset: UID_MIN from /etc/login.defs, else 1000
allowed_groups = []           # empty: any account at or above min_uid
port_range = [20000, 29999]
start_timeout = 60            # seconds a started session has to answer on its port
stop_timeout = 10             # seconds from SIGTERM to SIGKILL (TimeoutStopSec=)
base_url_prefix = "/user/"    # a session's base_url is prefix + name + "/"
log_level = "info"

[session]
cmd = ["/opt/hostd/session/bin/jupyter", "lab", "--no-browser", "--ServerApp.sock={SOCKET}",
       "--ServerApp.sock_mode=0660", "--ServerApp.base_url={BASE_URL}"]
# mem_limit = "2G"            # unset: no limit
# cpu_limit = 1.0             # unset: no limit
isolate_tmp = false
isolate_devices = false
disable_user_sudo = false
# user_workingdir = "/home/{USERNAME}"   # unset: the account's home
readonly_paths = []
readwrite_paths = []
shared_paths = []
default_shell = "/bin/bash"
environment = {}
allowed_environment = ["JUPYTERHUB_*"]
# max_mem_limit = "4G"        # unset: a request may only ask for less than mem_limit
# max_cpu_limit = 2.0
oom_policy = "continue"
allow_swap = false
ip_address_deny = ["169.254.169.254"]
unit_extra_properties = {}
gpus = 0
"""

# Seed 002's SystemdSpawner settings, verbatim but for Python → TOML syntax.
SEED_TOML = """\
[session]
default_shell = '/bin/bash'
mem_limit = '2G'
cpu_limit = 1.0
isolate_tmp = true
isolate_devices = true
disable_user_sudo = true
unit_extra_properties = {'RuntimeDirectoryPreserve' = 'no'}
user_workingdir = '/shared/users/{USERNAME}'
readonly_paths = ['/opt/shared-data']
readwrite_paths = ['/tmp', '/shared/notebook-outputs']
"""


def problems_of(text: str, **kwargs: object) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def keys_of(text: str) -> list[str]:
    return [key for key, _ in problems_of(text)]
