"""The ``[commands]`` section: named commands a start may pick instead of [session] cmd.

    [commands]                       # a caller may pick one by name ("command" in a start)
    singleuser = ["/opt/hostd/bin/hostd-session-exec", ".../jupyterhub-singleuser", ...]

Each command is checked as [session] cmd is (an absolute program, known placeholders), by
SessionPolicy itself. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from hostd.config.document import Problems
from hostd.units import SessionPolicy
from hostd.units.errors import InvalidInput

__all__ = ["COMMAND_NAME_MAX", "parse_commands"]

COMMAND_NAME_MAX = 64


def parse_commands(
    table: object, base: SessionPolicy | None, problems: Problems
) -> Mapping[str, tuple[str, ...]]:
    """Named commands, each checked as [session] cmd is (absolute program, placeholders);
    base is the [session] policy (None if it did not check out)."""
    if not isinstance(table, dict):
        problems.append(("commands", "expected a table of NAME = [argv...]"))
        return MappingProxyType({})
    commands: dict[str, tuple[str, ...]] = {}
    for name, argv in table.items():
        where = f"commands.{name}"
        if (
            not (0 < len(name) <= COMMAND_NAME_MAX)
            or not name.replace("-", "").replace("_", "").isalnum()
        ):
            problems.append((where, "a command name is letters, digits, '-' and '_'"))
            continue
        try:
            checked = SessionPolicy(cmd=argv) if base is None else replace(base, cmd=argv)
        except InvalidInput as exc:
            problems.append((where, exc.message))
            continue
        commands[name] = checked.cmd
    return MappingProxyType(commands)
