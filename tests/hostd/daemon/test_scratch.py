"""The scratch directory that [shared] names, as the daemon makes it; plus `hostctl
check-config`, which reports what the config names (the section itself: tests/hostd/config/
test_shared.py)."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest

from hostd.cli import verify_host
from hostd.cli.hostctl import main
from hostd.config.shared import SharedConfig
from hostd.daemon import scratch as shared
from hostd.daemon.scratch import SCRATCH_MODE, ensure_scratch


def test_ensure_scratch_makes_a_missing_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chowned: list[tuple[Path, int, int]] = []
    monkeypatch.setattr(shared.os, "chown", lambda p, u, g: chowned.append((Path(p), u, g)))
    group = grp.getgrgid(os.getgid()).gr_name
    target = tmp_path / "srv" / "scratch"
    ensure_scratch(SharedConfig(scratch=target, scratch_group=group))
    assert stat.S_IMODE(target.stat().st_mode) == SCRATCH_MODE
    assert chowned == [(target, 0, os.getgid())]
    # An existing one is left as it is.
    target.chmod(0o700)
    ensure_scratch(SharedConfig(scratch=target, scratch_group=group))
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    ensure_scratch(SharedConfig())  # none configured: nothing to do


def test_ensure_scratch_without_the_group(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "scratch"
    ensure_scratch(SharedConfig(scratch=target, scratch_group="no-such-group-hostd"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert "group 'no-such-group-hostd' does not exist" in caplog.text


# -- hostctl check-config -------------------------------------------------------------------


def test_check_config_reports_what_the_config_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A program every user can run (tmp_path is 0700: no other user could reach one there).
    program = "/bin/sh"
    data = tmp_path / "data"
    data.mkdir()
    path = tmp_path / "hostd.toml"
    path.write_text(
        f'[session]\ncmd = ["{program}", "--port={{PORT}}"]\n'
        f'shared_paths = ["{data}", "{tmp_path}/gone"]\n'
        f'[commands]\nother = ["{tmp_path}/missing"]\n'
        f'[shared]\nscratch = "{tmp_path}/scratch"\nscratch_group = "no-such-group-hostd"\n'
    )
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok    config")
    assert [line.split()[:3] for line in lines if not line.startswith(" ")][1:] == [
        ["ok", "program", "session.cmd"],
        ["FAIL", "program", "commands.other"],
        ["FAIL", "paths", "session.shared_paths"],
        ["FAIL", "scratch", "group"],
        ["skip", "proxy", "group"],  # no session on a Unix socket here
        ["hostctl", "check-config:", "3"],
    ]


def test_check_config_of_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hostd.toml"
    path.write_text('[session]\nmem_limit = "lots"\n')
    assert main(["check-config", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  config  {path}: session.mem_limit: invalid size 'lots'" in out
    assert out.rstrip().endswith("hostctl check-config: 1 of 1 checks FAILED")


def test_verify_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["verify"]) == 1
    assert "verify needs root" in capsys.readouterr().err


def test_verify_prints_the_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hostd.cli.verify import Check

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    seen: list[Path] = []

    def fake_verify(path: Path) -> list[Check]:
        seen.append(path)
        return [Check("socket", "fail", "broken", "fix it")]

    monkeypatch.setattr(verify_host, "verify", fake_verify)
    assert main(["verify", "--config", "/etc/x.toml"]) == 1
    assert seen == [Path("/etc/x.toml")]
    assert capsys.readouterr().out.splitlines() == [
        "FAIL  socket  broken",
        "              fix: fix it",
        "hostctl verify: 1 of 1 checks FAILED",
    ]
