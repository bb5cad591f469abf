"""hostd.daemon.sockets: a session's socket directory and who listens on its socket, with real
Unix sockets, real directories and real accounts' permissions (the host tier runs as root).

The systemd tier proves the same end to end (tests/hostd/daemon/systemd/test_attacks.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostd.daemon.ports import ListenerCheck, SessionOwner
from hostd.daemon.sockets import (
    SOCKET_DIR_MODE,
    answers_http,
    check_address,
    check_socket,
    prepare_socket_dir,
    proxy_gid,
    remove_socket_dir,
    socket_path,
)
from hostd.units.errors import ConfigError
from tests.hostd.daemon.test_ports import own_control_group

NOBODY = 65534  # uid and gid of nobody/nogroup on Debian
DAEMON = 1  # uid and gid of daemon on Debian: another account
PYTHON = "/usr/bin/python3"  # the system's, which every account may run


@pytest.fixture
def sessions() -> Iterator[Path]:
    """A runtime directory every account can walk to, as /run/hostd (pytest's tmp_path sits
    in root's 0700 directory)."""
    if os.geteuid() != 0:
        pytest.fail("the socket directory tests need root (chown), as the daemon has")
    top = Path(tempfile.mkdtemp(prefix="hostd-test-sockets-"))
    top.chmod(0o755)
    yield top / "sessions"
    shutil.rmtree(top)


def _as(uid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """argv run as another account (uid, and its gid: nobody has no supplementary groups)."""
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_directory_is_the_users_and_the_proxy_groups_and_nobody_elses(
    sessions: Path,
) -> None:
    path = prepare_socket_dir(sessions, "alice", NOBODY, 4242)
    assert path == socket_path(sessions, "alice") == sessions / "alice" / "jupyter.sock"
    info = path.parent.stat()
    assert (info.st_uid, info.st_gid) == (NOBODY, 4242)
    assert stat.S_IMODE(info.st_mode) == SOCKET_DIR_MODE == 0o2710
    top = sessions.stat()
    assert (top.st_uid, stat.S_IMODE(top.st_mode)) == (0, 0o755)


def test_another_account_cannot_take_the_address_the_user_can(sessions: Path) -> None:
    """The attack of issue 13 (3), on sockets: another local account binds the session's
    address first. A port it could; the socket's directory it cannot even enter."""
    path = prepare_socket_dir(sessions, "alice", NOBODY, 4242)
    bind = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()"
    squatter = _as(DAEMON, PYTHON, "-c", bind, str(path))
    assert squatter.returncode != 0
    assert "PermissionError" in squatter.stderr
    assert not path.exists()
    # The user can (the server binds it there).
    user = _as(NOBODY, PYTHON, "-c", bind, str(path))
    assert user.returncode == 0, user.stderr
    assert stat.S_ISSOCK(path.lstat().st_mode)
    # The setgid directory gave the socket the proxy group.
    assert path.lstat().st_gid == 4242


def test_a_new_start_gets_a_fresh_directory_and_an_end_removes_it(sessions: Path) -> None:
    path = prepare_socket_dir(sessions, "alice", NOBODY, 4242)
    path.write_text("left from before")
    (path.parent / "more").mkdir()
    again = prepare_socket_dir(sessions, "alice", NOBODY, 4242)
    assert list(again.parent.iterdir()) == []
    # A symlink where the directory was (only root could put one there) is replaced, not
    # followed.
    remove_socket_dir(sessions, "alice")
    elsewhere = sessions.parent / "elsewhere"
    elsewhere.mkdir()
    (sessions / "alice").symlink_to(elsewhere)
    prepare_socket_dir(sessions, "alice", NOBODY, 4242)
    assert not (sessions / "alice").is_symlink()
    assert elsewhere.stat().st_uid == 0
    remove_socket_dir(sessions, "alice")
    remove_socket_dir(sessions, "alice")  # nothing there: no error
    assert not (sessions / "alice").exists()


def test_a_missing_proxy_group_is_a_clear_refusal() -> None:
    with pytest.raises(ConfigError, match="groupadd --system hostd-no-such-group"):
        proxy_gid("hostd-no-such-group")
    assert proxy_gid("root") == 0


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Path]:
    """A socket this process listens on, answering one HTTP request per connection."""
    path = tmp_path / "jupyter.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    if conn.recv(1024).startswith(b"GET /user/alice/api "):
                        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n{}")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


def test_the_sessions_own_listener_is_the_session(listening: Path) -> None:
    me = SessionOwner(os.getuid(), own_control_group(), os.getpid())
    assert check_socket(listening, me) == ListenerCheck("ours", os.getuid(), os.getpid())
    assert check_address(listening, me).state == "ours"
    assert answers_http(listening, "/user/alice/api")
    # Another account's session: a listener of this uid is not its server.
    assert check_socket(listening, SessionOwner(os.getuid() + 4242, own_control_group())) == (
        ListenerCheck("foreign", os.getuid())
    )
    # The same uid outside the unit's cgroup: not the session either.
    outside = SessionOwner(os.getuid(), "/jupyter.slice/jupyter-nobody.service")
    assert check_socket(listening, outside) == ListenerCheck("foreign", os.getuid(), os.getpid())
    # The unit's cgroup not known yet: no verdict, look again.
    assert check_socket(listening, SessionOwner(os.getuid(), None)).state == "none"


def test_no_socket_or_no_listener_is_not_yet(tmp_path: Path) -> None:
    me = SessionOwner(os.getuid(), own_control_group())
    assert check_socket(tmp_path / "none.sock", me).state == "none"
    (tmp_path / "file.sock").write_text("")
    assert check_socket(tmp_path / "file.sock", me).state == "none"
    bound = tmp_path / "bound.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(bound))  # bound, not listening
        assert check_socket(bound, me).state == "none"
        assert not answers_http(bound, "/user/alice/api")


def test_a_server_that_does_not_speak_http_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        # Accepted by the kernel's backlog, never answered: the probe gives up after its
        # timeout instead of hanging the start.
        assert not answers_http(path, "/user/alice/api")
    assert answers_http(20001, "/")  # a port's listener was judged by check_listener
