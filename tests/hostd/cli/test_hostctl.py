"""hostctl against a served fake daemon (real uvicorn on a Unix socket), and its formatting."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hostd.api.client import StartResult
from hostd.api.daemon import build_daemon_app
from hostd.cli import hostctl
from hostd.cli.hostctl import (
    TABLE_COLUMNS,
    describe_error,
    describe_host,
    describe_limits,
    describe_start,
    describe_stop,
    format_cpu,
    format_cpu_percent,
    format_memory,
    format_size,
    format_table,
    format_time,
    main,
    oom_notes,
    session_rows,
)
from hostd.units.errors import CapacityExceeded, SessionNotFound, SpawnFailed, SystemdUnavailable
from hostd.units.values import HostView, Limits, LogLine, SessionView, UsageView
from tests.api.fake import (
    DEFAULT_MEMORY_BYTES,
    HOST_CPUS,
    HOST_MEMORY_BYTES,
    ROOT,
    FakeSessionService,
    serving_in_thread,
    with_peer,
)

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hostd-") as directory:
        yield Path(directory) / "hostd.sock"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeSessionService, Path]]:
    """A fake daemon on a Unix socket, served in a thread (hostctl runs asyncio.run itself);
    one per module, as starting and stopping uvicorn costs a few tenths of a second."""
    fake = FakeSessionService()
    with (
        tempfile.TemporaryDirectory(prefix="hostd-") as directory,
        serving_in_thread(with_peer(build_daemon_app(fake), ROOT), Path(directory) / "s.sock"),
    ):
        yield fake, Path(directory) / "s.sock"


@pytest.fixture
def fake(served: tuple[FakeSessionService, Path]) -> FakeSessionService:
    served[0].reset()
    return served[0]


@pytest.fixture
def daemon(served: tuple[FakeSessionService, Path], fake: FakeSessionService) -> Path:
    return served[1]


def hostctl_at(socket: Path, *argv: str) -> int:
    return main(["--socket", str(socket), *argv])


# -- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "-"),
        (0, "0B"),
        (512, "512B"),
        (1024, "1.0K"),
        (1536, "1.5K"),
        (512 * 1024**2, "512.0M"),
        (2 * 1024**3, "2.0G"),
        (3 * 1024**4 // 2, "1.5T"),
        (2**63 - 1, "8.0E"),
    ],
)
def test_format_size(size: int | None, text: str) -> None:
    assert format_size(size) == text


def test_format_cpu_and_time() -> None:
    assert (format_cpu(None), format_cpu(1.0), format_cpu(1.5), format_cpu(0.25)) == (
        "-",
        "1",
        "1.5",
        "0.25",
    )
    assert format_time(None) == "-"
    assert format_time(datetime(2024, 5, 1, 12, 0, 7, 123)) == "2024-05-01 12:00:07"
    aware = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(aware) == aware.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_format_table_aligns_columns_without_trailing_blanks() -> None:
    table = format_table(("A", "LONGER"), [("wide cell", "x"), ("b", "")])
    assert table.splitlines() == ["A          LONGER", "wide cell  x", "b"]


def test_session_rows() -> None:
    started = datetime(2024, 5, 1, 12, 0, 7)
    full = SessionView(
        user="alice",
        unit="jupyter-alice.service",
        state="running",
        started_at=started,
        url="http://127.0.0.1:8900/user/alice/",
        limits=Limits(mem_limit_bytes=2 * 1024**3, cpu_limit=1.5),
    )
    bare = SessionView(user="bob", unit="jupyter-bob.service", state="failed", result="oom-kill")
    usage = UsageView(
        user="alice", memory_bytes=432_332_391, memory_limit_bytes=2 * 1024**3, cpu_percent=37.4
    )
    alice_row = (
        "alice",
        "running",
        "jupyter-alice.service",
        "http://127.0.0.1:8900/user/alice/",
        "412.3M/2.0G",
        "37%",
        "1.5",
        "2024-05-01 12:00:07",
        "-",
    )
    assert session_rows([full, bare], {"alice": usage}) == [
        alice_row,
        ("bob", "failed", "jupyter-bob.service", "-", "-", "-", "-", "-", "oom-kill"),
    ]
    # Without its usage, a running session shows "-" where the usage would be.
    assert session_rows([full])[0][4:6] == ("-", "-")


def test_format_memory_and_cpu_percent() -> None:
    assert format_memory(None) == "-"
    assert format_memory(UsageView(user="a", memory_bytes=432_332_391)) == "412.3M/-"
    assert format_memory(UsageView(user="a", memory_limit_bytes=1024)) == "-/1.0K"
    assert format_cpu_percent(None) == "-"
    assert format_cpu_percent(UsageView(user="a")) == "-"
    assert format_cpu_percent(UsageView(user="a", cpu_percent=0.2)) == "0%"
    assert format_cpu_percent(UsageView(user="a", cpu_percent=149.6)) == "150%"


def test_describe_limits_and_host() -> None:
    view = SessionView(
        user="alice",
        unit="jupyter-alice.service",
        state="running",
        limits=Limits(mem_limit_bytes=1024**3, cpu_limit=None),
    )
    assert describe_limits(view) == "limits of alice (jupyter-alice.service): memory 1.0G, CPU -"
    host = HostView(
        memory_total_bytes=16 * 1024**3,
        memory_available_bytes=10 * 1024**3,
        cpus=8,
        sessions_running=2,
        memory_limits_bytes=3 * 1024**3,
        cpu_limits=2.5,
        memory_capacity_bytes=12 * 1024**3,
        starts_waiting=1,
    )
    assert describe_host(host).splitlines() == [
        "memory:         10.0G available of 16.0G",
        "CPUs:           8",
        "sessions:       2 running, 1 starts waiting",
        "memory limits:  3.0G of 12.0G capacity (25%)",
        "CPU limits:     2.5 of 8 cores",
    ]
    empty = HostView(1024, 1024, 1, 0, 0, 0.0, 0, 0)
    assert "memory limits:  0B of 0B capacity" in describe_host(empty).splitlines()


def test_describe() -> None:
    view = SessionView(user="alice", unit="jupyter-alice.service", state="running", url="http://x/")
    assert describe_start(StartResult(view, created=True)) == (
        "started alice (jupyter-alice.service), running at http://x/"
    )
    assert describe_start(StartResult(view, created=False)).startswith("already running: alice")
    stopped = SessionView(
        user="alice", unit="jupyter-alice.service", state="stopped", result="success"
    )
    assert (
        describe_stop(stopped) == "stopped alice (jupyter-alice.service), stopped, result success"
    )


def test_describe_error() -> None:
    assert describe_error(SessionNotFound("alice has no session")) == [
        "hostctl: alice has no session [not-found]"
    ]
    failed = SpawnFailed(
        "alice's session failed to start",
        details={"result": "exit-code", "exit_status": 127, "log": ["a", "b"]},
    )
    assert describe_error(failed) == [
        "hostctl: alice's session failed to start [spawn-failed]",
        "  result: exit-code, exit status: 127",
        "  last log lines:",
        "    a",
        "    b",
    ]


# -- commands against the daemon ----------------------------------------------------------


def test_status_prints_a_table(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.add_session("alice")
    fake.add_session(
        "bob", state="failed", result="oom-kill", url=None, limits=None, started_at=None
    )
    assert hostctl_at(daemon, "status") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "USER",
        "STATE",
        "UNIT",
        "URL",
        "MEM",
        "CPU%",
        "CPU",
        "LIMIT",
        "STARTED",
        "RESULT",
    ]
    assert out[1].split()[:7] == [
        "alice",
        "running",
        "jupyter-alice.service",
        "http://127.0.0.1:8900/user/alice/",
        "256.0M/2.0G",  # the fake's default usage
        "37%",
        "1.5",
    ]
    assert out[2].split() == [
        "bob",
        "failed",
        "jupyter-bob.service",
        "-",
        "-",
        "-",
        "-",
        "-",
        "oom-kill",
    ]
    # Columns line up: each header starts where its cells start.
    for column in ("STATE", "URL", "MEM", "CPU%", "RESULT"):
        assert out[1][out[0].index(column) - 2 : out[0].index(column)] == "  "
    # One usage call per session that runs; none for bob's, which failed.
    assert [call for call in fake.calls if call[0] == "usage"] == [("usage", "alice")]


def test_status_shows_the_usage_it_reads(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice")
    fake.add_session("bob", limits=None)
    fake.usages["bob"] = UsageView(user="bob", memory_bytes=432_332_391, cpu_percent=150.2)
    assert hostctl_at(daemon, "status") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[4:6] for row in rows] == [["256.0M/2.0G", "37%"], ["412.3M/-", "150%"]]


def test_status_shows_each_sessions_gpus_once_any_holds_one(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice", gpus=(0, 2))
    fake.add_session("bob")
    assert hostctl_at(daemon, "status") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-1] == "GPUS"
    assert [line.split()[-1] for line in out[1:]] == ["0,2", "-"]
    assert hostctl_at(daemon, "status", "bob") == 0
    assert "GPUS" not in capsys.readouterr().out


def test_status_says_when_the_kernel_killed_in_a_session(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice")
    fake.add_session("bob")
    fake.add_session("carol", state="failed", result="oom-kill")
    fake.usages["bob"] = UsageView(user="bob", memory_bytes=1024, oom_kills=2)
    assert hostctl_at(daemon, "status") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5
    assert [line.split()[0] for line in out[1:4]] == ["alice", "bob", "carol"]
    assert out[4] == "bob: kernel killed: out of memory (2 processes)"
    assert hostctl_at(daemon, "status", "bob") == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "bob: kernel killed: out of memory (2 processes)"
    ]
    assert hostctl_at(daemon, "status", "alice") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # no kills, no note
    assert hostctl_at(daemon, "status", "bob", "--json") == 0
    assert json.loads(capsys.readouterr().out)["usage"]["oom_kills"] == 2


def test_oom_notes() -> None:
    alice = SessionView(user="alice", unit="jupyter-alice.service", state="running")
    assert oom_notes([alice], {}) == []
    assert oom_notes([alice], {"alice": UsageView(user="alice", oom_kills=1)}) == [
        "alice: kernel killed: out of memory (1 process)"
    ]


def test_status_reads_usage_concurrently(
    daemon: Path, fake: FakeSessionService, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = ("alice", "bob", "carol")
    for user in users:
        fake.add_session(user)
    arrived: list[str] = []
    usage = fake.usage

    async def usage_once_all_asked(user: str) -> UsageView:
        # Answers only once every session's usage was asked for: read one after another,
        # the first would wait until the deadline and fail.
        arrived.append(user)
        for _ in range(400):
            if len(arrived) == len(users):
                return await usage(user)
            await asyncio.sleep(0.005)
        raise SystemdUnavailable("usage was not read concurrently")

    monkeypatch.setattr(fake, "usage", usage_once_all_asked)
    assert hostctl_at(daemon, "status") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[5] for row in rows] == ["37%"] * 3
    assert sorted(arrived) == list(users)


def test_status_shows_a_dash_for_usage_it_cannot_read(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice")
    fake.fail["usage"] = SystemdUnavailable("no answer")
    assert hostctl_at(daemon, "status") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].split()[4:6] == ["-", "-"]
    assert captured.err == ""
    assert hostctl_at(daemon, "status", "alice", "--json") == 0
    assert json.loads(capsys.readouterr().out)["usage"] is None


def test_status_without_sessions(daemon: Path, capsys: Capture) -> None:
    assert hostctl_at(daemon, "status") == 0
    assert capsys.readouterr().out == "no sessions\n"


def test_status_json_is_the_api_json(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    view = fake.add_session("alice")
    stopped = fake.add_session("bob", state="stopped")
    fake.usages["alice"] = UsageView(user="alice", memory_bytes=1024, cpu_percent=2.5, tasks=3)
    usage = fake.usages["alice"].to_dict()
    assert hostctl_at(daemon, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "sessions": [{**view.to_dict(), "usage": usage}, {**stopped.to_dict(), "usage": None}],
        "maintenance": {"announcement": None, "drain": None},
    }
    assert hostctl_at(daemon, "status", "alice", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {**view.to_dict(), "usage": usage}


def test_status_of_one_user(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.add_session("alice")
    fake.add_session("bob")
    assert hostctl_at(daemon, "status", "alice") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith("USER") and out[1].startswith("alice ")


def test_start_passes_every_option(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    argv = ["start", "alice", "--mem", "2G", "--cpu", "1.5", "--env", "JUPYTERHUB_A=1=2"]
    argv += ["--env", "JUPYTERHUB_B=", "--default-url", "/lab", "--no-wait"]
    assert hostctl_at(daemon, *argv) == 0
    _, user, request, _, wait = fake.calls[-1]
    assert (user, wait) == ("alice", False)
    assert (request.mem_limit, request.cpu_limit, request.default_url) == (2 * 1024**3, 1.5, "/lab")
    assert dict(request.environment) == {"JUPYTERHUB_A": "1=2", "JUPYTERHUB_B": ""}
    assert capsys.readouterr().out == (
        "started alice (jupyter-alice.service), starting at http://127.0.0.1:8901/user/alice/\n"
    )


def test_start_twice_and_json(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    assert hostctl_at(daemon, "start", "alice") == 0
    assert fake.calls[-1][4] is True  # waits by default
    capsys.readouterr()
    assert hostctl_at(daemon, "start", "alice", "--json") == 0
    assert json.loads(capsys.readouterr().out) == fake.sessions["alice"].to_dict()


def test_stop(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.add_session("alice")
    assert hostctl_at(daemon, "stop", "alice") == 0
    assert (
        capsys.readouterr().out
        == "stopped alice (jupyter-alice.service), stopped, result success\n"
    )
    assert hostctl_at(daemon, "stop", "alice", "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "stopped"


def test_logs(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.add_session("alice", lines=5)
    assert hostctl_at(daemon, "logs", "alice", "-n", "2") == 0
    assert capsys.readouterr().out == "alice line 3\nalice line 4\n"
    assert fake.calls[-2] == ("logs", "alice", 2)


def test_logs_follow_prints_until_the_stream_ends(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice", lines=2)
    assert hostctl_at(daemon, "logs", "alice", "-f") == 0
    assert capsys.readouterr().out == "alice line 0\nalice line 1\n"


def test_logs_follow_ends_with_ctrl_c_and_status_0(
    daemon: Path, fake: FakeSessionService, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_session("alice", lines=2)
    fake.follow_forever = True
    printed: list[str] = []
    print_line = hostctl._print_line

    def print_then_interrupt(line: LogLine, out: object) -> None:
        print_line(line, out)  # type: ignore[arg-type]
        printed.append(line.message)
        if len(printed) == 2:  # a real SIGINT, as Ctrl-C sends it, once both lines are out
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(hostctl, "_print_line", print_then_interrupt)
    assert hostctl_at(daemon, "logs", "alice", "-f") == 0
    captured = capsys.readouterr()
    assert captured.out == "alice line 0\nalice line 1\n"
    assert captured.err == ""


def test_ctrl_c_elsewhere_is_130(
    daemon: Path, fake: FakeSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(hostctl, "describe_start", interrupt)
    assert hostctl_at(daemon, "start", "alice") == 130


def test_set_prints_the_new_limits(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.add_session("alice")
    assert hostctl_at(daemon, "set", "alice", "--mem", "1G") == 0
    assert capsys.readouterr().out == (
        "limits of alice (jupyter-alice.service): memory 1.0G, CPU 1.5\n"
    )
    assert hostctl_at(daemon, "set", "alice", "--cpu", "0.5", "--json") == 0
    assert json.loads(capsys.readouterr().out) == fake.sessions["alice"].to_dict()
    assert [call[:4] for call in fake.calls if call[0] == "set_limits"] == [
        ("set_limits", "alice", 1024**3, None),
        ("set_limits", "alice", None, 0.5),
    ]


def test_set_without_a_limit_is_a_usage_error(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice")
    assert hostctl_at(daemon, "set", "alice") == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: hostctl")
    assert "--mem" in err and "--cpu" in err
    assert not any(call[0] == "set_limits" for call in fake.calls)


def test_set_errors_are_status_1(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    assert hostctl_at(daemon, "set", "alice", "--cpu", "1") == 1
    assert capsys.readouterr().err == "hostctl: alice has no running session [not-found]\n"
    fake.add_session("alice")
    assert hostctl_at(daemon, "set", "alice", "--mem", "lots") == 1
    assert "[invalid-size]" in capsys.readouterr().err
    fake.fail["set_limits"] = CapacityExceeded("memory is committed")
    assert hostctl_at(daemon, "set", "alice", "--mem", "8G") == 1
    assert capsys.readouterr().err == "hostctl: memory is committed [capacity]\n"


def test_host(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.add_session("alice")
    fake.starts_waiting = 1
    assert hostctl_at(daemon, "host") == 0
    gib = 1024**3
    available = format_size(HOST_MEMORY_BYTES - DEFAULT_MEMORY_BYTES)
    assert capsys.readouterr().out.splitlines() == [
        f"memory:         {available} available of {format_size(HOST_MEMORY_BYTES)}",
        f"CPUs:           {HOST_CPUS}",
        "sessions:       1 running, 1 starts waiting",
        f"memory limits:  2.0G of {format_size(HOST_MEMORY_BYTES * 3 // 4)} capacity (17%)",
        f"CPU limits:     1.5 of {HOST_CPUS} cores",
    ]
    assert hostctl_at(daemon, "host", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data == asyncio.run(fake.host()).to_dict()
    assert data["memory_limits_bytes"] == 2 * gib


# -- failures -----------------------------------------------------------------------------


def test_an_api_error_is_status_1_with_message_and_code(daemon: Path, capsys: Capture) -> None:
    assert hostctl_at(daemon, "status", "alice") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "hostctl: alice has no session [not-found]\n"


def test_invalid_input_is_status_1(daemon: Path, capsys: Capture) -> None:
    assert hostctl_at(daemon, "start", "alice", "--mem", "lots") == 1
    err = capsys.readouterr().err
    assert err.startswith("hostctl: mem_limit: invalid size 'lots'") and err.endswith(
        "[invalid-size]\n"
    )
    assert hostctl_at(daemon, "logs", "alice", "-n", "0") == 1
    assert "[invalid-option]" in capsys.readouterr().err


def test_spawn_failed_prints_the_log(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.fail["start"] = SpawnFailed(
        "alice's session failed to start",
        details={"result": "exit-code", "exit_status": 1, "log": ["ImportError: jupyterlab"]},
    )
    assert hostctl_at(daemon, "start", "alice") == 1
    assert capsys.readouterr().err.splitlines() == [
        "hostctl: alice's session failed to start [spawn-failed]",
        "  result: exit-code, exit status: 1",
        "  last log lines:",
        "    ImportError: jupyterlab",
    ]


def test_capacity_is_status_1(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:
    fake.fail["start"] = CapacityExceeded("memory is committed", retry_after_s=30)
    assert hostctl_at(daemon, "start", "alice") == 1
    assert capsys.readouterr().err == "hostctl: memory is committed [capacity]\n"


def test_an_internal_error_names_its_code(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.fail["list"] = RuntimeError("boom")
    assert hostctl_at(daemon, "status") == 1
    assert (
        capsys.readouterr().err == "hostctl: internal error; see the daemon's journal [internal]\n"
    )


def test_an_unreachable_daemon_is_status_3_with_a_hint(socket_path: Path, capsys: Capture) -> None:
    assert hostctl_at(socket_path, "status") == 3
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"hostctl: cannot connect to hostd at {socket_path}: [Errno 2] No such file or directory"
        " [daemon-unreachable]",
        "hostctl: is hostd running? systemctl status hostd.socket",
    ]
    assert "Traceback" not in captured.err


def test_the_socket_comes_from_the_environment(
    daemon: Path, fake: FakeSessionService, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.setenv("HOSTD_SOCKET", str(daemon))
    assert main(["status"]) == 0
    assert capsys.readouterr().out == "no sessions\n"
    monkeypatch.setenv("HOSTD_SOCKET", "/nonexistent/hostd.sock")
    assert main(["status"]) == 3
    assert "/nonexistent/hostd.sock" in capsys.readouterr().err
    assert main(["--socket", str(daemon), "status"]) == 0  # --socket wins


def test_the_default_socket(monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> None:
    monkeypatch.delenv("HOSTD_SOCKET", raising=False)
    if Path("/run/hostd/hostd.sock").exists():
        pytest.skip("a real hostd is running here")
    assert main(["status"]) == 3
    assert "hostd at /run/hostd/hostd.sock" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["start"],
        ["start", "alice", "--cpu", "many"],
        ["start", "alice", "--cpu", "nan"],
        ["start", "alice", "--env", "NOEQUALS"],
        ["start", "alice", "--env", "=x"],
        ["logs", "alice", "-n", "x"],
        ["status", "alice", "bob"],
        ["set", "alice"],
        ["set", "--mem", "1G"],
        ["set", "alice", "--cpu", "inf"],
        ["host", "alice"],
    ],
)
def test_usage_errors_are_status_2(argv: list[str], capsys: Capture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: hostctl")
    assert "Traceback" not in err


def test_help_is_status_0(capsys: Capture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("start", "stop", "status", "set", "host", "logs", "--socket"):
        assert command in out


def test_table_columns() -> None:
    assert TABLE_COLUMNS == (
        "USER",
        "STATE",
        "UNIT",
        "URL",
        "MEM",
        "CPU%",
        "CPU LIMIT",
        "STARTED",
        "RESULT",
    )


def test_started_times_are_shown_in_local_time(
    daemon: Path, fake: FakeSessionService, capsys: Capture
) -> None:
    fake.add_session("alice", started_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    assert hostctl_at(daemon, "status") == 0
    local = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert local in capsys.readouterr().out


def test_a_closed_stdout_ends_quietly(daemon: Path, fake: FakeSessionService) -> None:
    fake.add_session("alice", lines=8_000)  # more than a pipe holds: hostctl meets EPIPE
    command = f"{shlex.quote(sys.executable)} -m hostd.cli.hostctl --socket {daemon} logs alice -f"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{command} | head -n 1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "alice line 0\n", "")
