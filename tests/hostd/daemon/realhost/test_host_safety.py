"""Proofs by effect on a real Debian 12 host (cgroup v2, systemd the real PID 1): a kernel over
mem_limit dies alone and is counted, mem_limit holds with swap on, and the cloud metadata
address is out of reach. Run in packaging/vm: ``-m real_host tests/hostd/daemon/realhost``.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostd.daemon.realhost.conftest import KERNELS_PROBE
from tests.hostd.daemon.systemd.conftest import PROBE, Daemon, unit_property, write_plan
from tests.hostd.daemon.systemd.test_auth import hostd_messages

pytestmark = pytest.mark.real_host

MakeDaemon = Callable[..., Daemon]
MakeUser = Callable[..., str]
OOM_REASON = "killed: out of memory (MemoryMax reached)"
SIGKILLED = -9  # Popen.returncode of a child killed by SIGKILL
SWAP_FILE = Path("/hostd-test.swap")
# TCG runs the guest ~5x slower than the host (MACHINE.md): waits are generous.
WAIT_S = 60.0


def policy(cmd: Path, mem_limit: str, extra: str = "") -> str:
    argv = f'["/usr/bin/python3", "{cmd}", "{{PORT}}"]'
    return f'[session]\ncmd = {argv}\nmem_limit = "{mem_limit}"\n{extra}'


def start(d: Daemon, user: str) -> dict[str, Any]:
    status, body = d.api("POST", f"/v1/sessions/{user}")
    assert status in (200, 201), body
    return body  # type: ignore[no-any-return]


def report(view: dict[str, Any]) -> dict[str, Any]:
    url = view["url"].split("/user/")[0] + "/report"
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http on loopback)
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_for(what: Callable[[], Any], why: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"not within {WAIT_S:g} s: {why}")


def journal(unit: str) -> str:
    return subprocess.run(
        ["journalctl", "-u", unit, "-o", "cat", "--no-pager"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def session(d: Daemon, user: str) -> dict[str, Any]:
    status, view = d.api("GET", f"/v1/sessions/{user}")
    assert status == 200, view
    return view  # type: ignore[no-any-return]


# -- (a) a kernel over mem_limit dies alone, and is counted --------------------------------


def test_a_kernel_over_mem_limit_dies_alone_and_is_counted(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon(policy(KERNELS_PROBE, "128M"))
    user = make_user({"kernels": 2, "hog_kernel": 1, "hog_mib": 400, "hog_after_s": 2})
    view = start(d, user)
    assert view["state"] == "running", view
    unit = f"jupyter-{user}.service"
    assert unit_property(unit, "OOMPolicy") == "continue"
    main_pid = unit_property(unit, "MainPID")
    first = report(view)
    healthy, hog = first["kernels"]

    def hog_killed() -> dict[str, Any] | None:
        seen = report(view)
        return seen if seen["kernels"][1]["returncode"] is not None else None

    after = wait_for(hog_killed, "the kernel that allocates 400 MiB under 128M is killed")
    assert after["kernels"][1] == {"pid": hog["pid"], "returncode": SIGKILLED}
    # The other kernel and the server (the session's main process) live on.
    assert after["kernels"][0] == {"pid": healthy["pid"], "returncode": None}
    assert after["main_pid"] == first["main_pid"]
    assert unit_property(unit, "MainPID") == main_pid
    assert unit_property(unit, "ActiveState") == "active"
    assert session(d, user)["state"] == "running"
    # The kill is an event users and admins see: usage, hostctl status, metrics, the log.
    status, usage = d.api("GET", f"/v1/sessions/{user}/usage")
    assert status == 200 and usage["oom_kills"] >= 1, usage
    shown = d.hostctl("status", user)
    assert shown.returncode == 0, shown.stderr
    assert f"{user}: kernel killed: out of memory (" in shown.stdout, shown.stdout
    metric = f'hostd_session_oom_kills_total{{user="{user}"}}'  # a counter
    lines = [line for line in d.hostctl_raw_metrics().splitlines() if line.startswith(metric)]
    assert lines and float(lines[0].split()[-1]) >= 1, lines
    # The daemon logs to journald where there is one (a real host): its entry about the user.
    wait_for(
        lambda: any("kernel killed" in line for line in hostd_messages(user)),
        "the daemon logs the kill",
    )
    # A session stopped after a kernel died alone ended by the stop, not by the OOM kill.
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    ended = session(d, user)
    assert ended["state"] == "stopped" and ended["reason"] != OOM_REASON, ended
    assert ended["result"] != "oom-kill", ended


def test_a_server_over_mem_limit_still_fails_as_oom_kill(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon(policy(PROBE, "128M"))
    user = make_user({"hog_after_s": 2, "hog_mib": 400})  # the main process itself
    assert start(d, user)["state"] == "running"
    ended = wait_for(
        lambda: (v := session(d, user))["state"] == "failed" and v, "the session fails"
    )
    # OOMPolicy=continue: systemd's own Result is "signal"; hostd knows it for an OOM kill.
    assert (ended["result"], ended["reason"]) == ("oom-kill", OOM_REASON), ended


# -- (b) mem_limit caps swap too ----------------------------------------------------------


@pytest.fixture
def swap_on() -> Iterator[Path]:
    """A 1 GiB swap file on the host, for the test's duration."""
    subprocess.run(["fallocate", "-l", "1G", str(SWAP_FILE)], check=True)
    try:
        SWAP_FILE.chmod(0o600)
        subprocess.run(["mkswap", str(SWAP_FILE)], check=True, capture_output=True)
        subprocess.run(["swapon", str(SWAP_FILE)], check=True)
        assert str(SWAP_FILE) in Path("/proc/swaps").read_text()
        yield SWAP_FILE
    finally:
        subprocess.run(["swapoff", str(SWAP_FILE)], check=False)
        SWAP_FILE.unlink(missing_ok=True)


