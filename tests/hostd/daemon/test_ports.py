"""hostd.daemon.ports: whose listener is on a session's port, on this machine's real sockets,
and what an exhausted port range says (no systemd: this process plays the session)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from hostd.daemon.ports import (
    ListenerCheck,
    SessionOwner,
    allocate_port,
    check_listener,
    holders_in_range,
    loopback_accepts,
    parse_sockets,
    pid_in_control_group,
    pid_of_socket,
)
from hostd.units.errors import CapacityExceeded

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1003        0 871503 1
   1: 0100007F:4E21 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1003        0 871504 1
   2: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1003        0 1 1
   3: garbage
"""


def own_control_group() -> str:
    """This process's cgroup as systemd would name it (the v2 line, else name=systemd's)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for prefix in ("0::", "1:name=systemd:"):
        for line in lines:
            if line.startswith(prefix) and line[len(prefix) :]:
                return line[len(prefix) :]
    for line in lines:
        if ":name=systemd:" in line:
            return line.split(":", 2)[2]
    pytest.skip("no cgroup path for this process")


def test_the_socket_table_is_parsed_for_port_state_owner_and_inode() -> None:
    entries = list(parse_sockets(TABLE))
    assert [(e.port, e.state, e.uid, e.inode) for e in entries] == [
        (20001, "0A", 1003, 871503),
        (20001, "01", 1003, 871504),
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_listener_of_the_sessions_uid_in_its_cgroup_is_the_session(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as server:
        server.bind((host, 0))
        port = server.getsockname()[1]
        me = SessionOwner(os.getuid(), own_control_group(), os.getpid())
        assert check_listener(port, me) == ListenerCheck("none")  # bound, not listening
        server.listen()
        assert pid_of_socket(os.fstat(server.fileno()).st_ino) == os.getpid()
        assert check_listener(port, me) == ListenerCheck("ours", os.getuid(), os.getpid())
        # Found without a main pid to start from, too.
        assert check_listener(port, SessionOwner(os.getuid(), own_control_group())).state == "ours"
        # Another account's session: this uid's listener is a squatter's.
        theirs = check_listener(port, SessionOwner(os.getuid() + 4242, own_control_group()))
        assert theirs == ListenerCheck("foreign", os.getuid(), os.getpid())
        assert f"port {port} was taken by another process (uid {os.getuid()}, pid " in (
            theirs.describe(port)
        )
        # The same uid outside the unit's cgroup: not the session either.
        outside = SessionOwner(os.getuid(), "/jupyter.slice/jupyter-nobody.service")
        assert check_listener(port, outside) == ListenerCheck("foreign", os.getuid(), os.getpid())
        # The unit's cgroup not known yet: no verdict, look again.
        assert check_listener(port, SessionOwner(os.getuid(), None)).state == "none"
    assert check_listener(port, me) == ListenerCheck("none")


@pytest.mark.parametrize(
    ("family", "host"),
    [
        (socket.AF_INET, "127.0.0.1"),
        (socket.AF_INET, "0.0.0.0"),
        (socket.AF_INET6, "::1"),
        (socket.AF_INET6, "::"),
    ],
)
def test_the_socket_tables_are_read_only_once_something_accepts_on_the_port(
    family: socket.AddressFamily, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read of /proc/net/tcp{,6} walks the kernel's whole connection hash (~5.6 ms here):
    # a starting session's port is looked at every 50 ms, so while nothing listens the
    # tables are not read. Any listener a connection to the port could reach is still found.
    import hostd.daemon.ports as ports

    reads: list[int] = []
    real = ports.read_sockets

    def counted() -> list[ports.SocketEntry]:
        reads.append(1)
        return real()

    monkeypatch.setattr(ports, "read_sockets", counted)
    me = SessionOwner(os.getuid(), own_control_group(), os.getpid())
    with socket.socket(family) as server:
        server.bind((host, 0))
        port = server.getsockname()[1]
        assert not loopback_accepts(port)
        assert check_listener(port, me) == ListenerCheck("none")
        assert reads == []  # bound, not listening: refused, the tables not read
        server.listen()
        assert loopback_accepts(port)
        assert check_listener(port, me) == ListenerCheck("ours", os.getuid(), os.getpid())
        assert reads == [1]
        foreign = check_listener(port, SessionOwner(os.getuid() + 4242, own_control_group()))
        assert foreign.state == "foreign"


def test_cgroup_membership_reads_proc_pid_cgroup() -> None:
    group = own_control_group()
    assert pid_in_control_group(os.getpid(), group)
    assert not pid_in_control_group(os.getpid(), group.rstrip("/") + "/jupyter-x.service")
    assert not pid_in_control_group(2**22 + 1, group)  # no such process
    assert pid_of_socket(2**40) is None


def test_a_foreign_listener_says_who_even_without_a_pid() -> None:
    assert ListenerCheck("foreign", 1003).describe(20001) == (
        "port 20001 was taken by another process (uid 1003) before the session listened"
    )
    assert "an unknown uid" in ListenerCheck("foreign").describe(20001)


def test_an_exhausted_range_names_who_holds_its_ports() -> None:
    # Attack 6 in small: this process holds every port of a range of three.
    servers = []
    try:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            base = probe.getsockname()[1]
        for port in range(base, base + 3):
            try:
                servers.append(socket.create_server(("127.0.0.1", port)))
            except OSError:
                pytest.skip("a port of the range was in use")
        with pytest.raises(CapacityExceeded) as caught:
            allocate_port(base, base + 2, set())
        assert caught.value.message == (
            f"no free port in {base}-{base + 2} for another session; 0 held by sessions; "
            f"ports held outside sessions: 3 by uid {os.getuid()}"
        )
        assert holders_in_range(base, base + 2, {base}) == (
            f"1 held by sessions; ports held outside sessions: 2 by uid {os.getuid()}"
        )
        # Ports bound but not listening are not in the kernel's tables.
        for server in servers:
            server.close()
        assert holders_in_range(base, base + 2, set()).endswith("bound but not listening")
        assert base <= allocate_port(base, base + 2, set()) <= base + 2
    finally:
        for server in servers:
            server.close()
