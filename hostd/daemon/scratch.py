"""The scratch directory that ``[shared]`` names, as the daemon makes it (hostd/ layer).

hostd.config.shared reads the ``[shared]`` section and puts the directory in every session's
ReadWritePaths=. ``ensure_scratch`` is the I/O: the daemon calls it once at start-up to make
a missing directory, because systemd refuses to start a unit whose ReadWritePaths= names a
path that does not exist.
"""

from __future__ import annotations

import grp
import logging
import os
from typing import Final

from hostd.config.shared import SharedConfig

__all__ = ["SCRATCH_MODE", "ensure_scratch"]

log = logging.getLogger("hostd")

# setgid: files made there belong to the group, not to each person's own group; sticky (as
# /tmp): a member may add and read, but not delete or rename what another member made.
SCRATCH_MODE: Final = 0o3775


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