def test_with_swap_on_mem_limit_still_kills_a_256m_allocation_under_64m(
    daemon: MakeDaemon, make_user: MakeUser, swap_on: Path
) -> None:
    d = daemon(policy(PROBE, "64M"))
    user = make_user({"sleep_s": 1, "hog_mib": 256})
    status, body = d.api("POST", f"/v1/sessions/{user}")
    assert (status, body["code"]) == (502, "spawn-failed"), body
    assert "out of memory" in body["message"], body
    ended = session(d, user)
    assert (ended["result"], ended["reason"]) == ("oom-kill", OOM_REASON), ended


def test_with_allow_swap_the_same_allocation_swaps_and_lives(
    daemon: MakeDaemon, make_user: MakeUser, swap_on: Path
) -> None:
    """The control: the swap file works, and only MemorySwapMax=0 made the difference."""
    d = daemon(policy(PROBE, "64M", "allow_swap = true\n"))
    # After the server is up, so that slow swapping (TCG) is not counted in the start.
    user = make_user({"hog_after_s": 1, "hog_mib": 256})
    unit = f"jupyter-{user}.service"
    assert start(d, user)["state"] == "running"
    assert unit_property(unit, "MemorySwapMax") == "infinity"
    wait_for(lambda: "allocated 256 MiB" in journal(unit), "the 256 MiB allocation succeeds")
    control_group = unit_property(unit, "ControlGroup")
    swapped = int(Path(f"/sys/fs/cgroup{control_group}/memory.swap.current").read_text())
    assert swapped > 128 * 1024**2, swapped  # most of it went to swap
    assert session(d, user)["state"] == "running"
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200


# -- (c) the cloud metadata address is out of reach ----------------------------------------


METADATA = "169.254.169.254:80"


def test_the_metadata_address_is_refused_by_the_firewall_and_loopback_works(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    """IPAddressDeny= drops a packet to 169.254.169.254 as it leaves the session: a UDP send
    fails at once with EPERM (a TCP connect would only wait for its dropped SYN: the first
    VM run read that timeout). The session's own loopback still works."""
    d = daemon(policy(KERNELS_PROBE, "256M"))
    user = make_user({})
    view = start(d, user)
    port = int(view["url"].split(":")[2].split("/")[0])
    write_plan(user, {"send": [["169.254.169.254", 80]], "connect": [["127.0.0.1", port]]})
    seen = report(view)
    assert (seen["send"], seen["connect"]) == (
        {METADATA: "EPERM"},
        {f"127.0.0.1:{port}": "ok"},
    ), seen
    assert "169.254.169.254" in unit_property(f"jupyter-{user}.service", "IPAddressDeny")
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200


def test_an_empty_deny_list_turns_the_firewall_off(daemon: MakeDaemon, make_user: MakeUser) -> None:
    """The control: without IPAddressDeny= the same datagram leaves (QEMU's user network has a
    route to it), so EPERM above is the firewall's."""
    d = daemon(policy(KERNELS_PROBE, "256M", "ip_address_deny = []\n"))
    user = make_user({"send": [["169.254.169.254", 80]]})
    view = start(d, user)
    assert report(view)["send"] == {METADATA: "ok"}
    assert unit_property(f"jupyter-{user}.service", "IPAddressDeny") == ""
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
