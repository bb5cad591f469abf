"""hostd.config: the TOML file is read once, checked whole, and every problem is reported."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

import hostd.config
from hostd.config import DEFAULT_SESSION_CMD, FALLBACK_MIN_UID, DaemonConfig, parse_config
from hostd.units import SessionPolicy
from hostd.units.errors import ConfigError
from tests.hostd.config.samples import FULL_DEFAULT_TOML, SEED_TOML, keys_of, problems_of


def test_an_empty_file_is_every_default() -> None:
    config = parse_config("")
    assert config.daemon == DaemonConfig(min_uid=FALLBACK_MIN_UID)
    assert config.session == SessionPolicy(cmd=DEFAULT_SESSION_CMD)
    assert config.source is None
    assert config.changed_options() == ()


def test_the_full_default_file_equals_no_file() -> None:
    assert parse_config(FULL_DEFAULT_TOML) == parse_config("")


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


def test_config_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("[daemon]\nlog_level = 1\nmin_uid = 0")
    assert caught.value.code == "invalid-config"
    assert "daemon.log_level" in caught.value.message
    assert "daemon.min_uid" in caught.value.message


# --- the package ----------------------------------------------------------------------------


CONFIG_MODULES = sorted(
    path.stem for path in Path(hostd.config.__file__).parent.glob("*.py") if path.stem != "__init__"
)


def test_one_module_per_section_and_the_document() -> None:
    assert CONFIG_MODULES == [
        "auth", "capacity", "commands", "daemon", "document", "gpus", "profile_list", "profiles",
        "session", "shared",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["hostd.config", *(f"hostd.config.{m}" for m in CONFIG_MODULES)])
def test_each_module_says_what_it_is_and_exports_what_it_has(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    assert all(hasattr(module, exported) for exported in module.__all__)


@pytest.mark.parametrize("name", ["__init__", *CONFIG_MODULES])
def test_no_module_imports_the_daemon(name: str) -> None:
    # The daemon imports the config, never the other way round (and nothing with I/O to the
    # host: hostd.config reads its file and login.defs, nothing else).
    source = (Path(hostd.config.__file__).parent / f"{name}.py").read_text()
    imported: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
    outside = [
        module
        for module in imported
        if module.startswith("hostd.") and not module.startswith(("hostd.config", "hostd.units"))
    ]
    assert outside == []
