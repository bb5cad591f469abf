"""packaging/testbed driven from the host: it boots, runs, refuses bad input and leaves nothing.

These run as root on the host (marker ``host_root``); each compares the machine before and after.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTBED = str(Path(__file__).resolve().parents[2] / "packaging" / "testbed")

pytestmark = pytest.mark.host_root


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    testbed_cgroups: frozenset[str]
    foreign_namespaces: frozenset[str]
    testbed_processes: frozenset[str]
    state_files: frozenset[str]


def _namespaces(pid: str) -> tuple[str, ...]:
    return tuple(
        str(Path(f"/proc/{pid}/ns/{ns}").readlink()) for ns in ("pid", "mnt", "cgroup", "uts")
    )


def snapshot() -> Snapshot:
    """What a testbed could leave behind: mounts, cgroups, namespaces, processes."""
    mounts = frozenset(
        " ".join(line.split()[:5]) for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )
    cgroups = _testbed_cgroups()
    own = _namespaces("self")
    foreign: set[str] = set()
    processes: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            spaces = _namespaces(proc.name)
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        if spaces != own:
            foreign.add(" ".join(spaces))
        if "testbed" in cmdline and str(os.getpid()) not in cmdline and "pytest" not in cmdline:
            processes.add(f"{proc.name} {cmdline}")
    states = Path("/run/hostd-testbed")
    files = frozenset(p.name for p in states.iterdir()) if states.is_dir() else frozenset()
    return Snapshot(mounts, cgroups, frozenset(foreign), frozenset(processes), files)


def _testbed_cgroups() -> frozenset[str]:
    """The testbed cgroups on the machine; walked again if one went away during the walk (a
    testbed's teardown, or another testbed than the test's)."""
    for _ in range(50):
        try:
            return frozenset(
                str(p) for p in Path("/sys/fs/cgroup").glob("**/hostd-testbed-*") if p.is_dir()
            )
        except FileNotFoundError:
            time.sleep(0.1)
    raise AssertionError("/sys/fs/cgroup kept changing for 5 s while it was listed")


def run_testbed(
    *args: str, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TESTBED, *args], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


def assert_nothing_left(before: Snapshot) -> None:
    after = snapshot()
    assert after.mounts == before.mounts
    assert after.testbed_cgroups == before.testbed_cgroups
    assert after.foreign_namespaces <= before.foreign_namespaces
    assert after.testbed_processes <= before.testbed_processes
    assert after.state_files <= before.state_files


def test_run_boots_systemd_as_pid1_runs_in_cwd_with_env_and_leaves_nothing(tmp_path: Path) -> None:
    before = snapshot()
    script = "cat /proc/1/comm; pwd; echo $HOSTD_PROBE; systemctl is-system-running; exit 7"
    result = run_testbed(
        "run",
        "--",
        "sh",
        "-c",
        script,
        cwd=tmp_path,
        env={**os.environ, "HOSTD_PROBE": "probe-value"},
    )
    assert result.returncode == 7, result.stderr
    assert result.stdout.split() == ["systemd", str(tmp_path), "probe-value", "running"]
    assert_nothing_left(before)


def test_writes_inside_land_in_memory_but_the_working_directory_is_shared(tmp_path: Path) -> None:
    marker = Path(f"/var/tmp/hostd-testbed-probe-{os.getpid()}")
    script = f"touch {marker} && touch {tmp_path}/from-inside && ls {marker}"
    result = run_testbed("run", "--", "sh", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "a write outside the working directory reached the disk"
    assert (tmp_path / "from-inside").exists()


def test_a_callers_strict_umask_does_not_stop_the_boot() -> None:
    # Seen: a test that left umask 077 behind made every later testbed time out at boot.
    result = run_testbed(
        "run",
        "--",
        "sh",
        "-c",
        "umask; systemctl is-system-running",
        preexec_fn=lambda: os.umask(0o077),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0022", "running"]


def test_only_journald_dbus_and_logind_run_inside() -> None:
    cmd = "systemctl list-units --type=service --state=running --plain --no-legend | cut -d' ' -f1"
    result = run_testbed("run", "--", "sh", "-c", cmd)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == [
        "dbus.service",
        "systemd-journald.service",
        "systemd-logind.service",
    ]


def test_kernel_knobs_stay_read_only_inside() -> None:
    result = run_testbed("run", "--", "sh", "-c", "echo 1 > /proc/sys/vm/drop_caches")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_services_inside_listen_on_the_hosts_loopback() -> None:
    port = 20000 + os.getpid() % 20000
    code = (
        "import socket,subprocess,sys;"
        f"s=socket.create_server(('127.0.0.1',{port}));"
        "print('listening',flush=True);"
        "c,_=s.accept();c.sendall(b'hello from inside');c.close()"
    )
    with subprocess.Popen(
        [TESTBED, "run", "--", sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "listening"
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                assert conn.recv(100) == b"hello from inside"
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()


def test_up_exec_down_and_two_at_once() -> None:
    before = snapshot()
    names = [f"t{os.getpid()}a", f"t{os.getpid()}b"]
    try:
        for name in names:
            up = run_testbed("up", name)
            assert up.returncode == 0, up.stderr
        for name in names:
            result = run_testbed("exec", name, "hostname")
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == f"testbed-{name}"
        assert run_testbed("up", names[0]).returncode != 0  # the name is taken
        same = run_testbed("exec", names[0], "--", "sh", "-c", "echo $HOSTD_TESTBED; exit 3")
        assert (same.returncode, same.stdout.strip()) == (3, names[0])
    finally:
        for name in names:
            run_testbed("down", name)
    assert_nothing_left(before)
    assert run_testbed("exec", names[0], "true").returncode == 2


def test_two_runs_at_once_do_not_collide() -> None:
    before = snapshot()
    cmd = [TESTBED, "run", "--", "sh", "-c", "sleep 1; systemctl is-system-running"]
    with (
        subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as one,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as two,
    ):
        outs = [p.communicate(timeout=120)[0].strip() for p in (one, two)]
    assert [one.returncode, two.returncode] == [0, 0]
    assert outs == ["running", "running"]
    assert_nothing_left(before)


def test_timeout_kills_the_command_and_cleans_up() -> None:
    before = snapshot()
    started = time.monotonic()
    result = run_testbed("run", "--timeout", "2", "--", "sleep", "60")
    assert result.returncode == 124
    assert "timed out" in result.stderr
    assert time.monotonic() - started < 30
    assert_nothing_left(before)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cleans_up(signum: signal.Signals) -> None:
    before = snapshot()
    with subprocess.Popen(
        [TESTBED, "run", "--", "sh", "-c", "echo booted; sleep 60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "booted"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert "cleaning up" in err
    assert_nothing_left(before)


def test_a_failed_boot_prints_the_boot_log_and_cleans_up() -> None:
    before = snapshot()
    result = run_testbed(
        "run", "--", "true", env={**os.environ, "HOSTD_TESTBED_INIT": "/bin/false"}
    )
    assert result.returncode == 2
    assert "exited during boot" in result.stderr
    assert "last lines of the boot log" in result.stderr
    assert "executing /bin/false" in result.stderr
    assert_nothing_left(before)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([], "usage"),
        (["run"], "needs a command"),
        (["run", "--"], "needs a command"),
        (["frobnicate"], "unknown verb"),
        (["run", "--timeout"], "needs a value"),
        (["run", "--timeout", "soon", "true"], "not a number"),
        (["run", "--bogus", "true"], "unknown option"),
        (["up"], "needs a NAME"),
        (["up", "Bad Name!"], "invalid name"),
        (["down"], "exactly one NAME"),
        (["exec", "no-such-testbed", "true"], "no testbed named"),
    ],
)
def test_bad_input_gives_one_line_and_a_non_zero_status(args: list[str], reason: str) -> None:
    result = run_testbed(*args)
    assert result.returncode != 0
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_non_root_is_refused_with_one_line() -> None:
    # A copy the other user can read: the checkout (and pytest's tmp_path) may be 0700.
    with tempfile.TemporaryDirectory() as directory:
        Path(directory).chmod(0o755)
        copy = Path(directory) / "testbed"
        copy.write_bytes(Path(TESTBED).read_bytes())
        copy.chmod(0o755)
        result = run_as_nobody(copy)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "testbed: must run as root (it mounts an overlay and boots systemd)"
    )


def run_as_nobody(copy: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
         str(copy), "run", "true"],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
