"""GPUs without a GPU: stand-in device nodes, and what sessions can open of them (issue 15).

Shared by the systemd tier (packaging/testbed: cgroup v1, the devices controller's
devices.allow) and the real-host tier (packaging/vm: cgroup v2, a BPF device program), which
enforce DeviceAllow= by different kernel means.

Each stand-in GPU is a real character device under a name of the admin's list, with numbers
that the session's closed device policy (PrivateDevices=) does not allow on its own and that any
account may open where no device policy applies (checked first, outside any session, so a
refusal is the device controller's and not a file permission's): 1:11 (/dev/kmsg, opened
write-only: no capability asked), 10:229 (/dev/fuse), and 10:200 (/dev/net/tun) for the control
node. Nothing is written to them: they are opened and closed.

Each node exists twice: under /dev, where the admin's list names it (PrivateDevices= hides it
unless hostd binds it in), and a copy of the same numbers outside /dev, which every session
sees: the attack opens the other session's GPU there, where only the device controller stands
in the way.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.hostd.daemon.systemd.conftest import PROBE, write_plan

# (major, minor) of the stand-ins: GPU 0, GPU 1, the control node.
GPU_NUMBERS = ((1, 11), (10, 229))
CONTROL_NUMBERS = (10, 200)
OPEN = (
    "import errno, os, sys\n"
    "try:\n"
    "    os.close(os.open(sys.argv[1], os.O_WRONLY))\n"
    "    print('ok')\n"
    "except OSError as exc:\n"
    "    print(errno.errorcode[exc.errno])\n"
)
OPENER = ["/usr/bin/python3", "-c", OPEN]


class DaemonLike(Protocol):
    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]: ...
    def kill9(self) -> None: ...
    def start(self) -> None: ...


@dataclass(frozen=True)
class StandIns:
    """The stand-in nodes: per GPU its /dev node and its copy outside /dev; the control node."""

    dev: tuple[str, ...]
    copies: tuple[str, ...]
    control: str

    def gpus_section(self) -> str:
        devices = json.dumps([[node] for node in self.dev])
        return f"[gpus]\ndevices = {devices}\ncontrol = {json.dumps([self.control])}\n"


@contextmanager
def stand_in_gpus() -> Iterator[StandIns]:
    tag = uuid.uuid4().hex[:8]
    dev = [f"/dev/hostd-test-gpu{i}-{tag}" for i in range(len(GPU_NUMBERS))]
    control = f"/dev/hostd-test-gpuctl-{tag}"
    # /opt, not /tmp or /srv/hostd-test: no session's private /tmp or read-only bind hides it.
    copies_dir = Path(f"/opt/hostd-test-gpus-{tag}")
    copies_dir.mkdir(mode=0o755)
    copies = [str(copies_dir / f"gpu{i}") for i in range(len(GPU_NUMBERS))]
    made: list[str] = []
    try:
        for path, (major, minor) in [
            *zip(dev, GPU_NUMBERS, strict=True),
            *zip(copies, GPU_NUMBERS, strict=True),
            (control, CONTROL_NUMBERS),
        ]:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            # Past the umask: any account may open it by its mode.
            Path(path).chmod(0o666)
            made.append(path)
        yield StandIns(tuple(dev), tuple(copies), control)
    finally:
        for path in made:
            Path(path).unlink(missing_ok=True)
        shutil.rmtree(copies_dir, ignore_errors=True)


def policy(nodes: StandIns, extra: str = "") -> str:
    return (
        f'[session]\ncmd = ["/usr/bin/python3", "{PROBE}", "{{PORT}}"]\nmem_limit = "256M"\n'
        f"isolate_devices = true\nisolate_tmp = true\n{extra}\n{nodes.gpus_section()}"
    )


def opens_outside(user: str, path: str) -> str:
    """What opening the node gives the user outside any session (no device policy)."""
    out = subprocess.run(
        ["runuser", "-u", user, "--", *OPENER, path], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def open_plan(nodes: StandIns) -> dict[str, Any]:
    """The probe's plan: open every node (by key) and print the GPU variables."""
    run: dict[str, list[str]] = {}
    for i, (dev, copy) in enumerate(zip(nodes.dev, nodes.copies, strict=True)):
        run[f"dev{i}"] = [*OPENER, dev]
        run[f"copy{i}"] = [*OPENER, copy]
    run["control"] = [*OPENER, nodes.control]
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        run[name] = ["/usr/bin/printenv", name]
    return {"run": run}


