"""Shared data: the ``[shared]`` config section and the scratch directory it names (hostd/ layer).

Two kinds of shared data reach sessions. Read-only data is ``[session] shared_paths``, bound
read-only into every session (units/ builds that). A writable scratch directory is this
module's::

    [shared]
    scratch = "/srv/scratch"     # unset: none
    scratch_group = "users"      # members may write there

``parse_shared`` checks the section (pure, like hostd.profiles' parsers); hostd.config then
adds the scratch directory to every session's ReadWritePaths=, so it stays writable under
``readonly_paths = ["/"]``. ``ensure_scratch`` is the only I/O: the daemon calls it once at
start-up to make a missing directory, because systemd refuses to start a unit whose
ReadWritePaths= names a path that does not exist.
"""

from __future__ import annotations

import grp
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hostd.units import validate_path
from hostd.units._text import has_unsafe_char, show
from hostd.units.errors import InvalidInput

__all__ = ["SCRATCH_MODE", "SHARED_KEYS", "SharedConfig", "ensure_scratch", "parse_shared"]

log = logging.getLogger("hostd")

# setgid: files made there belong to the group, not to each person's own group; sticky (as
# /tmp): a member may add and read, but not delete or rename what another member made.
SCRATCH_MODE: Final = 0o3775
SHARED_KEYS: Final = ("scratch", "scratch_group")
# Debian's and Ubuntu's group for "ordinary users" (gid 100).
DEFAULT_SCRATCH_GROUP: Final = "users"


@dataclass(frozen=True)
class SharedConfig:
    """The ``[shared]`` section; scratch None means no scratch directory."""

    scratch: Path | None = None
    scratch_group: str = DEFAULT_SCRATCH_GROUP


def _scratch(value: object) -> Path:
    path = validate_path(value)
    # readwrite_paths expand {USERNAME}; one directory for everyone has no placeholders.
    if "{" in path or "}" in path:
        raise InvalidInput(f"expected one directory without placeholders, not {show(value)}")
    if path == "/":
        raise InvalidInput("expected a directory of its own, not /")
    return Path(path)


def _group(value: object) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 256
        or ":" in value
        or value != value.strip()
        or has_unsafe_char(value)
    ):
        raise InvalidInput(f"expected a group name like 'users', not {show(value)}")
    return value


def parse_shared(table: object, problems: list[tuple[str, str]]) -> SharedConfig:
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
                group = _group(value)
            else:
                problems.append((f"shared.{key}", f"unknown key; known: {', '.join(SHARED_KEYS)}"))
        except InvalidInput as exc:
            problems.append((f"shared.{key}", exc.message))
    return SharedConfig(scratch=scratch, scratch_group=group)


def ensure_scratch(shared: SharedConfig) -> None:
    """Make the scratch directory if it is missing: root:<scratch_group>, SCRATCH_MODE.

    An existing directory is left as it is (an admin may have chosen otherwise; `hostctl
    verify` says when it is not group-writable). Without the group it is made root's and
    0755, so sessions still start; the log and `hostctl verify` say why nobody can write.
    """
    path = shared.scratch
    if path is None or path.is_dir():
        return
    try:
        gid = grp.getgrnam(shared.scratch_group).gr_gid
    except KeyError:
        log.error(
            "scratch %s: group %r does not exist; made it root's and read-only to sessions",
            path,
            shared.scratch_group,
        )
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.chmod(0o755)  # mkdir's mode passes through the umask
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(path, 0, gid)
    path.chmod(SCRATCH_MODE)  # after mkdir: the umask would clear bits of mkdir's mode
    log.info(
        "made the scratch directory %s (root:%s, %o)", path, shared.scratch_group, SCRATCH_MODE
    )
