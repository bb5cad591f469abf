"""The hub's proxy under load on a real machine (inside packaging/testbed), issue 9.

100 real PAM users log in through the hub (each with a cookie of their own) and start a server
through the hub's API; each server is a tiny HTTP server (load_server.py beside this file, the
daemon's named command ``tiny``: 100 JupyterLabs are too much for two cores) that answers with
the name of the account it runs as. 100 requests per user go through /user/<name>/ at once
(bounded concurrency): no error, and every answer from the user's own server. Then 20 kernel
WebSockets are open at the same time through the proxy, to real JupyterLabs, each running code.
Latencies and rates are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import json
import pwd
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from hostd.api.hub.identity import SESSION_COOKIE
from tests.api.hub.systemd.conftest import (
    BASE,
    HUB_USER,
    LAB_POLICY,
    Hub,
    PamUser,
    log_in,
    run,
    xsrf_of,
)
from tests.api.hub.systemd.lab import run_code_async
from tests.hostd.daemon.systemd.conftest import Daemon

pytestmark = pytest.mark.systemd

LOAD_USERS = 100
REQUESTS_PER_USER = 100
CONCURRENCY = 50
LOGIN_CONCURRENCY = 8  # the daemon runs 8 PAM checks at once (hostd.daemon.login)
LAB_USERS = 4
KERNELS_PER_LAB = 5  # 20 kernels; 5 in a 1G session leave room (about 60 MB each)
ROUNDS = 5  # executions per kernel WebSocket, after a first one that waits for the kernel
START_WAIT_S = 120
LOAD_GROUP = "hostd-load-test"
LOAD_SERVER = Path(__file__).with_name("load_server.py")

# The lab daemon's policy plus the tiny command for the load users (the hub starts every
# server with it) and a small memory limit for them: 100 x 1G is over the daemon's capacity.
LOAD_POLICY = (
    LAB_POLICY
    + f"""
[commands]
tiny = ["/usr/bin/python3", "{LOAD_SERVER}", "{{SOCKET}}"]

[profiles.groups.{LOAD_GROUP}]
mem_limit = "64M"
cpu_limit = 0.5

[capacity]
max_concurrent_starts = 16
"""
)


@pytest.fixture(scope="module")
def lab_daemon(hub_machine: None) -> Iterator[Daemon]:
    """The conftest's daemon, with LOAD_POLICY."""
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    daemon = Daemon(root, LOAD_POLICY, act_for_others=(HUB_USER,), proxy_group=HUB_USER)
    # JupyterLab on two busy cores can take longer than the Daemon's 20 s to answer.
    config = daemon.config.read_text()
    assert "start_timeout = 20\n" in config
    daemon.config.write_text(config.replace("start_timeout = 20\n", "start_timeout = 55\n"))
    daemon.start()
    yield daemon
    daemon.terminate()
    run("rm", "-rf", str(daemon.socket.parent), str(root), check=False)


@pytest.fixture(scope="module")
def hub_options() -> dict[str, Any]:
    return {"command": "tiny"}


@pytest.fixture(scope="module")
def load_users(hub_machine: None) -> Iterator[list[PamUser]]:
    """LOAD_USERS accounts in LOAD_GROUP, made at once with newusers(8)."""
    run("groupadd", LOAD_GROUP)
    users = [
        PamUser(f"l{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}") for _ in range(LOAD_USERS)
    ]
    lines = "".join(
        f"{u.name}:{u.password}::{LOAD_GROUP}::/home/{u.name}:/bin/bash\n" for u in users
    )
    made = time.monotonic()
    subprocess.run(["newusers"], input=lines, text=True, check=True, capture_output=True)
    print(f"\n{LOAD_USERS} users made in {time.monotonic() - made:.1f} s")
    try:
        yield users
    finally:
        run("systemctl", "stop", *(f"jupyter-{u.name}.service" for u in users), check=False)
        for user in users:
            run("userdel", "-r", "-f", user.name, check=False)
        run("groupdel", LOAD_GROUP, check=False)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(values: list[float]) -> str:
    ms = [value * 1000 for value in values]
    return (
        f"p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms"
    )


