"""Which GPUs a starting session gets (host layer; no I/O).

Each session gets distinct GPUs, exclusively: a GPU is free when no session that is not over
holds it. Who holds what lives in the SessionTable (UserEntry.gpus), which the reaper rebuilds
after a restart from each running unit's HOSTD_GPUS (the unit is the one record; nothing else
is written). Its device nodes and variables are hostd.units.gpus's.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostd.config.gpus import GpuConfig
from hostd.units.errors import GpusNotConfigured, GpusUnavailable
from hostd.units.gpus import GpuGrant

__all__ = ["GPU_RETRY_AFTER_S", "allocate_gpus", "grant_for"]

GPU_RETRY_AFTER_S = 60  # a GPU frees when a session ends: minutes, not seconds, usually


def allocate_gpus(
    config: GpuConfig, count: int, held: Mapping[int, str], *, user: str
) -> tuple[int, ...]:
    """``count`` GPUs no session holds (``held``: GPU index -> its holder), lowest first."""
    if count == 0:
        return ()
    if count > config.count:
        listed = f"[gpus] lists {config.count}" if config.count else "no GPUs are configured"
        raise GpusNotConfigured(f"the session of {user} asks for {count} GPUs, and {listed}")
    free = [index for index in range(config.count) if index not in held]
    if len(free) < count:
        holders = ", ".join(f"GPU {index}: {name}" for index, name in sorted(held.items()))
        raise GpusUnavailable(
            f"no free GPU for the session of {user}: it asks for {count}, {len(free)} of "
            f"{config.count} free ({holders}); try again when a session ends",
            retry_after_s=GPU_RETRY_AFTER_S,
        )
    return tuple(free[:count])


def grant_for(config: GpuConfig, indices: tuple[int, ...]) -> GpuGrant | None:
    """The device nodes a session with these GPUs may open: theirs and the control nodes."""
    if not indices:
        return None
    nodes = [node for index in indices for node in config.devices[index]]
    return GpuGrant(indices, (*nodes, *config.control))
