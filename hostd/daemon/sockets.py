"""Sessions on Unix sockets (host layer): each session's socket directory, and whose server
answers on a session's address (its socket, or its loopback port).

A session whose cmd uses {SOCKET} listens on ``<runtime_dir>/sessions/<user>/jupyter.sock``.
hostd makes that directory fresh at every start, as root: owned by the user (who binds the
socket there) and by the proxy group (the hub's identity), mode 2710. Nobody else can enter
it, list it, or put anything in it: no other account can take a session's address, as any
account could take a loopback port (issue 13, attack 3). The setgid bit gives the socket the
proxy group, and the server makes it 0660 (``--ServerApp.sock_mode=0660``), so the hub, and
only the hub, connects.

Ready means: the socket exists, is the user's, its listener (SO_PEERCRED) runs as the user in
the unit's cgroup, and it answers HTTP. Everything here blocks: callers run it in a thread.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import socket
import stat
import struct
from pathlib import Path
from typing import Final

from hostd.daemon.ports import ListenerCheck, SessionOwner, check_listener, pid_in_control_group
from hostd.units.errors import ConfigError

__all__ = [
    "SOCKET_DIR_MODE",
    "SOCKET_NAME",
    "Address",
    "answers_http",
    "check_address",
    "check_socket",
    "prepare_socket_dir",
    "proxy_gid",
    "remove_socket_dir",
    "socket_path",
]

# A loopback port, or the path of a Unix socket: where a session's server answers.
Address = int | Path

SOCKET_NAME: Final = "jupyter.sock"
# rwx for the user (binds the socket), x for the proxy group (reaches it by name, cannot list
# or add), nothing for others; setgid: the socket gets the proxy group.
SOCKET_DIR_MODE: Final = 0o2710
PROBE_TIMEOUT_S: Final = 1.0
_PEERCRED: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid


def socket_path(sessions_dir: Path, user: str) -> Path:
    """Where the user's session listens when its cmd uses {SOCKET} (a validated user name)."""
    return sessions_dir / user / SOCKET_NAME


def proxy_gid(group: str) -> int:
    """The proxy group's gid; ConfigError, saying what to do, when there is no such group."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        problem = (
            f"the group {group!r} does not exist, and sessions on Unix sockets need it: "
            f"groupadd --system {group}; usermod -aG {group} <the hub's user> (or give the "
            "session a {PORT} cmd)"
        )
        raise ConfigError([("daemon.proxy_group", problem)]) from None


def prepare_socket_dir(sessions_dir: Path, user: str, uid: int, gid: int) -> Path:
    """Make the user's socket directory afresh (anything left there from before goes): the
    user's and the proxy group's, SOCKET_DIR_MODE. The socket's path."""
    sessions_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    # Root's and not writable by others, whatever was there: nobody may swap a directory in.
    os.chown(sessions_dir, 0, 0)
    sessions_dir.chmod(0o755)
    directory = sessions_dir / user
    remove_socket_dir(sessions_dir, user)
    directory.mkdir(0o700)
    os.chown(directory, uid, gid)
    directory.chmod(SOCKET_DIR_MODE)  # after chown, which clears the setgid bit
    return directory / SOCKET_NAME


def remove_socket_dir(sessions_dir: Path, user: str) -> None:
    """Remove the user's socket directory and what is in it (a session that is over)."""
    directory = sessions_dir / user
    with contextlib.suppress(FileNotFoundError):
        if directory.is_symlink() or not directory.is_dir():
            directory.unlink()
        else:
            shutil.rmtree(directory)


def check_address(address: Address, owner: SessionOwner) -> ListenerCheck:
    """Who listens on a session's address: check_socket for a socket, check_listener for a
    port."""
    if isinstance(address, Path):
        return check_socket(address, owner)
    return check_listener(address, owner)


def check_socket(path: Path, owner: SessionOwner) -> ListenerCheck:
    """Who listens on the socket at ``path``: ``ours`` when the file is the user's and its
    listener runs as the user in the unit's cgroup; ``foreign`` when the file or the listener
    is another's; ``none`` while there is no listener yet (or the unit's cgroup is not known
    yet)."""
    try:
        info = path.lstat()
    except OSError:
        return ListenerCheck("none")
    if not stat.S_ISSOCK(info.st_mode):
        return ListenerCheck("none")  # only the user (or root) can put a file there
    if info.st_uid != owner.uid:
        return ListenerCheck("foreign", info.st_uid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(PROBE_TIMEOUT_S)
        try:
            conn.connect(str(path))
        except OSError:  # not listening yet (or any more)
            return ListenerCheck("none")
        pid, uid, _gid = _PEERCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        if uid != owner.uid:
            return ListenerCheck("foreign", uid, pid)
        if owner.control_group is None:
            return ListenerCheck("none")
        if not pid_in_control_group(pid, owner.control_group):
            return ListenerCheck("foreign", uid, pid)
    return ListenerCheck("ours", uid, pid)


def answers_http(address: Address, path: str) -> bool:
    """Whether the server on a socket answers a GET of ``path`` with an HTTP status line (any
    status; a port's listener is taken as answering). For jupyter_server, ``<base_url>api``:
    it answers 200 without a token, and its log keeps 2xx answers at debug level."""
    if not isinstance(address, Path):
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(PROBE_TIMEOUT_S)
        try:
            conn.connect(str(address))
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            return conn.recv(16).startswith(b"HTTP/")
        except OSError:
            return False
