"""hostd.config.session: [session], SessionPolicy's options, every problem reported."""

from __future__ import annotations

import dataclasses

import pytest

from hostd.config import DEFAULT_SESSION_CMD, parse_config
from hostd.units import SessionPolicy
from tests.hostd.config.samples import SEED_TOML, keys_of, problems_of


def test_the_default_session_cmd() -> None:
    assert parse_config("").session.cmd == (
        "/opt/hostd/session/bin/jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.sock={SOCKET}",
        "--ServerApp.sock_mode=0660",
        "--ServerApp.base_url={BASE_URL}",
    )


def test_the_session_keys_are_systemdspawners_names() -> None:
    keys = {
        "cmd", "mem_limit", "cpu_limit", "isolate_tmp", "isolate_devices", "disable_user_sudo",
        "user_workingdir", "readonly_paths", "readwrite_paths", "shared_paths", "default_shell",
        "environment", "allowed_environment", "max_mem_limit", "max_cpu_limit",
        "unit_extra_properties",
        # hostd's own: safe defaults systemdspawner does not have
        "oom_policy", "allow_swap", "ip_address_deny", "gpus",
        # JupyterHub's named_server_limit_per_user, as a [session] key (0: named servers off)
        "named_server_limit",
    }  # fmt: skip
    session_fields = {field.name for field in dataclasses.fields(SessionPolicy)}
    assert session_fields - {"stop_timeout_usec"} == keys
    assert problems_of("[session]\nstop_timeout_usec = 1") == [
        ("session.stop_timeout_usec", "set from [daemon] stop_timeout (in seconds)")
    ]


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


def test_sizes_in_bytes_and_with_units() -> None:
    session = parse_config(
        '[session]\nmem_limit = 1073741824\ncpu_limit = 2\nmax_mem_limit = "1.5G"\n'
        'max_cpu_limit = "4"'
    ).session
    assert session.mem_limit == 1024**3
    assert session.max_mem_limit == 1536 * 1024**2
    assert session.cpu_limit == 2.0
    assert session.max_cpu_limit == 4.0


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
