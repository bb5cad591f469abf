"""Who owns the other end of a connection to a user's server: /proc/net/tcp and tcp6 for
loopback TCP, SO_PEERCRED for a Unix socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from hostd.api.hub.peer import WrongPeer, address_key, parse_socket_table, peer_uid
from hostd.api.hub.routes import check_peer

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1 0
   1: 0100007F:1F40 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0
   2: 0100007F:D431 0100007F:1F40 01 00000000:00000000 00:00000000 00000000   999        0 3 1 0
   3: garbage
"""


def test_addresses_are_written_as_the_kernel_prints_them() -> None:
    assert address_key("127.0.0.1", 8000) == "0100007F:1F40"
    assert address_key("::1", 80) == "0" * 24 + "01000000:0050"


def test_the_table_maps_both_ends_to_the_owner() -> None:
    owners = parse_socket_table(TABLE)
    assert owners[("0100007F:1F40", "0100007F:D431")] == 1001  # the server's end
    assert owners[("0100007F:D431", "0100007F:1F40")] == 999  # the client's
    assert len(owners) == 3


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_the_owner_of_a_real_listener_is_found(family: int, host: str) -> None:
    with socket.socket(family) as server, socket.socket(family) as client:
        server.bind((host, 0))
        server.listen()
        client.connect(server.getsockname()[:2])  # not even accepted yet
        assert peer_uid(client) == os.getuid()
        check_peer(client, os.getuid())
        with pytest.raises(WrongPeer, match="not sending it anything"):
            check_peer(client, os.getuid() + 4242)
        with pytest.raises(WrongPeer):
            check_peer(client, None)


def test_the_owner_of_a_unix_socket_is_its_listeners_uid(tmp_path: Path) -> None:
    """SO_PEERCRED: the uid the listener had when it called listen(), here another account's
    (nobody) and this process's."""
    if os.geteuid() != 0:
        pytest.fail("needs root to run a listener as another account")
    directory = Path(tempfile.mkdtemp(prefix="hostd-peer-"))
    try:
        directory.chmod(0o777)
        path = directory / "theirs.sock"
        serve = (
            "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]);"
            "s.listen(); print('up', flush=True); time.sleep(30)"
        )
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        with subprocess.Popen(
            [*argv, "/usr/bin/python3", "-c", serve, str(path)], stdout=subprocess.PIPE, text=True
        ) as theirs:
            try:
                assert theirs.stdout is not None and theirs.stdout.readline() == "up\n"
                with socket.socket(socket.AF_UNIX) as client:
                    client.connect(str(path))
                    assert peer_uid(client) == 65534
                    check_peer(client, 65534)
                    with pytest.raises(WrongPeer, match=f"socket {path} belongs to uid 65534"):
                        check_peer(client, os.getuid())
            finally:
                theirs.kill()
        ours = directory / "ours.sock"
        with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
            server.bind(str(ours))
            server.listen()
            client.connect(str(ours))
            assert peer_uid(client) == os.getuid()
    finally:
        shutil.rmtree(directory)
