"""Loopback ports for sessions (host layer): pick a free one, and tell whose listener is on one.

A session's port is public (its unit's HOSTD_PORT, which ``systemctl show`` prints to anyone),
and any local account may bind a free port on 127.0.0.1. So "something accepts on the port"
says nothing about who: a session counts as answering only when every listening socket on its
port belongs to a process in its unit's cgroup running as its user (``check_listener``). The
kernel's socket tables (/proc/net/tcp, tcp6) give each socket's owner uid and inode; the inode,
found among a process's open files (/proc/PID/fd), gives the process; /proc/PID/cgroup its unit.
Everything here blocks: callers run it in a thread.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from hostd.units.errors import CapacityExceeded

__all__ = [
    "ListenerCheck",
    "SessionOwner",
    "SocketEntry",
    "allocate_port",
    "check_listener",
    "describe_address",
    "holders_in_range",
    "loopback_accepts",
    "parse_sockets",
    "pid_in_control_group",
    "pid_of_socket",
    "port_free",
    "read_sockets",
]

TRIES = 200
ACCEPT_PROBE_TIMEOUT_S: Final = 0.5  # a loopback connect is answered at once, or queued
SOCKET_TABLES: Final = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_LISTEN: Final = "0A"  # include/net/tcp_states.h: TCP_LISTEN = 10


@dataclass(frozen=True)
class SocketEntry:
    """One line of /proc/net/tcp{,6}: the local port, the state (hex), the owner, the inode."""

    port: int
    state: str
    uid: int
    inode: int


@dataclass(frozen=True)
class SessionOwner:
    """Whose listener a session's port must have: the user's uid, the unit's cgroup and its
    main process (looked at first: JupyterLab listens in its main process)."""

    uid: int
    control_group: str | None
    main_pid: int | None = None


@dataclass(frozen=True)
class ListenerCheck:
    """Who listens on a session's port. ``none``: nobody yet; ``ours``: the session itself;
    ``foreign``: another process (``uid`` and, when found, ``pid``) holds the port."""

    state: Literal["none", "ours", "foreign"]
    uid: int | None = None
    pid: int | None = None

    def describe(self, address: int | Path) -> str:
        """For a foreign listener: what took the address, in words for the start's error."""
        who = f"uid {self.uid}" if self.uid is not None else "an unknown uid"
        pid = f", pid {self.pid}" if self.pid is not None else ""
        return (
            f"{describe_address(address)} was taken by another process ({who}{pid}) "
            "before the session listened"
        )


def describe_address(address: int | Path) -> str:
    """A session's address in words: "port 20001", "socket /run/hostd/sessions/alice/..."."""
    return f"port {address}" if isinstance(address, int) else f"socket {address}"