def start(d: DaemonLike, user: str) -> dict[str, Any]:
    status, body = d.api("POST", f"/v1/sessions/{user}")
    assert status in (200, 201), body
    return body  # type: ignore[no-any-return]


def seen_by(view: dict[str, Any]) -> dict[str, str]:
    """What the session's probe found: key -> "ok", an errno name, or a variable's value."""
    url = view["url"].split("/user/")[0] + "/report"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (http on loopback)
        report = json.loads(response.read())
    return {key: value["stdout"] for key, value in report.items() if isinstance(value, dict)}


def each_opens_its_own_and_is_refused_the_others(
    daemon: Callable[[str], DaemonLike], make_user: Callable[..., str]
) -> None:
    with stand_in_gpus() as nodes:
        first, second = make_user(), make_user()
        # Where no device policy applies, each node opens for an ordinary account: a refusal
        # below is the device controller's doing, not the file's mode.
        for user in (first, second):
            for path in (*nodes.copies, nodes.control):
                assert opens_outside(user, path) == "ok", path
        d = daemon(policy(nodes, "gpus = 1"))
        for user in (first, second):
            write_plan(user, open_plan(nodes))
        seen = [seen_by(start(d, first)), seen_by(start(d, second))]
    # The first start gets GPU 0, the second GPU 1: each its own, never the other's.
    for mine, theirs, found in ((0, 1, seen[0]), (1, 0, seen[1])):
        assert found[f"dev{mine}"] == "ok", found  # bound into the private /dev, allowed
        assert found[f"copy{mine}"] == "ok", found
        assert found["control"] == "ok", found
        # The other's node is not in the private /dev, and its copy, which the session sees,
        # is refused by the device controller (EPERM; a mode would say EACCES).
        assert found[f"dev{theirs}"] == "ENOENT", found
        assert found[f"copy{theirs}"] == "EPERM", found
        assert found["CUDA_VISIBLE_DEVICES"] == found["NVIDIA_VISIBLE_DEVICES"] == str(mine)


def a_gpu_is_held_until_stop_and_after_a_restart(
    daemon: Callable[[str], DaemonLike], make_user: Callable[..., str]
) -> None:
    with stand_in_gpus() as nodes:
        users = [make_user() for _ in range(3)]
        profiles = "".join(f"[profiles.users.{user}]\ngpus = 1\n" for user in users)
        d = daemon(policy(nodes) + profiles)
        first, second, third = users
        for user in (first, second):
            start(d, user)
        status, body = d.api("POST", f"/v1/sessions/{third}")
        assert status == 429, body
        assert body["code"] == "gpus-unavailable", body
        assert f"no free GPU for the session of {third}" in body["message"], body
        assert f"GPU 0: {first}" in body["message"] and f"GPU 1: {second}" in body["message"]
        # A restarted daemon rebuilds who holds what from the units alone.
        d.kill9()
        d.start()
        status, body = d.api("POST", f"/v1/sessions/{third}")
        assert (status, body["code"]) == (429, "gpus-unavailable"), body
        status, _ = d.api("DELETE", f"/v1/sessions/{first}")
        assert status == 200
        write_plan(third, open_plan(nodes))
        found = seen_by(start(d, third))
    # The stopped session's GPU 0, and only it, went to the third.
    assert (found["dev0"], found["copy1"], found["CUDA_VISIBLE_DEVICES"]) == ("ok", "EPERM", "0")
