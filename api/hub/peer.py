"""Who is on the other end of a connection to a user's server: the uid that owns the server's
socket (api layer; SO_PEERCRED for a Unix socket; /proc/net/tcp and tcp6, which every user may
read, for loopback TCP).

Why: the hub sends a user's session token with every request it forwards to a session's server.
A session on a port (an admin's {PORT} cmd) is on 127.0.0.1:PORT; once that session is gone
its port is anyone's to bind, and another local user who did would receive the token and the
requests (a JupyterLab tab keeps sending them). So before a byte goes over a new connection the
hub checks that the server end belongs to the session's user: the kernel's socket table says
which uid owns each socket (an accepted socket carries the uid of its listener). A session on
a Unix socket sits in a directory only its user and the hub can reach; the check is kept there
too (SO_PEERCRED, one system call), so nothing depends on a directory's mode alone.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Final

__all__ = ["WrongPeer", "address_key", "parse_socket_table", "peer_uid"]

_PEERCRED: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid
_TABLES: Final = {socket.AF_INET: Path("/proc/net/tcp"), socket.AF_INET6: Path("/proc/net/tcp6")}


class WrongPeer(OSError):
    """Raised when the server end of a connection is not the expected user's."""


def address_key(host: str, port: int) -> str:
    """An address as /proc/net/tcp{,6} prints it: 32-bit words in host order, then the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    packed = socket.inet_pton(family, host)
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"


def parse_socket_table(text: str) -> dict[tuple[str, str], int]:
    """(local address, remote address) -> uid, for every socket in the table."""
    owners: dict[tuple[str, str], int] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[7].isdigit():
            owners[(fields[1].upper(), fields[2].upper())] = int(fields[7])
    return owners


def peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the other end of ``sock``: for a Unix socket, its listener's
    (SO_PEERCRED: the credentials it had when it called listen); for a TCP connection on this
    machine, the socket table's, or None when the table does not have it (a peer on another
    machine, say)."""
    if sock.family == socket.AF_UNIX:
        _pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        return int(uid)
    ours = sock.getsockname()
    theirs = sock.getpeername()
    table = _TABLES.get(sock.family)
    if table is None:
        return None
    # The server's socket is the one whose local end is our peer and whose remote end is us.
    return _owner_in_table(
        table.read_text(), address_key(theirs[0], theirs[1]), address_key(ours[0], ours[1])
    )


def _owner_in_table(text: str, local: str, remote: str) -> int | None:
    """parse_socket_table(text).get((local, remote)), by one search: the table has a line per
    socket on the machine (TIME_WAIT ones too: thousands under load), and splitting them all
    cost 5 ms a connection, measured, on top of the kernel's 5 ms to print them."""
    at = text.rfind(f" {local} {remote} ")  # the last, as parse_socket_table keeps it
    if at < 0:
        return None
    end = text.find("\n", at)
    # local, remote, st, tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, ...
    fields = text[at : end if end >= 0 else len(text)].split()
    return int(fields[6]) if len(fields) > 6 and fields[6].isdigit() else None
