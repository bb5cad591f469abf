"""hostd.config.document: the file read (or not), TOML syntax errors, unknown and misplaced keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.config import Config, load_config, parse_config
from hostd.config.document import dotted, without_prefix
from hostd.units.errors import ConfigError
from tests.hostd.config.samples import SEED_TOML, problems_of


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


def test_a_syntax_error_is_one_problem_with_line_and_column() -> None:
    problems = problems_of("[daemon]\nsocket = \n", source=Path("/etc/hostd/hostd.toml"))
    assert len(problems) == 1
    key, message = problems[0]
    assert key == "/etc/hostd/hostd.toml"
    assert message.startswith("not valid TOML: ")
    assert "line 2" in message
    assert "column" in message
    assert problems_of("[daemon\n")[0][0] == "<config>"


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


def test_dotted_keys_quote_what_toml_would() -> None:
    assert dotted("daemon", "socket") == "daemon.socket"
    assert dotted("session", "unit_extra_properties", "No Such") == (
        'session.unit_extra_properties."No Such"'
    )
    assert dotted("a.b") == '"a.b"'


def test_without_prefix_drops_the_labels_the_key_already_says() -> None:
    assert without_prefix("cmd: invalid path", "cmd") == "invalid path"
    assert without_prefix("X: Y: z", "X", "Y") == "z"
    assert without_prefix("other: z", "cmd") == "other: z"
