"""Shared data in real sessions: `[session] shared_paths` is read-only whatever its permissions,
and `[shared] scratch` is made by the daemon at start and writable by its group only, also
under `readonly_paths = ["/"]`."""

from __future__ import annotations

import grp
import json
import shutil
import stat
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostd.daemon.systemd.conftest import PROBE

pytestmark = pytest.mark.systemd


@pytest.fixture
def places() -> Iterator[tuple[Path, Path, str]]:
    tag = uuid.uuid4().hex[:8]
    data, scratch, group = (
        Path(f"/srv/hostd-data-{tag}"),
        Path(f"/srv/hostd-scratch-{tag}"),
        f"lab{tag}",
    )
    data.mkdir(parents=True)
    (data / "notes.txt").write_text("shared\n")
    data.chmod(0o777)  # writable by permission: only the read-only bind can refuse a write
    subprocess.run(["groupadd", group], check=True)
    yield data, scratch, group
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run(["groupdel", group], check=False)


def report(daemon: Any, user: str) -> dict[str, Any]:
    started = daemon.hostctl("start", user, "--json")
    assert started.returncode == 0, started.stderr
    url = json.loads(started.stdout)["url"]
    with urllib.request.urlopen(f"{url.split('/user/')[0]}/report", timeout=10) as response:  # noqa: S310 (http only)
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_shared_paths_are_read_only_and_scratch_is_the_groups(
    daemon: Any, make_user: Any, places: tuple[Path, Path, str]
) -> None:
    data, scratch, group = places
    d = daemon(
        f"""
[session]
cmd = ["/usr/bin/python3", "{PROBE}", "{{PORT}}"]
readonly_paths = ["/"]
shared_paths = ["{data}"]

[shared]
scratch = "{scratch}"
scratch_group = "{group}"
"""
    )
    # Made by the daemon at start: root:<group>, setgid and sticky.
    st = scratch.stat()
    assert stat.S_IMODE(st.st_mode) == 0o3775 and st.st_uid == 0
    assert st.st_gid == grp.getgrnam(group).gr_gid

    plan = {"writes": {"scratch": f"{scratch}/from-member", "data": f"{data}/x"}}
    member = make_user(plan, groups=group)
    seen = report(d, member)
    assert seen["scratch"] == "ok"
    assert seen["data"] != "ok"  # read-only inside, though 0777 outside
    made = scratch / "from-member"
    assert made.stat().st_gid == st.st_gid  # setgid: the group's, not the member's own

    outsider = make_user({"writes": {"scratch": f"{scratch}/from-outsider"}})
    assert report(d, outsider)["scratch"] == "PermissionError"
    assert (data / "notes.txt").read_text() == "shared\n"