def parse_sockets(text: str) -> Iterator[SocketEntry]:
    """The sockets of one /proc/net/tcp{,6} text (a malformed line is skipped)."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        # sl, local, remote, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode, ...
        if len(fields) < 10 or not (fields[7].isdigit() and fields[9].isdigit()):
            continue
        _address, _, port = fields[1].rpartition(":")
        try:
            number = int(port, 16)
        except ValueError:
            continue
        yield SocketEntry(number, fields[3].upper(), int(fields[7]), int(fields[9]))


def loopback_accepts(port: int) -> bool:
    """Whether a connection to ``port`` on 127.0.0.1 or ::1 is anything but refused (a listener
    on 127.0.0.1, 0.0.0.0, :: or ::1 takes it; a timeout counts as a listener whose queue is
    full). Looked at before the socket tables, which say whose the listener is: the kernel
    walks its whole TCP connection hash for each read of /proc/net/tcp{,6}, ~5.6 ms each on
    this project's machine kind (24 GiB) with 20 sockets open, and a starting session's port is
    looked at every 50 ms (bench row "b N=20": 82 % of the daemon's CPU). A refused connect
    costs some µs. No verdict comes from it: "ours" and "foreign" come from the tables."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 on this host
            continue
        with probe:
            probe.settimeout(ACCEPT_PROBE_TIMEOUT_S)
            try:
                probe.connect((host, port))
            except ConnectionRefusedError:
                continue
            except TimeoutError:
                return True
            except OSError:  # no such loopback address here (IPv6 off): nothing listens on it
                continue
            return True
    return False


def read_sockets() -> list[SocketEntry]:
    """Every TCP socket on the machine (IPv4 and IPv6) that the kernel's tables list."""
    found: list[SocketEntry] = []
    for table in SOCKET_TABLES:
        with contextlib.suppress(OSError):  # no IPv6: no tcp6
            found.extend(parse_sockets(table.read_text()))
    return found


def pid_of_socket(inode: int, first: Iterable[int] = ()) -> int | None:
    """The process with socket ``inode`` open: the pids in ``first`` are looked at before
    all others (reading every process's fds costs ~1 ms per 100 processes, measured)."""
    target = f"socket:[{inode}]"
    tried: set[int] = set()
    listing = (int(p.name) for p in _proc_entries() if p.name.isdigit())
    for pid in (*first, *listing):
        if pid in tried:
            continue
        tried.add(pid)
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if str(fd.readlink()) == target:
                    return pid
    return None


def _proc_entries() -> list[Path]:
    try:
        return list(Path("/proc").iterdir())
    except OSError:
        return []


def pid_in_control_group(pid: int, control_group: str) -> bool:
    """Whether the process is in the cgroup (or below it), by /proc/PID/cgroup: the v2 line
    ("0::/jupyter.slice/...") or, on v1 and hybrid, systemd's own ("1:name=systemd:/...")."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    group = control_group.rstrip("/")
    for line in text.splitlines():
        _hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers not in ("", "name=systemd"):
            continue
        if path == group or path.startswith(group + "/"):
            return True
    return False


def check_listener(port: int, owner: SessionOwner) -> ListenerCheck:
    """Who listens on 127.0.0.1:``port`` (ListenerCheck). Any listener on the port counts (on
    127.0.0.1, 0.0.0.0 or ::): each would take connections meant for the session. Foreign as
    soon as one is owned by another uid or held by a process outside the unit's cgroup."""
    if not loopback_accepts(port):
        return ListenerCheck("none")
    listeners = [s for s in read_sockets() if s.port == port and s.state == TCP_LISTEN]
    if not listeners:
        return ListenerCheck("none")
    for listener in listeners:
        if listener.uid != owner.uid:
            # Another account's socket: the uid alone says so; the pid is for the message.
            return ListenerCheck("foreign", listener.uid, pid_of_socket(listener.inode))
    for listener in listeners:
        first = () if owner.main_pid is None else (owner.main_pid,)
        pid = pid_of_socket(listener.inode, first)
        if pid is None or owner.control_group is None:
            # Closed meanwhile, or the unit's cgroup not known yet: look again at the next poll.
            return ListenerCheck("none")
        if not pid_in_control_group(pid, owner.control_group):
            return ListenerCheck("foreign", listener.uid, pid)
    return ListenerCheck("ours", owner.uid, owner.main_pid)


def allocate_port(low: int, high: int, taken: Collection[int]) -> int:
    """A port in low..high that no session holds and nothing listens on right now."""
    in_use = {s.port for s in read_sockets() if low <= s.port <= high}
    candidates = [p for p in range(low, high + 1) if p not in taken and p not in in_use]
    random.shuffle(candidates)
    for port in candidates[:TRIES]:
        if port_free(port):
            return port
    raise CapacityExceeded(
        f"no free port in {low}-{high} for another session; {holders_in_range(low, high, taken)}"
    )


def holders_in_range(low: int, high: int, sessions: Collection[int]) -> str:
    """Who holds the ports of the range that sessions do not: "ports held outside sessions:
    9998 by uid 1003", so an admin sees at once whose sockets fill the range."""
    by_uid: Counter[int] = Counter()
    seen: set[tuple[int, int]] = set()
    for entry in read_sockets():
        key = (entry.port, entry.uid)  # a port counts once per owner
        if low <= entry.port <= high and entry.port not in sessions and key not in seen:
            seen.add(key)
            by_uid[entry.uid] += 1
    if not by_uid:
        return f"{len(sessions)} held by sessions, the rest bound but not listening"
    top = ", ".join(f"{count} by uid {uid}" for uid, count in by_uid.most_common(3))
    return f"{len(sessions)} held by sessions; ports held outside sessions: {top}"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
