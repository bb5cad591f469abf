"""The ``[shared]`` section: a writable scratch directory every session may use.

Two kinds of shared data reach sessions. Read-only data is ``[session] shared_paths``, bound
read-only into every session (units/ builds that). A writable scratch directory is this
section's::

    [shared]
    scratch = "/srv/scratch"     # unset: none
    scratch_group = "users"      # members may write there

hostd.config adds the scratch directory to every session's ReadWritePaths=, so it stays
writable under ``readonly_paths = ["/"]``. Making it is the daemon's business
(hostd.daemon.scratch.ensure_scratch). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hostd.config.document import Problems
from hostd.units._text import show
from hostd.units.checks import check_group_name, check_path
from hostd.units.errors import InvalidInput, InvalidPath

__all__ = ["DEFAULT_SCRATCH_GROUP", "SHARED_KEYS", "SharedConfig", "parse_shared"]

SHARED_KEYS: Final = ("scratch", "scratch_group")
# Debian's and Ubuntu's group for "ordinary users" (gid 100).
DEFAULT_SCRATCH_GROUP: Final = "users"


@dataclass(frozen=True)
class SharedConfig:
    """The ``[shared]`` section; scratch None means no scratch directory."""

    scratch: Path | None = None
    scratch_group: str = DEFAULT_SCRATCH_GROUP


def _scratch(value: object) -> Path:
    path = check_path(value)
    # readwrite_paths expand {USERNAME}; one directory for everyone has no placeholders.
    if "{" in str(path) or "}" in str(path):
        raise InvalidPath(f"expected one directory without placeholders, not {show(value)}")
    if path == Path("/"):
        raise InvalidPath("expected a directory of its own, not /")
    return path


def parse_shared(table: object, problems: Problems) -> SharedConfig:
    """The ``[shared]`` table as a SharedConfig; each problem is added as (dotted key, message)."""
    if not isinstance(table, dict):
        problems.append(("shared", f"expected a table [shared], not {show(table)}"))
        return SharedConfig()
    scratch: Path | None = None
    group = DEFAULT_SCRATCH_GROUP
    for key, value in table.items():
        try:
            if key == "scratch":
                scratch = _scratch(value)
            elif key == "scratch_group":
                group = check_group_name(value)
            else:
                problems.append((f"shared.{key}", f"unknown key; known: {', '.join(SHARED_KEYS)}"))
        except InvalidInput as exc:
            problems.append((f"shared.{key}", exc.message))
    return SharedConfig(scratch=scratch, scratch_group=group)
