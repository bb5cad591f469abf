"""hostd.config.daemon: [daemon], hostd's own keys, each checked; min_uid from /etc/login.defs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.config import FALLBACK_MIN_UID, DaemonConfig, parse_config, read_uid_min
from hostd.units.errors import ConfigError
from tests.hostd.config.samples import keys_of, problems_of


def test_daemon_defaults() -> None:
    daemon = DaemonConfig()
    assert daemon.socket == Path("/run/hostd/hostd.sock")
    assert daemon.socket_group == "hostd"
    assert daemon.socket_mode == 0o660
    assert daemon.state_dir == Path("/var/lib/hostd")
    assert daemon.runtime_dir == Path("/run/hostd")
    assert daemon.min_uid is None
    assert daemon.resolved_min_uid == FALLBACK_MIN_UID == 1000
    assert daemon.allowed_groups == ()
    assert daemon.port_range == (20000, 29999)
    assert daemon.start_timeout_s == 60.0
    assert daemon.stop_timeout_s == 10.0
    assert daemon.base_url_prefix == "/user/"
    assert daemon.log_level == "info"


def test_every_daemon_key_is_read_and_normalised() -> None:
    config = parse_config(
        """
        [daemon]
        socket = "/run/lab/api.sock"
        socket_group = "lab-admins"
        state_dir = "/srv/hostd/state"
        runtime_dir = "/run/lab"
        min_uid = 2000
        allowed_groups = ["students", "domain users"]
        port_range = [30000, 30100]
        start_timeout = 120
        stop_timeout = 2.5
        base_url_prefix = "/lab/"
        log_level = "debug"
        """
    )
    daemon = config.daemon
    assert daemon.socket == Path("/run/lab/api.sock")
    assert daemon.socket_group == "lab-admins"
    assert daemon.state_dir == Path("/srv/hostd/state")
    assert daemon.runtime_dir == Path("/run/lab")
    assert daemon.min_uid == daemon.resolved_min_uid == 2000
    assert daemon.allowed_groups == ("students", "domain users")
    assert daemon.port_range == (30000, 30100)
    assert daemon.start_timeout_s == 120.0
    assert isinstance(daemon.start_timeout_s, float)
    assert daemon.stop_timeout_s == 2.5
    assert daemon.base_url_prefix == "/lab/"
    assert daemon.log_level == "debug"
    # stop_timeout is also the units' TimeoutStopSec=.
    assert config.session.stop_timeout_usec == 2_500_000
    # min_uid is not counted: unset, it is resolved to a value too.
    assert len(config.changed_options()) == 10
    assert "daemon.min_uid" not in config.changed_options()


def test_base_url_for_follows_the_prefix() -> None:
    assert DaemonConfig().base_url_for("alice") == "/user/alice/"
    assert DaemonConfig(base_url_prefix="/").base_url_for("alice") == "/alice/"
    # Escaped as JupyterHub's url_escape_path does, so the hub and hostd agree.
    assert DaemonConfig().base_url_for("host$") == "/user/host%24/"


def test_a_daemon_config_made_in_code_checks_itself() -> None:
    with pytest.raises(ConfigError) as caught:
        DaemonConfig(socket=Path("run/x"), socket_mode=0o666, port_range=(2, 1))
    assert [key for key, _ in caught.value.problems] == [
        "daemon.socket",
        "daemon.socket_mode",
        "daemon.port_range",
    ]
    assert "every local user" in caught.value.problems[1][1]


def test_socket_mode_is_not_configurable() -> None:
    assert problems_of("[daemon]\nsocket_mode = 0o666") == [
        (
            "daemon.socket_mode",
            "not configurable: the socket is always 0660 (root and socket_group)",
        )
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("socket", "1"),
        ("socket", '"/run//hostd.sock"'),
        ("socket_group", "''"),
        ("socket_group", "7"),
        ("state_dir", '"-/var/lib/hostd"'),
        ("runtime_dir", "[]"),
        ("min_uid", "-1"),
        ("min_uid", "4294967295"),
        ("min_uid", "1000.0"),
        ("allowed_groups", '["ok", 1]'),
        ("port_range", "[20000]"),
        ("port_range", "[20000, 20000]"),
        ("port_range", "[true, 20000]"),
        ("port_range", "[1023, 2000]"),
        ("start_timeout", "0"),
        ("start_timeout", "nan"),
        ("start_timeout", "inf"),
        ("start_timeout", "86401"),
        ("stop_timeout", '"10s"'),
        ("base_url_prefix", '"user/"'),
        ("base_url_prefix", '"/user/../"'),
        ("log_level", '"INFO"'),
        ("log_level", "1979-05-27T07:32:00Z"),
    ],
)
def test_bad_daemon_values(key: str, value: str) -> None:
    assert keys_of(f"[daemon]\n{key} = {value}") == [f"daemon.{key}"]


DEBIAN_LOGIN_DEFS = """\
#
# Min/max values for automatic uid selection in useradd(8)
#
UID_MIN			 1000
UID_MAX			60000
# System accounts
#SYS_UID_MIN		  100
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DEBIAN_LOGIN_DEFS, 1000),
        ("UID_MIN 500\n", 500),
        ("  UID_MIN\t\t2000  \n", 2000),
        ('UID_MIN "1500"\n', 1500),
        ("UID_MIN 0x3e8\n", 1000),
        ("UID_MIN 01750\n", 1000),
        ("UID_MIN 1000\nUID_MIN 5000\n", 5000),  # a later line wins, as in shadow's getdef
        ("UID_MIN 1000 # the first login uid\n", 1000),
        ("# UID_MIN 500\n", None),
        ("#UID_MIN 500\n", None),
        ("SYS_UID_MIN 100\nUID_MINIMUM 7\n", None),
        ("UID_MIN\n", None),
        ("UID_MIN lots\n", None),
        ("UID_MIN -5\n", None),
        ("UID_MIN 0\n", None),
        ("UID_MIN 4294967295\n", None),
        ("UID_MIN 08\n", None),
        ("UID_MIN ١٠٠٠\n", None),  # Arabic-Indic digits: not C's
        ("", None),
    ],
)
def test_read_uid_min(text: str, expected: int | None) -> None:
    assert read_uid_min(text) == expected


def test_min_uid_comes_from_login_defs_unless_set() -> None:
    assert parse_config("", login_defs="UID_MIN 500\n").daemon.min_uid == 500
    assert parse_config("", login_defs="# nothing\n").daemon.min_uid == FALLBACK_MIN_UID
    assert parse_config("[daemon]\nmin_uid = 3000", login_defs="UID_MIN 500").daemon.min_uid == 3000
