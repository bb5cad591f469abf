"""The host's memory, total and available, from /proc/meminfo (host layer).

psutil.virtual_memory() reads the same file on Linux (MemTotal; MemAvailable, the kernel's own
estimate of what can be had without swapping); importing psutil cost the daemon 0.7 MiB of RSS
for these two numbers (issue 17's footprint, README's Benchmarks). psutil stays a dependency:
install.sh uses it from the daemon's environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["MEMINFO", "HostMemory", "host_memory", "parse_meminfo"]

MEMINFO: Final = Path("/proc/meminfo")
_KIB: Final = 1024


@dataclass(frozen=True)
class HostMemory:
    total: int  # bytes
    available: int  # bytes


def parse_meminfo(text: str) -> HostMemory:
    """MemTotal and MemAvailable (bytes) of a /proc/meminfo text. Kernels before 3.14 have no
    MemAvailable: MemFree + Buffers + Cached then, as psutil does."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            fields[name] = int(value[0]) * _KIB
    if "MemTotal" not in fields:
        raise ValueError("no MemTotal in /proc/meminfo")
    available = fields.get("MemAvailable")
    if available is None:
        available = sum(fields.get(name, 0) for name in ("MemFree", "Buffers", "Cached"))
    return HostMemory(total=fields["MemTotal"], available=available)


def host_memory(path: Path = MEMINFO) -> HostMemory:
    return parse_meminfo(path.read_text())
