"""HostdClient: against the app through httpx's ASGI transport, and over a real Unix socket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from hostd.api.client import DaemonUnreachable, HostdClient, StartResult
from hostd.api.wire import host_from_dict, usage_from_dict
from hostd.units import SessionPolicy
from hostd.units.errors import (
    CapacityExceeded,
    HostdError,
    InvalidName,
    InvalidOption,
    InvalidSize,
    PermissionDenied,
    SessionNotFound,
    SpawnFailed,
    SystemdUnavailable,
    UnknownUser,
)
from hostd.units.values import Caller, HostView, LogLine, PeerCredentials, SessionView, UsageView
from tests.api.fake import (
    MEMBER,
    ROOT,
    STARTED_AT,
    FakeSessionService,
    serving,
    with_peer,
)


def client_of(app: Starlette, peer: PeerCredentials | None = ROOT) -> HostdClient:
    transport = httpx.ASGITransport(app=with_peer(app, peer))
    return HostdClient("/run/hostd/unused.sock", transport=transport)


@pytest.fixture
async def hostd(app: Starlette) -> AsyncIterator[HostdClient]:
    async with client_of(app) as client:
        yield client


async def test_the_constructor_does_no_io() -> None:
    client = HostdClient("/nonexistent/hostd.sock")
    assert client.socket_path == "/nonexistent/hostd.sock"
    await client.aclose()
    await client.aclose()


# -- each method --------------------------------------------------------------------------


async def test_start_then_start_again(hostd: HostdClient, fake: FakeSessionService) -> None:
    result = await hostd.start("alice")
    assert result == StartResult(session=fake.sessions["alice"], created=True)
    again = await hostd.start("alice")
    assert again == StartResult(session=fake.sessions["alice"], created=False)


async def test_start_sends_only_the_options_given(
    hostd: HostdClient, fake: FakeSessionService
) -> None:
    await hostd.start(
        "alice",
        mem_limit="512M",
        cpu_limit=0.5,
        environment={"JUPYTERHUB_USER": "alice"},
        default_url="/lab",
        wait=False,
    )
    _, _, request, _, wait = fake.calls[-1]
    assert wait is False
    assert (request.mem_limit, request.cpu_limit, request.default_url) == (
        512 * 1024**2,
        0.5,
        "/lab",
    )
    assert dict(request.environment) == {"JUPYTERHUB_USER": "alice"}
    await hostd.stop("alice")
    await hostd.start("alice", mem_limit=1024)
    _, _, request, _, wait = fake.calls[-1]
    assert (request.mem_limit, request.cpu_limit, request.default_url, wait) == (
        1024,
        None,
        None,
        True,
    )


async def test_stop_get_list(hostd: HostdClient, fake: FakeSessionService) -> None:
    alice = fake.add_session("alice")
    bob = fake.add_session(
        "bob", state="failed", result="oom-kill", exit_status=137, log=("Killed",)
    )
    assert await hostd.get("alice") == alice
    assert await hostd.get("bob") == bob
    assert await hostd.list() == [alice, bob]
    stopped = await hostd.stop("alice")
    assert stopped == fake.sessions["alice"]
    assert stopped.state == "stopped"


async def test_views_round_trip_with_every_field(
    hostd: HostdClient, fake: FakeSessionService
) -> None:
    view = fake.add_session("carol", limits=None, started_at=None, url=None)
    assert await hostd.get("carol") == view


async def test_logs(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.add_session("alice", lines=5)
    assert await hostd.logs("alice", lines=2) == fake.journal["alice"][-2:]
    assert await hostd.logs("alice") == fake.journal["alice"]
    assert fake.calls[-2] == ("logs", "alice", 100)


async def test_follow(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.add_session("alice", lines=3)
    assert [line async for line in hostd.follow("alice")] == fake.journal["alice"]
    after = [line async for line in hostd.follow("alice", cursor="alice-1")]
    assert after == fake.journal["alice"][2:]


async def test_health(hostd: HostdClient) -> None:
    assert await hostd.health() == {"status": "ok", "sessions": 0}


async def test_usage(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    assert await hostd.usage("alice") == await fake.usage("alice")
    measured = UsageView(user="alice", memory_bytes=1, cpu_percent=250.0)
    fake.usages["alice"] = measured
    assert await hostd.usage("alice") == measured
    fake.add_session("bob", state="stopped")
    with pytest.raises(SessionNotFound):
        await hostd.usage("bob")


async def test_host(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    fake.starts_waiting = 2
    host = await hostd.host()
    assert host == await fake.host()
    assert (host.sessions_running, host.starts_waiting) == (1, 2)


async def test_policy(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.session_policy = SessionPolicy(
        cmd=("/bin/true",), isolate_devices=True, readwrite_paths=("/home/{USERNAME}",)
    )
    fake.config_file = None
    policy = await hostd.policy()
    assert policy == await fake.policy()
    assert (policy.isolate_devices, policy.readwrite_paths) == (True, ("/home/{USERNAME}",))
    assert (policy.config_file, policy.commands) == (None, ("singleuser",))


async def test_set_limits_sends_only_the_limits_given(
    hostd: HostdClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    view = await hostd.set_limits("alice", mem_limit="1G")
    assert view == fake.sessions["alice"]
    assert view.limits is not None
    assert (view.limits.mem_limit_bytes, view.limits.cpu_limit) == (1024**3, 1.5)
    await hostd.set_limits("alice", cpu_limit=0.25)
    await hostd.set_limits("alice", mem_limit=4096, cpu_limit="2")
    root = Caller(uid=0, name="root", privileged=True, acts_for_others=True)
    assert [call for call in fake.calls if call[0] == "set_limits"] == [
        ("set_limits", "alice", 1024**3, None, root),
        ("set_limits", "alice", None, 0.25, root),
        ("set_limits", "alice", 4096, 2.0, root),
    ]


async def test_set_limits_errors(
    app: Starlette, hostd: HostdClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    with pytest.raises(InvalidOption, match="nothing to change"):
        await hostd.set_limits("alice")
    with pytest.raises(InvalidSize, match=r"^mem_limit: invalid size 'lots'"):
        await hostd.set_limits("alice", mem_limit="lots")
    with pytest.raises(SessionNotFound):
        await hostd.set_limits("bob", cpu_limit=1)
    async with client_of(app, peer=MEMBER) as member:
        with pytest.raises(PermissionDenied):
            await member.set_limits("alice", mem_limit="8G")


async def test_activity(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    await hostd.activity("alice")
    assert fake.calls[-1][:2] == ("activity", "alice")
    with pytest.raises(SessionNotFound):
        await hostd.activity("bob")


async def test_metrics(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    text = await hostd.metrics()
    assert text == (await fake.metrics())[0].decode()
    assert "hostd_sessions 1.0" in text


def test_usage_and_host_round_trip_through_their_dicts() -> None:
    usage = UsageView(
        user="alice",
        memory_bytes=1,
        memory_peak_bytes=2,
        memory_limit_bytes=3,
        cpu_seconds=4.5,
        cpu_percent=5.5,
        cpu_limit=6.5,
        cpu_throttled_seconds=7.5,
        tasks=8,
        oom_kills=9,
    )
    assert usage_from_dict(usage.to_dict()) == usage
    assert usage_from_dict(UsageView(user="bob").to_dict()) == UsageView(user="bob")
    host = HostView(1, 2, 3, 4, 5, 6.5, 7, 8)
    assert host_from_dict(host.to_dict()) == host


def test_from_dict_takes_whole_numbers_for_floats_and_ignores_new_keys() -> None:
    usage = usage_from_dict({**UsageView(user="a").to_dict(), "cpu_seconds": 3, "new": 1})
    assert usage.cpu_seconds == 3.0 and isinstance(usage.cpu_seconds, float)
    host = host_from_dict({**HostView(1, 2, 3, 4, 5, 0.0, 7, 8).to_dict(), "cpu_limits": 0})
    assert isinstance(host.cpu_limits, float)


@pytest.mark.parametrize(
    "changes",
    [{"memory_bytes": "1"}, {"tasks": 1.5}, {"tasks": True}, {"cpu_percent": "5"}, {"user": 1}],
)
def test_usage_from_dict_refuses_wrong_types(changes: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        usage_from_dict({**UsageView(user="a").to_dict(), **changes})


def test_from_dict_needs_every_field() -> None:
    data = UsageView(user="a").to_dict()
    del data["oom_kills"]
    with pytest.raises(KeyError):
        usage_from_dict(data)
    with pytest.raises(TypeError):
        host_from_dict({**HostView(1, 2, 3, 4, 5, 6.5, 7, 8).to_dict(), "cpus": None})


async def test_a_user_name_is_one_path_segment(
    hostd: HostdClient, fake: FakeSessionService
) -> None:
    with pytest.raises(InvalidName):
        await hostd.get("a b")
    with pytest.raises(SessionNotFound):  # quoted, "/" does not reach another route
        await hostd.get("alice/logs")
    assert ("get", "a b") in fake.calls


# -- errors -------------------------------------------------------------------------------


async def test_errors_are_raised_as_their_classes(
    hostd: HostdClient, fake: FakeSessionService
) -> None:
    with pytest.raises(SessionNotFound, match=r"^alice has no session$"):
        await hostd.get("alice")
    with pytest.raises(UnknownUser):
        await hostd.start("zed")
    with pytest.raises(InvalidSize, match=r"^mem_limit: invalid size 'lots'"):
        await hostd.start("alice", mem_limit="lots")
    with pytest.raises(SessionNotFound):
        await hostd.logs("alice")


async def test_capacity_keeps_retry_after(hostd: HostdClient, fake: FakeSessionService) -> None:
    fake.fail["start"] = CapacityExceeded("memory is committed", retry_after_s=17)
    with pytest.raises(CapacityExceeded) as caught:
        await hostd.start("alice")
    assert caught.value.retry_after_s == 17


async def test_spawn_failed_keeps_its_details(hostd: HostdClient, fake: FakeSessionService) -> None:
    details = {"result": "exit-code", "exit_status": 127, "log": ["jupyter-labhub: not found"]}
    fake.fail["start"] = SpawnFailed("alice's session failed", details=details)
    with pytest.raises(SpawnFailed) as caught:
        await hostd.start("alice")
    assert caught.value.details == details
    assert caught.value.message == "alice's session failed"


async def test_forbidden(app: Starlette) -> None:
    async with client_of(app, peer=None) as client:
        with pytest.raises(PermissionDenied):
            await client.health()


async def test_internal_is_a_hostd_error_with_its_code(
    hostd: HostdClient, fake: FakeSessionService
) -> None:
    fake.fail["list"] = RuntimeError("boom")
    with pytest.raises(HostdError) as caught:
        await hostd.list()
    assert type(caught.value) is HostdError
    assert caught.value.code == "internal"
    assert caught.value.message == "internal error; see the daemon's journal"


async def test_follow_errors(hostd: HostdClient, fake: FakeSessionService) -> None:
    with pytest.raises(SessionNotFound):
        [line async for line in hostd.follow("alice")]
    fake.add_session("alice", lines=2)
    fake.follow_error = SystemdUnavailable("journal went away")
    seen: list[LogLine] = []
    with pytest.raises(SystemdUnavailable, match="journal went away"):
        async for line in hostd.follow("alice"):
            seen.append(line)
    assert seen == fake.journal["alice"]


def mock_client(status: int, content: bytes, content_type: str = "application/json") -> HostdClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": content_type})

    return HostdClient("/unused.sock", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("status", "content"),
    [
        (200, b"<html>"),
        (200, b'{"user": "alice"}'),
        (200, b'{"sessions": 3}'),
        (200, b"[]"),
        (502, b"Bad Gateway"),
        (500, b'{"code": 5}'),
        (500, b'{"code": "x", "message": "y", "details": []}'),
    ],
)
async def test_an_answer_the_client_cannot_read_is_a_hostd_error(
    status: int, content: bytes
) -> None:
    async with mock_client(status, content) as client:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: client.get("alice"),
            client.list,
            lambda: client.logs("alice"),
            lambda: client.usage("alice"),
            lambda: client.set_limits("alice", cpu_limit=1),
            client.host,
        ]
        if not content.startswith(b"{") or status != 200:
            calls.append(client.health)  # any object is a health report
        for call in calls:
            with pytest.raises(HostdError, match="cannot read") as caught:
                await call()
            assert type(caught.value) is HostdError
            assert f"HTTP {status}" in caught.value.message


async def test_a_follow_line_the_client_cannot_read_is_a_hostd_error() -> None:
    async with mock_client(200, b'{"cursor": "c"}\n', "application/x-ndjson") as client:
        with pytest.raises(HostdError, match="cannot read"):
            [line async for line in client.follow("alice")]


# -- the socket ---------------------------------------------------------------------------


async def test_a_missing_socket_is_daemon_unreachable(socket_path: Path) -> None:
    async with HostdClient(str(socket_path)) as client:
        with pytest.raises(DaemonUnreachable) as caught:
            await client.health()
    error = caught.value
    assert error.code == "daemon-unreachable"
    assert (
        error.message
        == f"cannot connect to hostd at {socket_path}: [Errno 2] No such file or directory"
    )
    assert error.socket_path == str(socket_path)
    assert error.details == {"socket_path": str(socket_path)}
    assert isinstance(error, HostdError)


async def test_a_socket_nobody_listens_on_is_daemon_unreachable(socket_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(str(socket_path))  # bound, never listening: connect() is refused
        async with HostdClient(str(socket_path)) as client:
            with pytest.raises(DaemonUnreachable, match="Connection refused"):
                await client.get("alice")
            with pytest.raises(DaemonUnreachable, match="Connection refused"):
                [line async for line in client.follow("alice")]


async def test_over_a_real_unix_socket(
    app: Starlette, fake: FakeSessionService, socket_path: Path
) -> None:
    fake.add_session("bob", lines=3)
    async with serving(with_peer(app, ROOT), socket_path), HostdClient(str(socket_path)) as client:
        assert (await client.start("alice", mem_limit="1G")).created is True
        assert [view.user for view in await client.list()] == ["alice", "bob"]
        assert isinstance(await client.get("alice"), SessionView)
        assert await client.logs("bob", lines=1) == fake.journal["bob"][-1:]
        with pytest.raises(SessionNotFound):
            await client.get("carol")
        assert (await client.usage("bob")).user == "bob"
        await client.activity("bob")
        assert (await client.set_limits("bob", cpu_limit=2)).limits == fake.sessions["bob"].limits
        assert "hostd_sessions" in await client.metrics()

        # A follow streams until the client leaves; then the daemon closes the service's.
        fake.follow_forever = True
        async with aclosing(client.follow("bob")) as lines:
            assert [await anext(lines) for _ in range(3)] == fake.journal["bob"]
        for _ in range(200):
            if fake.followers_closed == 1:
                break
            await asyncio.sleep(0.01)
        assert (fake.followers_open, fake.followers_closed) == (1, 1)


async def test_a_daemon_that_goes_away_mid_follow_is_daemon_unreachable(
    socket_path: Path,
) -> None:
    line = LogLine(cursor="c1", timestamp=STARTED_AT, message="hello").to_dict()
    chunk = json.dumps(line).encode() + b"\n"

    async def answer_then_die(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(chunk), chunk)
        )
        await writer.drain()
        writer.close()  # no last chunk: the stream is cut, not ended

    server = await asyncio.start_unix_server(answer_then_die, path=str(socket_path))
    async with server, HostdClient(str(socket_path)) as client:
        lines = client.follow("bob")
        assert (await anext(lines)).message == "hello"
        with pytest.raises(DaemonUnreachable, match="lost the connection to hostd at"):
            await anext(lines)
