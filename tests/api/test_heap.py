"""hostd.api.heap: the daemon's and the hub's free heap pages go back to the kernel (RSS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# ~40 MiB of 2 kB objects (malloc's heap, not mmap), every 50th kept so that the heap's top
# stays in use and glibc cannot give the rest back by itself; then RSS before and after.
_PROBE = """
import asyncio, json, sys
from hostd.api import heap

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4

def fragmented():
    objects = [bytes(2000) for _ in range(20000)]
    return objects[::50]

async def trimmed_by_the_task():
    task = asyncio.create_task(heap.trim_heap_forever(0.01))
    await asyncio.sleep(0.2)
    task.cancel()

kept = fragmented()
before = rss_kib()
released = heap.malloc_trim()
after = rss_kib()
kept += fragmented()
before_task = rss_kib()
asyncio.run(trimmed_by_the_task())
after_task = rss_kib()
print(json.dumps([released, before, after, before_task, after_task]))
"""


def run_probe() -> list[int]:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # as the unit runs the daemon
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    values: list[int] = json.loads(result.stdout)
    return values


def test_freed_heap_pages_leave_the_rss() -> None:
    released, before, after, before_task, after_task = run_probe()
    assert released
    assert before - after > 20 * 1024  # of ~39 MiB freed, in KiB
    assert before_task - after_task > 20 * 1024  # the daemon's task does the same