async def log_in_and_start(hub: Hub, user: PamUser) -> str:
    """Log in through the hub's form, start the server through its API; the session cookie."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:
        page = await client.get("/hub/login")
        form = {"_xsrf": xsrf_of(page.text), "username": user.name, "password": user.password}
        login = await client.post("/hub/login", data=form)
        assert login.status_code == 303, (user.name, login.status_code, login.text[:300])
        home = await client.get("/hub/home")
        start = await client.post(
            f"/hub/api/users/{user.name}/server", headers={"X-XSRFToken": xsrf_of(home.text)}
        )
        assert start.status_code in (201, 202), (user.name, start.status_code, start.text)
        return client.cookies[SESSION_COOKIE]


async def wait_running(daemon: Daemon, names: set[str]) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while True:
        status, body = await asyncio.to_thread(daemon.api, "GET", "/v1/sessions")
        assert status == 200, body
        states = {s["user"]: s["state"] for s in body["sessions"] if s["user"] in names}
        if all(states.get(name) == "running" for name in names):
            return
        failed = {name: state for name, state in states.items() if state == "failed"}
        assert not failed, failed
        assert time.monotonic() < deadline, {n: states.get(n) for n in names}
        await asyncio.sleep(0.5)


async def test_100_users_x_100_requests_through_the_proxy(
    hub: Hub, lab_daemon: Daemon, load_users: list[PamUser]
) -> None:
    began = time.monotonic()
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def admit(user: PamUser) -> str:
        async with gate:
            return await log_in_and_start(hub, user)

    cookies = await asyncio.gather(*(admit(user) for user in load_users))
    logged_in = time.monotonic()
    await wait_running(lab_daemon, {user.name for user in load_users})
    running = time.monotonic()
    print(
        f"\n{LOAD_USERS} logins and starts through the hub: {logged_in - began:.1f} s; "
        f"all servers running after {running - began:.1f} s"
    )

    latencies: list[float] = []
    errors: list[str] = []
    slots = asyncio.Semaphore(CONCURRENCY)
    # Idle connections go before the hub's uvicorn closes them (timeout_keep_alive, 5 s):
    # reusing one it is closing fails, and this client, unlike a browser, does not retry.
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY, keepalive_expiry=2.0
    )

    async def one(client: httpx.AsyncClient, user: str, cookie: str, index: int) -> None:
        path = f"/user/{user}/load/{index}?n={index}"
        async with slots:
            sent = time.perf_counter()
            try:
                response = await client.get(path, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
            except httpx.HTTPError as exc:
                errors.append(f"{path}: {exc!r}")
                return
            latencies.append(time.perf_counter() - sent)
        if response.status_code != 200:
            errors.append(f"{path}: {response.status_code} {response.text[:200]}")
        elif response.json() != {"user": user, "path": path}:
            errors.append(f"{path}: answered {response.text[:200]}")

    async with httpx.AsyncClient(base_url=hub.url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                one(client, user.name, cookie, index)
                for index in range(REQUESTS_PER_USER)
                for user, cookie in zip(load_users, cookies, strict=True)
            )
        )
        took = time.perf_counter() - started
    total = LOAD_USERS * REQUESTS_PER_USER
    print(
        f"{total} proxied requests ({LOAD_USERS} users x {REQUESTS_PER_USER}, {CONCURRENCY} at "
        f"a time) in {took:.1f} s: {total / took:.0f} requests/s; {figures(latencies)}; "
        f"{len(errors)} errors"
    )
    assert not errors, (len(errors), errors[:10], hub.tail())
    assert len(latencies) == total


@pytest.fixture(scope="module")
def lab_users(
    hub: Hub, lab_daemon: Daemon, make_pam_user: Callable[..., PamUser]
) -> list[tuple[PamUser, str]]:
    """LAB_USERS users, logged in through the hub, each with a JupyterLab (started through the
    daemon: the hub starts the tiny command); (user, session cookie)."""
    users = [make_pam_user() for _ in range(LAB_USERS)]
    with ThreadPoolExecutor(2) as pool:  # two at a time: two cores
        starts = pool.map(lambda u: lab_daemon.api("POST", f"/v1/sessions/{u.name}", {}), users)
        for status, body in starts:
            assert status in (200, 201) and body["state"] == "running", (status, body)
    found = []
    for user in users:
        with hub.browser() as client:
            assert log_in(client, user.name, user.password).status_code == 303, hub.tail()
            found.append((user, client.cookies[SESSION_COOKIE]))
    return found


async def test_20_kernel_websockets_at_once_through_the_proxy(
    hub: Hub, lab_users: list[tuple[PamUser, str]]
) -> None:
    began = time.monotonic()
    kernels: list[tuple[str, str, str]] = []  # (user, cookie, kernel id)
    async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:

        async def new_kernel(user: str, cookie: str) -> None:
            response = await client.post(
                f"/user/{user}/api/kernels",
                json={"name": "python3"},
                headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
            )
            assert response.status_code == 201, (response.text, hub.tail())
            kernels.append((user, cookie, response.json()["id"]))

        await asyncio.gather(
            *(
                new_kernel(user.name, cookie)
                for user, cookie in lab_users
                for _ in range(KERNELS_PER_LAB)
            )
        )
    assert len(kernels) == LAB_USERS * KERNELS_PER_LAB == 20

    async def open_channels(user: str, cookie: str, kernel_id: str) -> ClientConnection:
        url = (
            "ws" + hub.url.removeprefix("http")
            + f"/user/{user}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        )  # fmt: skip
        return await connect(
            url, additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, open_timeout=120
        )

    opening = await asyncio.gather(
        *(open_channels(*kernel) for kernel in kernels), return_exceptions=True
    )
    sockets = [s for s in opening if isinstance(s, ClientConnection)]
    if len(sockets) < len(kernels):
        await asyncio.gather(*(socket.close() for socket in sockets))
        pytest.fail(
            f"WebSockets refused: {[repr(e) for e in opening if e not in sockets]}\n"
            + "\n".join(line for line in hub.tail(3000).splitlines() if "hostd.api.hub" in line)
        )
    opened = time.monotonic()
    round_trips: list[float] = []
    errors: list[str] = []

    async def work(number: int, socket: ClientConnection, user: str) -> None:
        try:
            # The first run waits for the kernel to be ready; it is not counted.
            assert await run_code_async(socket, user, f"k = {number}; print('ready')") == "ready\n"
            for round_ in range(ROUNDS):
                sent = time.perf_counter()
                printed = await run_code_async(socket, user, f"print(k * 1000 + {round_})")
                round_trips.append(time.perf_counter() - sent)
                if printed != f"{number * 1000 + round_}\n":
                    errors.append(f"kernel {number}: printed {printed!r}")
        except Exception as exc:  # counted, not raised: every socket's outcome is wanted
            errors.append(f"kernel {number}: {exc!r}")

    try:
        await asyncio.gather(
            *(
                work(n, s, kernel[0])
                for n, (s, kernel) in enumerate(zip(sockets, kernels, strict=True))
            )
        )
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))
    print(
        f"\n20 kernels started through the proxy in {opened - began:.1f} s; "
        f"{len(round_trips)} executions over 20 open WebSockets: {figures(round_trips)}; "
        f"{len(errors)} errors"
    )
    if errors:  # printed whole: pytest shortens an assertion's message
        print(hub.tail(3000), _session_journals(errors, kernels), sep="\n")
    assert not errors, errors
    assert len(round_trips) == 20 * ROUNDS


def _session_journals(errors: list[str], kernels: list[tuple[str, str, str]]) -> str:
    """The journal of each session whose kernel failed: what its server said about it."""
    failed = {int(error.split(":")[0].removeprefix("kernel ")) for error in errors}
    users = sorted({kernels[number][0] for number in failed})
    return "\n".join(
        subprocess.run(
            ["journalctl", "--no-pager", "-o", "short-precise", "-n", "300",
             "-u", f"jupyter-{user}.service"],
            capture_output=True, text=True, check=False,
        ).stdout
        for user in users
    )  # fmt: skip


def test_kernels_talk_over_unix_sockets_in_the_sessions_own_runtime_directory(
    hub: Hub, lab_users: list[tuple[PamUser, str]]
) -> None:
    """The cause of kernels dying when many start at once: on ZeroMQ's "tcp" transport each
    server picked its kernels' loopback ports by binding port 0 and letting go, and two
    sessions' kernels got the same port ("Address already in use", the kernel died, its
    WebSocket broke: test_20_kernel_websockets_at_once_through_the_proxy under load). A
    session's kernels now use Unix sockets in /run/jupyter-<user>, the user's alone."""
    user, cookie = lab_users[0]
    with httpx.Client(base_url=hub.url, timeout=120) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        made = client.post(f"/user/{user.name}/api/kernels", json={"name": "python3"})
        assert made.status_code == 201, (made.text, hub.tail())
        kernel_id = made.json()["id"]
        try:
            runtime = Path(f"/run/jupyter-{user.name}")
            info = runtime.stat()
            assert (info.st_uid, info.st_mode & 0o777) == (pwd.getpwnam(user.name).pw_uid, 0o700)
            connection = json.loads((runtime / f"kernel-{kernel_id}.json").read_text())
            assert connection["transport"] == "ipc", connection
            sockets = [runtime / f"{connection['ip']}-{connection[f'{channel}_port']}"
                       for channel in ("shell", "iopub", "stdin", "control", "hb")]  # fmt: skip
            assert all(path.parent == runtime for path in sockets), sockets
            deadline = time.monotonic() + 60  # the kernel binds them once it has started
            while not all(path.is_socket() for path in sockets):
                assert time.monotonic() < deadline, (sockets, sorted(runtime.iterdir()))
                time.sleep(0.1)
        finally:
            client.delete(f"/user/{user.name}/api/kernels/{kernel_id}")
