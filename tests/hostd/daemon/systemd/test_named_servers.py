"""Named servers against a real systemd: several servers of one user, one slice, one share.

Each server is jupyter-<user>:<server>.service in the user's slice jupyter-<user>.slice, which
carries the user's total limits (hostd.units.servers); shown here by effect: two servers run
at once, together they cannot hold more memory than the slice's MemoryMax, a restarted daemon
finds them all, and the last stop leaves neither unit nor slice.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from tests.hostd.daemon.systemd.conftest import BASE_POLICY, unit_property, units_left, write_plan

pytestmark = pytest.mark.systemd

NAMED = BASE_POLICY + "named_server_limit = 2\n"


def _start(d: Any, user: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return d.hostctl("start", user, "--json", *extra)


def _started(d: Any, user: str, *extra: str) -> dict[str, Any]:
    result = _start(d, user, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _report(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url.split('/user/')[0]}/report", timeout=10) as response:  # noqa: S310 (http only)
        return json.loads(response.read())  # type: ignore[no-any-return]


def _slice_of(user: str) -> str:
    return f"jupyter-{user}.slice"


def _active(unit: str) -> str:
    done = subprocess.run(
        ["systemctl", "is-active", unit], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def test_two_servers_of_one_user_run_at_once_in_the_users_slice(daemon, make_user) -> None:
    d = daemon(NAMED)
    user = make_user({})
    default = _started(d, user)
    lab = _started(d, user, "--server", "lab")
    assert default["unit"] == f"jupyter-{user}.service"  # the default server as always
    assert "server" not in default
    assert (lab["unit"], lab["server"], lab["state"]) == (
        f"jupyter-{user}:lab.service",
        "lab",
        "running",
    )
    assert lab["url"].endswith(f"/user/{user}/lab/")
    assert default["url"].endswith(f"/user/{user}/")
    # Two processes of the user, each answering on its own address.
    uid = int(subprocess.check_output(["id", "-u", user]))
    assert _report(default["url"])["uid"] == uid
    assert _report(lab["url"])["uid"] == uid
    assert default["url"] != lab["url"]
    for unit in (default["unit"], lab["unit"]):
        assert unit_property(unit, "Slice") == _slice_of(user)
        assert _active(unit) == "active"
    # The user's slice holds the user's share, inside jupyter.slice.
    assert unit_property(_slice_of(user), "MemoryMax") == str(128 * 2**20)
    assert unit_property(_slice_of(user), "CPUQuotaPerSecUSec") == "500ms"
    cgroup = unit_property(lab["unit"], "ControlGroup")
    assert cgroup == f"/jupyter.slice/jupyter-{user}.slice/jupyter-{user}:lab.service"
    # Each its own token.
    status, first = d.api("GET", f"/v1/sessions/{user}/token")
    assert status == 200
    status, second = d.api("GET", f"/v1/sessions/{user}/token?server=lab")
    assert status == 200
    assert first["token"] != second["token"]
    # hostctl status names the server.
    table = d.hostctl("status").stdout
    assert any(line.split()[:2] == [f"{user}:lab", "running"] for line in table.splitlines())
    # A third named server is one too many (named_server_limit = 2 counts named ones).
    assert _started(d, user, "--server", "two")["state"] == "running"
    refused = _start(d, user, "--server", "three")
    assert refused.returncode != 0
    assert "[too-many-servers]" in refused.stderr
    assert f"jupyter-{user}:three.service" not in units_left()
    # Stops: the named ones go, the slice stays while the default server runs; then all go.
    for server in ("lab", "two"):
        assert d.hostctl("stop", user, "--server", server).returncode == 0
    assert _active(default["unit"]) == "active"
    assert _active(_slice_of(user)) == "active"
    assert d.hostctl("stop", user).returncode == 0
    deadline = time.monotonic() + 10
    while _slice_of(user) in units_left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [u for u in units_left() if user in u]


def test_two_servers_together_cannot_pass_the_users_slice_memory_max(daemon, make_user) -> None:
    # Each server may hold 128 MiB (its own MemoryMax); the user's slice, 128 MiB for both.
    # 80 MiB each: one server alone is fine, two together are 160 MiB, over the slice's max.
    d = daemon(NAMED)
    user = make_user({"hog_mib": 80})
    first = _started(d, user, "--server", "one")
    assert first["state"] == "running"
    second = _start(d, user, "--server", "two")
    time.sleep(1)  # a kill of the first server is seen by systemd within a moment
    alive = [
        server
        for server in ("one", "two")
        if _active(f"jupyter-{user}:{server}.service") in ("active", "activating")
    ]
    assert len(alive) == 1, (alive, second.stderr)
    # The kernel's OOM kill in the slice's memory cgroup, said so by hostd: either the start
    # of the second failed for it, or the first one ended of it.
    if second.returncode != 0:
        assert "out of memory" in second.stderr, second.stderr
    else:
        status, body = d.api("GET", f"/v1/sessions/{user}?server=one")
        assert status == 200
        assert body["result"] == "oom-kill", body
    # Control: the same two servers of two users (each its own slice) both run.
    other = make_user({"hog_mib": 80})
    write_plan(other, {"hog_mib": 80})
    for server in ("one", "two"):
        d.hostctl("stop", user, "--server", server)
    assert _started(d, other, "--server", "one")["state"] == "running"
    assert _started(d, user, "--server", "one")["state"] == "running"


def test_a_restarted_daemon_finds_every_server_and_the_last_stop_leaves_nothing(
    daemon, make_user
) -> None:
    d = daemon(NAMED)
    user = make_user({})
    _started(d, user)
    lab = _started(d, user, "--server", "lab")
    d.kill9()
    d.start()
    status, body = d.api("GET", "/v1/sessions")
    assert status == 200
    mine = sorted(
        (s["user"], s.get("server", ""), s["state"]) for s in body["sessions"] if s["user"] == user
    )
    assert mine == [(user, "", "running"), (user, "lab", "running")]
    status, view = d.api("GET", f"/v1/sessions/{user}?server=lab")
    assert (status, view["url"]) == (200, lab["url"])
    assert d.hostctl("stop", user, "--server", "lab").returncode == 0
    assert d.hostctl("stop", user).returncode == 0
    deadline = time.monotonic() + 10
    while [u for u in units_left() if user in u] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [u for u in units_left() if user in u]
    assert _active(_slice_of(user)) in ("inactive", "unknown")


def test_named_servers_off_by_default_refuse_a_server_name(daemon, make_user) -> None:
    d = daemon()
    user = make_user({})
    refused = _start(d, user, "--server", "lab")
    assert refused.returncode != 0
    assert "[too-many-servers]" in refused.stderr
    assert not [u for u in units_left() if user in u]
    # The default server as before: in jupyter.slice, no user slice made.
    session = _started(d, user)
    assert unit_property(session["unit"], "Slice") == "jupyter.slice"
    assert _slice_of(user) not in units_left()
