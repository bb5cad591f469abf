"""Proof that the testbed is a real systemd: limits are enforced, isolation holds, the journal
records. Each test fails if the property breaks; limits are shown by their effect.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.systemd


@pytest.fixture
def unit() -> Iterator[str]:
    """A fresh transient unit name, stopped and forgotten afterwards."""
    name = f"hostd-proof-{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["systemctl", "stop", f"{name}.service"], capture_output=True, check=False)
    subprocess.run(
        ["systemctl", "reset-failed", f"{name}.service"], capture_output=True, check=False
    )


def systemd_run(unit: str, *props: str, code: str) -> subprocess.CompletedProcess[str]:
    argv = ["systemd-run", "--wait", "--pipe", "--quiet", f"--unit={unit}", "--collect"]
    argv += [f"--property={p}" for p in props]
    argv += [sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def allocate(mib: int) -> str:
    # b"x" * n writes every page, so the memory is really charged to the cgroup.
    return f"data = b'x' * ({mib} * 1024 * 1024); print(len(data) // 2**20)"


def test_memory_max_kills_a_unit_that_allocates_over_it(unit: str) -> None:
    result = systemd_run(unit, "MemoryMax=64M", "MemorySwapMax=0", code=allocate(256))
    assert result.returncode != 0
    assert "256" not in result.stdout  # it never got to print


def test_memory_max_lets_a_unit_under_it_finish(unit: str) -> None:
    result = systemd_run(unit, "MemoryMax=64M", "MemorySwapMax=0", code=allocate(16))
    assert (result.returncode, result.stdout.strip()) == (0, "16"), result.stderr


def test_cpu_quota_holds_a_busy_loop_to_its_share(unit: str) -> None:
    code = (
        "import os, time\n"
        "start = time.monotonic()\n"
        "while time.monotonic() - start < 3.0: pass\n"
        "t = os.times()\n"
        "print((t.user + t.system) / (time.monotonic() - start))\n"
    )
    result = systemd_run(unit, "CPUQuota=20%", code=code)
    assert result.returncode == 0, result.stderr
    share = float(result.stdout)
    assert 0.10 <= share <= 0.25, f"busy loop got {share:.0%} of a core under CPUQuota=20%"


def test_private_tmp_hides_the_units_tmp_from_the_system(unit: str) -> None:
    marker = f"/tmp/hostd-proof-{uuid.uuid4().hex}"
    code = f"open({marker!r}, 'w').write('x'); print(open({marker!r}).read())"
    result = systemd_run(unit, "PrivateTmp=yes", code=code)
    assert (result.returncode, result.stdout.strip()) == (0, "x"), result.stderr
    assert not Path(marker).exists()


def test_a_line_the_unit_prints_is_in_the_journal(unit: str) -> None:
    token = f"hostd-proof-line-{uuid.uuid4().hex}"
    result = subprocess.run(
        ["systemd-run", "--wait", "--quiet", f"--unit={unit}", "--collect", "echo", token],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["journalctl", "-u", f"{unit}.service", "-o", "json", "--no-pager"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        messages = [json.loads(line).get("MESSAGE") for line in out.splitlines() if line]
        if token in messages:
            return
        time.sleep(0.1)
    pytest.fail(f"{token} not in the journal of {unit}: {messages}")
