"""units.policy: the admin's SessionPolicy and a caller's SessionRequest check themselves."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from hostd.units.errors import InvalidInput, InvalidOption, InvalidPath, InvalidSize
from hostd.units.policy import SessionPolicy, SessionRequest

CMD = ("/usr/bin/jupyterhub-singleuser", "--port={PORT}", "--ServerApp.base_url={BASE_URL}")


def policy(**options: Any) -> SessionPolicy:
    return SessionPolicy(**{"cmd": CMD, **options})


def test_defaults_are_systemdspawners() -> None:
    made = policy()
    assert made.mem_limit is None
    assert made.cpu_limit is None
    assert not (made.isolate_tmp or made.isolate_devices or made.disable_user_sudo)
    assert made.user_workingdir is None
    assert made.readonly_paths == made.readwrite_paths == made.shared_paths == ()
    assert made.default_shell == "/bin/bash"
    assert made.allowed_environment == ("JUPYTERHUB_*",)
    assert made.stop_timeout_usec == 10_000_000
    # Not systemdspawner's: one process over mem_limit dies alone, mem_limit holds swap too,
    # and the cloud metadata service is out of reach.
    assert made.oom_policy == "continue"
    assert made.allow_swap is False
    assert made.ip_address_deny == ("169.254.169.254",)
    assert dict(made.environment) == dict(made.unit_extra_properties) == {}


def test_values_are_normalised_and_frozen() -> None:
    made = policy(
        cmd=list(CMD),
        mem_limit="2G",
        cpu_limit=1,
        readonly_paths=["/opt/shared-data"],
        readwrite_paths=["/tmp"],
        shared_paths=["/srv/datasets"],
        allowed_environment=["JUPYTERHUB_*", "LANG"],
        environment={"LANG": "C.UTF-8"},
        unit_extra_properties={"TasksMax": 512},
    )
    assert made.cmd == CMD
    assert made.mem_limit == 2 * 1024**3
    assert made.cpu_limit == 1.0
    assert isinstance(made.cpu_limit, float)
    assert made.readonly_paths == ("/opt/shared-data",)
    assert made.readwrite_paths == ("/tmp",)
    assert made.shared_paths == ("/srv/datasets",)
    assert made.allowed_environment == ("JUPYTERHUB_*", "LANG")
    assert isinstance(made.environment, MappingProxyType)
    assert isinstance(made.unit_extra_properties, MappingProxyType)
    with pytest.raises(AttributeError):
        made.mem_limit = 1  # type: ignore[misc]


def test_caps() -> None:
    made = policy(mem_limit="1G", max_mem_limit="4G", cpu_limit=1, max_cpu_limit=2)
    assert (made.max_mem_limit, made.max_cpu_limit) == (4 * 1024**3, 2.0)
    assert policy(mem_limit="1G", max_mem_limit="1G").max_mem_limit == 1024**3


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"cmd": ()}, InvalidOption, "cmd: must name a program"),
        ({"cmd": "/usr/bin/jupyterhub-singleuser"}, InvalidOption, "cmd: expected a list"),
        ({"cmd": ["/bin/x", 5]}, InvalidOption, "cmd: expected a list"),
        ({"cmd": ["jupyterhub-singleuser"]}, InvalidPath, "cmd: cmd[0]: invalid path"),
        ({"cmd": ["/bin/x", "--ip={IP}"]}, InvalidOption, "cmd: invalid cmd argument"),
        ({"cmd": ["/bin/x", "--a\nb"]}, InvalidOption, "control character"),
        ({"cmd": ["/opt/{HOME}/bin/x"]}, InvalidOption, "cmd: invalid cmd argument"),
        ({"mem_limit": "2X"}, InvalidSize, "mem_limit: invalid size '2X'"),
        ({"mem_limit": 0}, InvalidSize, "mem_limit: "),
        ({"cpu_limit": 0}, InvalidSize, "cpu_limit: "),
        ({"cpu_limit": float("nan")}, InvalidSize, "cpu_limit: "),
        ({"isolate_tmp": "yes"}, InvalidOption, "isolate_tmp: expected true or false"),
        ({"isolate_devices": 1}, InvalidOption, "isolate_devices: "),
        ({"disable_user_sudo": None}, InvalidOption, "disable_user_sudo: "),
        ({"user_workingdir": "shared/{USERNAME}"}, InvalidPath, "user_workingdir: "),
        ({"user_workingdir": "/shared/{USER}"}, InvalidPath, "user_workingdir: "),
        ({"user_workingdir": 5}, InvalidPath, "user_workingdir: "),
        ({"readonly_paths": "/"}, InvalidOption, "readonly_paths: expected a list"),
        ({"readonly_paths": ["/a/../b"]}, InvalidPath, "readonly_paths: "),
        ({"readwrite_paths": ["/home/{USERNAME}/"]}, InvalidPath, "readwrite_paths: "),
        ({"shared_paths": ["/srv/{USERNAME}/../x"]}, InvalidPath, "shared_paths: "),
        ({"default_shell": "bash"}, InvalidPath, "default_shell: "),
        ({"environment": {"API_TOKEN": "x"}}, InvalidOption, "environment: "),
        ({"environment": {"SHELL": "/bin/zsh"}}, InvalidOption, "environment: SHELL: set by hostd"),
        ({"environment": {"MEM_LIMIT": "1", "CPU_LIMIT": "1"}}, InvalidOption,
         "CPU_LIMIT, MEM_LIMIT"),
        ({"environment": {"A": "x\ny"}}, InvalidOption, "environment: "),
        ({"allowed_environment": ["*"]}, InvalidOption, "allowed_environment: "),
        ({"allowed_environment": ["JUPYTERHUB_API_TOKEN"]}, InvalidOption, "credentials"),
        ({"allowed_environment": "JUPYTERHUB_*"}, InvalidOption, "allowed_environment: "),
        ({"max_mem_limit": "4G"}, InvalidOption, "max_mem_limit needs mem_limit"),
        ({"mem_limit": "4G", "max_mem_limit": "2G"}, InvalidOption, "is below mem_limit"),
        ({"max_cpu_limit": 2}, InvalidOption, "max_cpu_limit needs cpu_limit"),
        ({"cpu_limit": 2, "max_cpu_limit": 1}, InvalidOption, "is below cpu_limit"),
        ({"max_mem_limit": "lots"}, InvalidSize, "max_mem_limit: "),
        ({"stop_timeout_usec": 0}, InvalidOption, "stop_timeout_usec: "),
        ({"stop_timeout_usec": True}, InvalidOption, "stop_timeout_usec: "),
        ({"stop_timeout_usec": "10s"}, InvalidOption, "stop_timeout_usec: "),
        ({"unit_extra_properties": [("TasksMax", 5)]}, InvalidOption, "unit_extra_properties: "),
        ({"unit_extra_properties": {"User": "root"}}, InvalidOption, "User is set by hostd"),
        ({"unit_extra_properties": {"MemoryMax": "2G"}}, InvalidOption, "set mem_limit instead"),
        ({"unit_extra_properties": {"CPUQuota": "50%"}}, InvalidOption, "set cpu_limit instead"),
        ({"unit_extra_properties": {"TasksMax": 0}}, InvalidOption,
         "unit_extra_properties: TasksMax: "),
        ({"unit_extra_properties": {"OOMPolicy": "stop"}}, InvalidOption,
         "set oom_policy instead"),
        ({"oom_policy": "panic"}, InvalidOption,
         "oom_policy: invalid value 'panic': expected one of continue, stop, kill"),
        ({"oom_policy": None}, InvalidOption, "oom_policy: "),
        ({"allow_swap": "yes"}, InvalidOption, "allow_swap: expected true or false"),
        ({"ip_address_deny": "169.254.169.254"}, InvalidOption,
         "ip_address_deny: expected a list of strings"),
        ({"ip_address_deny": ["169.254.169.254", 5]}, InvalidOption,
         "ip_address_deny: expected a list of strings"),
        ({"ip_address_deny": ["169.254.169.256"]}, InvalidOption,
         "ip_address_deny: invalid IP address or prefix '169.254.169.256'"),
        ({"ip_address_deny": ["10.0.0.1/8"]}, InvalidOption, "has host bits set"),
        ({"ip_address_deny": ["fd00::/129"]}, InvalidOption, "ip_address_deny: "),
        ({"ip_address_deny": ["metadata.google.internal"]}, InvalidOption,
         "expected an address (169.254.169.254), a prefix (10.0.0.0/8) or any, localhost"),
    ],
)  # fmt: skip
def test_policy_refuses(options: dict[str, Any], error: type[InvalidInput], text: str) -> None:
    with pytest.raises(error) as caught:
        policy(**options)
    assert type(caught.value) is error
    assert text in caught.value.message


def test_unknown_directive_is_refused_at_start_up() -> None:
    with pytest.raises(InvalidInput, match="did you mean MemoryMax"):
        policy(unit_extra_properties={"MemoryLimit": "2G"})


def test_cmd_is_required() -> None:
    with pytest.raises(TypeError):
        SessionPolicy()  # type: ignore[call-arg]


def test_request_defaults_and_normalisation() -> None:
    assert SessionRequest() == SessionRequest(
        mem_limit=None, cpu_limit=None, environment={}, default_url=None
    )
    made = SessionRequest(
        mem_limit="1G",  # type: ignore[arg-type]
        cpu_limit="0.5",  # type: ignore[arg-type]
        environment={"JUPYTERHUB_USER": "alice"},
        default_url="/lab",
    )
    assert (made.mem_limit, made.cpu_limit, made.default_url) == (1024**3, 0.5, "/lab")
    assert isinstance(made.environment, MappingProxyType)


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"mem_limit": -1}, InvalidSize, "mem_limit: "),
        ({"cpu_limit": 2000}, InvalidSize, "cpu_limit: "),
        ({"environment": {"JUPYTERHUB_API_TOKEN": "t"}}, InvalidOption, "credentials"),
        ({"environment": {"A B": "t"}}, InvalidOption, "environment: "),
        ({"environment": "A=1"}, InvalidOption, "environment: "),
        ({"default_url": "//evil.example"}, InvalidOption, "default_url: "),
    ],
)
def test_request_refuses(options: dict[str, Any], error: type[InvalidInput], text: str) -> None:
    with pytest.raises(error) as caught:
        SessionRequest(**options)
    assert text in caught.value.message


def test_admin_switches() -> None:
    made = policy(
        oom_policy="stop",
        allow_swap=True,
        ip_address_deny=["169.254.0.0/16", "fd00:ec2::254", "link-local"],
    )
    assert (made.oom_policy, made.allow_swap) == ("stop", True)
    assert made.ip_address_deny == ("169.254.0.0/16", "fd00:ec2::254", "link-local")
    assert policy(ip_address_deny=[]).ip_address_deny == ()
