"""The ``[gpus]`` section: each GPU's device nodes and the control nodes all GPU users need.

    [gpus]
    devices = [["/dev/nvidia0"], ["/dev/nvidia1"]]    # GPU 0, GPU 1 (one list of nodes each;
                                                      # "/dev/nvidia0" alone is one node)
    control = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]

A GPU's index is its place in ``devices`` (CUDA_VISIBLE_DEVICES is set to the indices a
session is given). Parsed with the rest of the config, every problem added as (dotted key,
message); whether the nodes are character devices on this machine is hostctl check-config's
to say (hostd.cli.verify_host), as this module does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostd.config.document import Problems
from hostd.units import validate_path
from hostd.units.errors import InvalidInput

__all__ = ["GPU_KEYS", "GpuConfig", "parse_gpus"]

GPU_KEYS = ("devices", "control")


@dataclass(frozen=True)
class GpuConfig:
    """The GPUs, each a tuple of device nodes (index = place), and the control nodes."""

    devices: tuple[tuple[str, ...], ...] = ()
    control: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.devices)

    def nodes(self) -> tuple[str, ...]:
        """Every node named, the GPUs' then the control nodes."""
        return (*(node for gpu in self.devices for node in gpu), *self.control)


def _paths(value: object, where: str, problems: Problems) -> tuple[str, ...] | None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        problems.append((where, "expected a device node's path or a non-empty list of them"))
        return None
    paths: list[str] = []
    for item in items:
        try:
            paths.append(validate_path(item))
        except InvalidInput as exc:
            problems.append((where, exc.message))
            return None
    return tuple(paths)


def parse_gpus(table: object, problems: Problems) -> GpuConfig:
    if not isinstance(table, dict):
        problems.append(("gpus", "expected a [gpus] table with devices and control"))
        return GpuConfig()
    for key in table:
        if key not in GPU_KEYS:
            problems.append((f"gpus.{key}", "unknown option; [gpus] has devices, control"))
    named: list[tuple[str, tuple[str, ...]]] = []  # (dotted key, nodes) of each GPU
    raw_devices = table.get("devices", [])
    if not isinstance(raw_devices, list):
        problems.append(("gpus.devices", "expected a list: one entry (a list of nodes) per GPU"))
        raw_devices = []
    for index, gpu in enumerate(raw_devices):
        nodes = _paths(gpu, f"gpus.devices[{index}]", problems)
        if nodes is not None:
            named.append((f"gpus.devices[{index}]", nodes))
    control: tuple[str, ...] = ()
    if "control" in table:
        control = _paths(table["control"], "gpus.control", problems) or ()
        if control and not raw_devices:
            problems.append(("gpus.control", "control nodes without any GPU in gpus.devices"))
    seen: dict[str, str] = {}
    for where, nodes in [*named, ("gpus.control", control)]:
        for node in nodes:
            if node in seen and seen[node] != where:
                problems.append((where, f"{node} is also in {seen[node]}: a node is one GPU's"))
            seen.setdefault(node, where)
    return GpuConfig(tuple(nodes for _, nodes in named), control)
