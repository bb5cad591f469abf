"""hostd.cli.serve: `hostd check-config` and `hostd serve` argument handling, no tracebacks."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from hostd.cli.serve import main
from hostd.config import Config

GOOD = """\
[daemon]
port_range = [30000, 30999]

[session]
cmd = ["/bin/sh", "{SOCKET}"]  # a program that exists: check-config checks that it does
mem_limit = "2G"
cpu_limit = 1.0
isolate_tmp = true
"""

BAD = """\
[daemon]
port_range = [80, 70000]
log_levl = "debug"

[session]
mem_limit = "lots"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hostd.toml"
    path.write_text(text)
    return path


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    assert out.startswith(f"ok: {path} (5 options changed from the defaults; ")
    assert "ports 30000-30999" in out
    assert "mem_limit 2G, cpu_limit 1" in out


def test_check_config_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(write(tmp_path, BAD))]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "daemon.port_range: invalid port range [80, 70000]: need 1024 <= low < high <= 65535",
        "daemon.log_levl: unknown key (did you mean log_level?)",
        "session.mem_limit: invalid size 'lots': expected bytes or a size like 512M",
    ]


def test_check_config_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[daemon]\nsocket = \n")
    assert main(["check-config", str(path)]) == 1
    _, err = capsys.readouterr()
    assert err.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in err
    assert err.count("\n") == 1


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.toml"
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: cannot read: No such file or directory\n"


def test_check_config_without_a_file_checks_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("hostd.config.DEFAULT_CONFIG_PATH", tmp_path / "hostd.toml")
    status = main(["check-config"])
    out, err = capsys.readouterr()
    assert out.startswith("ok: defaults, no /etc/hostd/hostd.toml (0 options")
    # The default cmd's program is there only where install.sh made the session environment.
    if Path("/opt/hostd/session/bin/jupyter").exists():
        assert (status, err) == (0, "")
    else:
        assert status == 1
        assert err.startswith("program session.cmd: /opt/hostd/session/bin/jupyter does not exist")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("hostd ")


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "usage: hostd" in capsys.readouterr().err


def test_serve_hands_the_loaded_config_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Config] = []

    def serve(config: Config) -> int:
        served.append(config)
        return 3

    server = types.ModuleType("hostd.daemon.server")
    server.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hostd.daemon.server", server)
    path = write(tmp_path, GOOD)
    assert main(["serve", "--config", str(path)]) == 3
    [config] = served
    assert config.source == path
    assert config.daemon.port_range == (30000, 30999)


def test_serve_with_a_bad_config_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = types.ModuleType("hostd.daemon.server")
    monkeypatch.setitem(sys.modules, "hostd.daemon.server", server)  # no serve: fails if reached
    assert main(["serve", "--config", str(write(tmp_path, BAD))]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 3
