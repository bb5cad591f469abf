"""GPUs of a session: what its unit gets for the GPUs it was given (pure layer; no I/O).

The admin lists each GPU's device nodes and the control nodes every GPU user needs
(hostd.config.gpus); the daemon picks distinct GPUs for a session (hostd.daemon.gpus). Here:

- the unit's device allowlist, ``DeviceAllow=`` (ref: systemd.resource-control(5)), for the
  given GPUs' nodes and the control nodes only. With ``isolate_devices`` (PrivateDevices=) the
  device policy is already closed (the pseudo devices alone), so every other GPU stays refused
  by the cgroup device controller (v1 devices.allow, v2 a BPF device program), whatever path a
  node is reached by;
- ``BindPaths=`` of those nodes onto themselves: PrivateDevices= gives the session a /dev of
  its own without them (measured on systemd 252: the bind puts the node into the private /dev,
  the allowlist lets it open);
- the variables CUDA and NVIDIA's container runtime read (CUDA_VISIBLE_DEVICES,
  NVIDIA_VISIBLE_DEVICES) and HOSTD_GPUS, from which a restarted daemon rebuilds who holds
  which GPU (the unit is the one record of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from hostd.units._text import show
from hostd.units.errors import InvalidOption
from hostd.units.model import Property
from hostd.units.paths import validate_path

__all__ = [
    "DEVICE_ACCESS",
    "GPU_ENVIRONMENT",
    "GpuGrant",
    "device_allow",
    "gpu_count",
    "gpu_environment",
    "gpu_properties",
    "gpus_of_environment",
]

DEVICE_ACCESS: Final = "rw"  # read and write, no mknod (systemd.resource-control(5))
HOSTD_GPUS: Final = "HOSTD_GPUS"
GPU_ENVIRONMENT: Final = (HOSTD_GPUS, "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
_ACCESS_LETTERS: Final = frozenset("rwm")


@dataclass(frozen=True)
class GpuGrant:
    """The GPUs given to one session: their indices (in the admin's list) and every device
    node it may open (the GPUs' own, then the control nodes)."""

    indices: tuple[int, ...]
    nodes: tuple[str, ...]


def gpu_count(value: object) -> int:
    """A number of GPUs: an integer of 0 or more (0: none)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOption(f"expected a whole number of GPUs, 0 or more, not {show(value)}")
    return value


def gpu_environment(indices: Sequence[int]) -> dict[str, str]:
    """The variables of a session given these GPUs (none for a session without)."""
    if not indices:
        return {}
    listed = ",".join(str(index) for index in indices)
    return dict.fromkeys(GPU_ENVIRONMENT, listed)


def gpus_of_environment(value: str | None) -> tuple[int, ...]:
    """The GPUs a unit holds, from its HOSTD_GPUS ("0,2"); () for none or a malformed value."""
    if not value:
        return ()
    parts = value.split(",")
    if not all(part.isdigit() for part in parts):
        return ()
    return tuple(int(part) for part in parts)


def gpu_properties(grant: GpuGrant, *, private_devices: bool) -> list[Property]:
    """DeviceAllow= for the grant's nodes, and with PrivateDevices= their binds into /dev."""
    if not grant.nodes:
        return []
    properties = [Property("DeviceAllow", "a(ss)", [(node, DEVICE_ACCESS) for node in grant.nodes])]
    if private_devices:
        # (source, destination, ignore a missing source, mount flags): a missing node fails
        # the start, as a GPU the session was promised and cannot have should.
        binds = [(node, node, False, 0) for node in grant.nodes]
        properties.append(Property("BindPaths", "a(ssbt)", binds))
    return properties


def _one_allow(entry: object) -> tuple[str, str]:
    if not isinstance(entry, str) or not entry.strip():
        raise InvalidOption(f"expected 'PATH [rwm]', not {show(entry)}")
    spec, _, access = entry.strip().partition(" ")
    access = access.strip() or "rwm"
    if not set(access) <= _ACCESS_LETTERS:
        raise InvalidOption(f"access {show(access)} is not made of r, w and m")
    if not spec.startswith(("char-", "block-")):
        spec = validate_path(spec)
    return spec, access


def device_allow(value: object) -> list[tuple[str, str]]:
    """DeviceAllow= as an admin writes it: "/dev/nvidia0 rw", "char-nvidia-uvm", or a list."""
    entries: Iterable[object] = [value] if isinstance(value, str) else _as_list(value)
    return [_one_allow(entry) for entry in entries]


def _as_list(value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        raise InvalidOption(f"expected a string or a list of strings, not {show(value)}")
    return list(value)
