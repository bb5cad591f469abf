"""`hostctl check-config`/`verify` on [gpus]: every node listed is a character device here.

judge_gpus is pure (what each path was found to be, in, a Check out); gpu_checks looks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from hostd.cli.verify import Check
from hostd.config.gpus import GpuConfig

__all__ = ["gpu_checks", "judge_gpus", "node_kind"]


def node_kind(path: str) -> str:
    """What is at path: "char 195:0", "missing", or what else it is ("a regular file")."""
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISCHR(info.st_mode):
        return f"char {os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
    if stat.S_ISBLK(info.st_mode):
        return "a block device"
    if stat.S_ISDIR(info.st_mode):
        return "a directory"
    return "a regular file" if stat.S_ISREG(info.st_mode) else "not a device"


def judge_gpus(config: GpuConfig, kinds: Mapping[str, str]) -> list[Check]:
    """One check of the [gpus] nodes: ok when each is a character device (none listed: none)."""
    if not config.count:
        return []
    wrong = [
        f"{node} is {kinds[node]}" for node in config.nodes() if not kinds[node].startswith("char ")
    ]
    if wrong:
        return [
            Check(
                "GPUs",
                "fail",
                "; ".join(wrong),
                "[gpus] lists character devices (ls -l /dev/nvidia*); load the driver "
                "(nvidia-modprobe -u -c=0) or correct the path",
            )
        ]
    gpus = "GPU" if config.count == 1 else "GPUs"
    return [
        Check(
            "GPUs",
            "ok",
            f"{config.count} {gpus}, {len(config.control)} control nodes: every node a character "
            "device",
        )
    ]


def gpu_checks(config: GpuConfig) -> list[Check]:
    return judge_gpus(config, {node: node_kind(node) for node in config.nodes()})
