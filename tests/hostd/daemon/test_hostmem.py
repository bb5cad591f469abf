"""hostd.daemon.hostmem: the host's memory as psutil reads it, without importing psutil."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from hostd.daemon.hostmem import HostMemory, host_memory, parse_meminfo

ROOT = Path(__file__).resolve().parents[3]
GIB = 2**30


def test_total_and_available_are_psutil_s() -> None:
    ours, theirs = host_memory(), psutil.virtual_memory()
    assert ours.total == theirs.total
    assert abs(ours.available - theirs.available) < GIB // 8  # read a moment apart


def test_a_kernel_without_memavailable_counts_free_buffers_and_cached() -> None:
    text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\nSwapTotal: 0 kB\n"
    assert parse_meminfo(text) == HostMemory(total=1000 * 1024, available=420 * 1024)


def test_a_text_without_memtotal_is_refused() -> None:
    with pytest.raises(ValueError, match="MemTotal"):
        parse_meminfo("MemFree: 100 kB\n")


def test_the_daemon_s_session_manager_does_not_load_psutil() -> None:
    probe = "import json, sys, hostd.daemon.server; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert [m for m in json.loads(result.stdout) if m.split(".")[0] == "psutil"] == []
