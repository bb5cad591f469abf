"""hostd.config: the TOML file is read once, checked whole, and every problem is reported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hostd.config import (
    DEFAULT_SESSION_CMD,
    FALLBACK_MIN_UID,
    Config,
    DaemonConfig,
    load_config,
    parse_config,
    read_uid_min,
)
from hostd.units import SessionPolicy
from hostd.units.errors import ConfigError

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
cmd = ["/opt/hostd/session/bin/jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
       "--port={PORT}", "--ServerApp.base_url={BASE_URL}"]
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


# --- defaults -------------------------------------------------------------------------------


def test_an_empty_file_is_every_default() -> None:
    config = parse_config("")
    assert config.daemon == DaemonConfig(min_uid=FALLBACK_MIN_UID)
    assert config.session == SessionPolicy(cmd=DEFAULT_SESSION_CMD)
    assert config.source is None
    assert config.changed_options() == ()


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


def test_the_default_session_cmd() -> None:
    assert parse_config("").session.cmd == (
        "/opt/hostd/session/bin/jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port={PORT}",
        "--ServerApp.base_url={BASE_URL}",
    )


def test_the_full_default_file_equals_no_file() -> None:
    assert parse_config(FULL_DEFAULT_TOML) == parse_config("")


def test_the_session_keys_are_systemdspawners_names() -> None:
    keys = {
        "cmd", "mem_limit", "cpu_limit", "isolate_tmp", "isolate_devices", "disable_user_sudo",
        "user_workingdir", "readonly_paths", "readwrite_paths", "shared_paths", "default_shell",
        "environment", "allowed_environment", "max_mem_limit", "max_cpu_limit",
        "unit_extra_properties",
        # hostd's own: safe defaults systemdspawner does not have
        "oom_policy", "allow_swap", "ip_address_deny",
    }  # fmt: skip
    session_fields = {field.name for field in dataclasses.fields(SessionPolicy)}
    assert session_fields - {"stop_timeout_usec"} == keys
    assert problems_of("[session]\nstop_timeout_usec = 1") == [
        ("session.stop_timeout_usec", "set from [daemon] stop_timeout (in seconds)")
    ]


# --- values ---------------------------------------------------------------------------------


def test_seed_002_settings_load_into_the_policy() -> None:
    session = parse_config(SEED_TOML).session
    assert session == SessionPolicy(
        cmd=DEFAULT_SESSION_CMD,
        default_shell="/bin/bash",
        mem_limit=2147483648,
        cpu_limit=1.0,
        isolate_tmp=True,
        isolate_devices=True,
        disable_user_sudo=True,
        unit_extra_properties={"RuntimeDirectoryPreserve": "no"},
        user_workingdir="/shared/users/{USERNAME}",
        readonly_paths=("/opt/shared-data",),
        readwrite_paths=("/tmp", "/shared/notebook-outputs"),
    )
    assert session.mem_limit == 2 * 1024**3


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


def test_sizes_in_bytes_and_with_units() -> None:
    session = parse_config(
        '[session]\nmem_limit = 1073741824\ncpu_limit = 2\nmax_mem_limit = "1.5G"\n'
        'max_cpu_limit = "4"'
    ).session
    assert session.mem_limit == 1024**3
    assert session.max_mem_limit == 1536 * 1024**2
    assert session.cpu_limit == 2.0
    assert session.max_cpu_limit == 4.0


def test_base_url_for_follows_the_prefix() -> None:
    assert DaemonConfig().base_url_for("alice") == "/user/alice/"
    assert DaemonConfig(base_url_prefix="/").base_url_for("alice") == "/alice/"
    # Escaped as JupyterHub's url_escape_path does, so the hub and hostd agree.
    assert DaemonConfig().base_url_for("host$") == "/user/host%24/"


def test_config_is_frozen_and_its_repr_compact() -> None:
    config = parse_config(SEED_TOML, source=Path("/etc/hostd/hostd.toml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.source = None  # type: ignore[misc]
    text = repr(config)
    assert text.startswith("<Config /etc/hostd/hostd.toml: 9 options changed from the defaults")
    assert "mem_limit 2G, cpu_limit 1" in text
    assert "\n" not in text
    assert len(text) < 300
    assert "1 option changed" in parse_config("[daemon]\nlog_level = 'debug'").describe()


def test_a_daemon_config_made_in_code_checks_itself() -> None:
    with pytest.raises(ConfigError) as caught:
        DaemonConfig(socket=Path("run/x"), socket_mode=0o666, port_range=(2, 1))
    assert [key for key, _ in caught.value.problems] == [
        "daemon.socket",
        "daemon.socket_mode",
        "daemon.port_range",
    ]
    assert "every local user" in caught.value.problems[1][1]


# --- problems -------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    text = """
    mem_limit = "2G"
    [deamon]
    [daemon]
    sockt = "/run/hostd.sock"
    port_range = [80, 70000]
    start_timeout = -1
    stop_timeout = true
    log_level = "loud"
    min_uid = 0
    allowed_groups = "staff"
    base_url_prefix = "/user"
    socket = "run/hostd.sock"
    socket_group = "bad:group"
    [session]
    mem_limt = "1G"
    mem_limit = "lots"
    cpu_limit = 1
    max_cpu_limit = 0.5
    cmd = ["jupyter"]
    isolate_tmp = "yes"
    unit_extra_properties = {Foo = 1, MemoryHigh = "x", TasksMax = 10}
    environment = {API_TOKEN = "x"}
    readonly_paths = "/opt/data"
    """
    assert keys_of(text) == [
        "mem_limit",
        "deamon",
        "daemon.sockt",
        "daemon.port_range",
        "daemon.start_timeout",
        "daemon.stop_timeout",
        "daemon.log_level",
        "daemon.min_uid",
        "daemon.allowed_groups",
        "daemon.base_url_prefix",
        "daemon.socket",
        "daemon.socket_group",
        "session.mem_limt",
        "session.mem_limit",
        "session.cmd",
        "session.isolate_tmp",
        "session.unit_extra_properties.Foo",
        "session.unit_extra_properties.MemoryHigh",
        "session.environment",
        "session.readonly_paths",
        "session.max_cpu_limit",
    ]


def test_the_messages_say_what_is_wrong() -> None:
    problems = dict(
        problems_of(
            """
            [daemon]
            port_range = [80, 70000]
            start_timeout = -1
            log_level = "loud"
            base_url_prefix = "/user"
            [session]
            mem_limit = "lots"
            cmd = ["jupyter"]
            unit_extra_properties = {MemoryHigh = "x", User = "root", MemoryMax = "1G"}
            """
        )
    )
    assert problems["daemon.port_range"] == (
        "invalid port range [80, 70000]: need 1024 <= low < high <= 65535"
    )
    assert problems["daemon.start_timeout"].endswith("not -1")
    assert problems["daemon.log_level"] == "expected one of debug, info, warning, error, not 'loud'"
    assert "starts and ends with '/'" in problems["daemon.base_url_prefix"]
    # The option's name is the key already: not repeated in front of the message.
    assert problems["session.mem_limit"].startswith("invalid size 'lots'")
    assert problems["session.cmd"] == "cmd[0]: invalid path 'jupyter': must be absolute"
    assert problems["session.unit_extra_properties.MemoryHigh"].startswith("invalid size 'x'")
    assert "set by hostd" in problems["session.unit_extra_properties.User"]
    assert "set mem_limit instead" in problems["session.unit_extra_properties.MemoryMax"]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[daemon]\nsockt = '/x'", "daemon.sockt", "unknown key (did you mean socket?)"),
        ("[deamon]", "deamon", "unknown section (did you mean daemon?)"),
        ("[sesion]", "sesion", "unknown section (did you mean session?)"),
        ("[hub]", "hub", "unknown section: the sections are [daemon] and [session]"),
        ("mem_limit = '2G'", "mem_limit", "unknown key: belongs in [session]"),
        ("[session]\nstop_timeout = 5", "session.stop_timeout", "unknown key: belongs in [daemon]"),
        ("[daemon]\ncpu_limit = 1", "daemon.cpu_limit", "unknown key: belongs in [session]"),
        ("[daemon]\nzzz = 1", "daemon.zzz", "unknown key"),
        (
            "[session]\nmem_limt = '1G'",
            "session.mem_limt",
            "unknown key (did you mean mem_limit or max_mem_limit?)",
        ),
        ('[session."a b"]', 'session."a b"', "unknown key"),
        ("daemon = 5", "daemon", "expected a table [daemon], not 5"),
    ],
)
def test_unknown_and_misplaced_keys(text: str, key: str, message: str) -> None:
    assert problems_of(text) == [(key, message)]


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


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cmd", "[]"),
        ("cmd", '"/bin/jupyter lab"'),
        ("cmd", '["/bin/jupyter", "--port={port}"]'),
        ("mem_limit", "0"),
        ("mem_limit", "true"),
        ("cpu_limit", "0"),
        ("cpu_limit", "1979-05-27"),
        ("isolate_devices", "1"),
        ("user_workingdir", '"home/{USERNAME}"'),
        ("readwrite_paths", '["/srv/{HOME}"]'),
        ("shared_paths", '["relative"]'),
        ("default_shell", '"bash"'),
        ("environment", "{LANG = 1}"),
        ("environment", '{SHELL = "/bin/sh"}'),
        ("environment", '"LANG=C"'),
        ("allowed_environment", '["*"]'),
        ("max_mem_limit", '"lots"'),
        ("max_cpu_limit", "-1"),
        ("unit_extra_properties", '"PrivateTmp=yes"'),
        ("unit_extra_properties", "[1]"),
    ],
)
def test_bad_session_values(key: str, value: str) -> None:
    assert keys_of(f"[session]\n{key} = {value}") == [f"session.{key}"]


def test_caps_are_checked_against_the_limits() -> None:
    assert problems_of("[session]\nmax_mem_limit = '4G'") == [
        (
            "session.max_mem_limit",
            "max_mem_limit needs mem_limit: a session that asks for nothing would be unlimited",
        )
    ]
    assert keys_of("[session]\nmem_limit = '4G'\nmax_mem_limit = '2G'") == ["session.max_mem_limit"]
    # A cap is not judged against a limit that did not parse: one problem, not two.
    assert keys_of("[session]\nmem_limit = 'x'\nmax_mem_limit = '2G'") == ["session.mem_limit"]
    assert keys_of("[session]\ncpu_limit = 'x'\nmax_cpu_limit = 2") == ["session.cpu_limit"]
    # ... and other problems still come with a cap problem.
    assert keys_of("[daemon]\nlog_level = 1\n[session]\ncpu_limit = 2\nmax_cpu_limit = 1") == [
        "daemon.log_level",
        "session.max_cpu_limit",
    ]


def test_unit_extra_properties_problems_are_keyed_by_directive() -> None:
    problems = problems_of(
        '[session.unit_extra_properties]\nTasksMax = 512\nMemoryLimit = "1G"\n"No Such" = 1'
    )
    assert problems == [
        ("session.unit_extra_properties.MemoryLimit", "unknown directive 'MemoryLimit' "
         "(did you mean MemoryMax?)"),
        ('session.unit_extra_properties."No Such"', "unknown directive 'No Such'"),
    ]  # fmt: skip
    good = parse_config("[session.unit_extra_properties]\nTasksMax = 512\nPrivateNetwork = true")
    assert dict(good.session.unit_extra_properties) == {"TasksMax": 512, "PrivateNetwork": True}


def test_a_bad_stop_timeout_is_one_problem() -> None:
    # The session policy is still checked, with the default stop timeout.
    assert keys_of("[daemon]\nstop_timeout = 0\n[session]\nmem_limit = 'x'") == [
        "daemon.stop_timeout",
        "session.mem_limit",
    ]


def test_a_syntax_error_is_one_problem_with_line_and_column() -> None:
    problems = problems_of("[daemon]\nsocket = \n", source=Path("/etc/hostd/hostd.toml"))
    assert len(problems) == 1
    key, message = problems[0]
    assert key == "/etc/hostd/hostd.toml"
    assert message.startswith("not valid TOML: ")
    assert "line 2" in message
    assert "column" in message
    assert problems_of("[daemon\n")[0][0] == "<config>"


def test_config_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("[daemon]\nlog_level = 1\nmin_uid = 0")
    assert caught.value.code == "invalid-config"
    assert "daemon.log_level" in caught.value.message
    assert "daemon.min_uid" in caught.value.message


# --- min_uid and login.defs -----------------------------------------------------------------


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


# --- load_config: files ---------------------------------------------------------------------


def test_load_config_reads_the_file_and_login_defs(tmp_path: Path) -> None:
    path = tmp_path / "hostd.toml"
    path.write_text(SEED_TOML)
    login_defs = tmp_path / "login.defs"
    login_defs.write_text("UID_MIN 1200\n")
    config = load_config(path, login_defs=login_defs)
    assert isinstance(config, Config)
    assert config.source == path
    assert config.session.mem_limit == 2 * 1024**3
    assert config.daemon.min_uid == 1200


def test_without_login_defs_min_uid_is_1000(tmp_path: Path) -> None:
    path = tmp_path / "hostd.toml"
    path.write_text("")
    assert load_config(path, login_defs=tmp_path / "missing").daemon.min_uid == 1000


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "hostd.toml"
    path.write_bytes(b"\xef\xbb\xbf[daemon]\nlog_level = 'debug'\n")
    assert load_config(path).daemon.log_level == "debug"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [(str(path), "cannot read: No such file or directory")]


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.problems == [(str(tmp_path), "cannot read: Is a directory")]


def test_an_unreadable_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    under_a_file = tmp_path / "file" / "hostd.toml"
    under_a_file.parent.write_text("")
    with pytest.raises(ConfigError) as caught:
        load_config(under_a_file)
    assert caught.value.problems == [(str(under_a_file), "cannot read: Not a directory")]

    # A mode-000 file, as root would not see it.
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    path = tmp_path / "hostd.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [(str(path), "cannot read: Permission denied")]


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "hostd.toml"
    path.write_bytes(b"[daemon]\nsocket_group = 'h\xf6std'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [(str(path), "not UTF-8 (byte 0xf6 at offset 26)")]


def test_no_path_and_no_default_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hostd.config.DEFAULT_CONFIG_PATH", tmp_path / "hostd.toml")
    assert load_config(login_defs=tmp_path / "missing") == parse_config("")
    (tmp_path / "hostd.toml").write_text("[daemon]\nlog_level = 'error'\n")
    config = load_config(login_defs=tmp_path / "missing")
    assert config.source == tmp_path / "hostd.toml"
    assert config.daemon.log_level == "error"


def test_host_safety_options_are_checked_with_clear_errors() -> None:
    text = '[session]\nip_address_deny = ["300.0.0.1"]\noom_policy = "panic"\nallow_swap = "no"\n'
    assert problems_of(text) == [
        (
            "session.ip_address_deny",
            "invalid IP address or prefix '300.0.0.1': '300.0.0.1' does not appear to be an "
            "IPv4 or IPv6 network; expected an address (169.254.169.254), a prefix "
            "(10.0.0.0/8) or any, localhost, link-local, multicast",
        ),
        ("session.oom_policy", "invalid value 'panic': expected one of continue, stop, kill"),
        ("session.allow_swap", "expected true or false, not 'no'"),
    ]
    config = parse_config(
        '[session]\nip_address_deny = []\noom_policy = "stop"\nallow_swap = true\n'
    )
    assert (config.session.ip_address_deny, config.session.oom_policy) == ((), "stop")
    assert config.session.allow_swap is True
