"""Issue 8 §3: the hub's proxy against direct to the server and configurable-http-proxy (npm)
in front of the same server, with the same client.

The server is one real JupyterLab session on a Unix socket, as hostd's default command starts
it (issue 13): the hub and configurable-http-proxy (an ``http+unix://`` target, which CHP 5
supports) both forward to that socket. wrk speaks TCP only, so "direct" is a second user's
JupyterLab, the same command on a loopback port: the server's own time. HTTP: wrk (Debian's),
loaded (2 threads, 16 connections: requests/s; in rounds, the targets taking turns, each
target's median round reported) and once one request at a time (1 connection: p50/p99, the
latency a proxy adds). Small body: ``GET .../api`` (about 20 bytes);
1 MB: ``GET .../files/big.bin``. Direct and configurable-http-proxy send the session's
Jupyter token; the hub gets the user's hub token and adds the Jupyter token itself.

WebSocket, two rows. "proxy ws" (issue 17's target): a third user's session runs a WebSocket
echo server on its Unix socket (tests/bench/ws_echo.py, [commands] wsecho), 16 connections with
a message in flight on each (tests/bench/ws_load.py); "direct" is the client on that very
socket, configurable-http-proxy a second instance pointed at it: a row bound by the proxy.
"proxy ws kernel": one kernel's channels, 16 kernel_info requests in flight: bound by the
kernel's own reply rate (every target gets about the same), kept to show that a real kernel's
WebSocket is not slowed.

"proxy small lean" (issue 17's small-GET target): the same small GETs, with wrk as above, to
that lean server on its Unix socket (it answers ``200 ok``, 2 bytes) through the hub and through
configurable-http-proxy; "direct" is a fourth user's lean server on a loopback port. JupyterLab
answers about as many small GETs a second as the hub passes on, so "proxy small" measures
JupyterLab; this row measures the proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.bench.context import Context, OurHubDriver
from tests.bench.env import CHP, http, sh
from tests.bench.framework import Result, row
from tests.bench.ws_load import ws_echo_rate
from tests.loopback import free_port

WRK_LOADED = ("-t2", "-c16")
WRK_SERIAL = ("-t1", "-c1")
WS_IN_FLIGHT = 16
BIG = 1024 * 1024


def _duration(ctx: Context) -> int:
    return 4 if ctx.quick else 10


def _rounds(ctx: Context) -> int:
    """How many times each rate is measured, the targets taking turns in each round: two full
    runs half an hour apart differed by more than a target's margin (1 MB: 1.06 and 1.55 ×
    configurable-http-proxy), and a drift in the machine's other work then weighs on every
    target alike. The row reports each target's median round."""
    return 2 if ctx.quick else 3


def _in_rounds(
    ctx: Context, names: list[str], measure: Callable[[str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """``measure(name)`` for every target, _rounds(ctx) times, the targets taking turns."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(_rounds(ctx)):
        for name in names:
            rounds[name].append(measure(name))
    return rounds


def _median_round(rounds: list[dict[str, Any]], rate: str) -> dict[str, Any]:
    """The round with the median rate (of an even number, the lower middle one; a failed round
    counts as 0), with every round's rate."""
    ordered = sorted(rounds, key=lambda r: r[rate] or 0.0)
    return {**ordered[(len(ordered) - 1) // 2], "rounds": [r[rate] for r in rounds]}


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url: str, header: str, options: tuple[str, ...], seconds: int) -> dict[str, Any]:
    done = sh("wrk", *options, f"-d{seconds}s", "--latency", "-H", header, url,
              timeout=seconds + 60)  # fmt: skip
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s|m))", out, re.M))
    return {
        "rps": float(found.group(1)) if found else None,
        "p50_s": _seconds(percentiles["50"]) if "50" in percentiles else None,
        "p99_s": _seconds(percentiles["99"]) if "99" in percentiles else None,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


async def ws_rate(url: str, header: tuple[str, str], seconds: float) -> dict[str, Any]:
    """Messages received per second on a kernel's channels, WS_IN_FLIGHT requests in flight."""
    from websockets.asyncio.client import connect

    received = replies = 0
    session = uuid.uuid4().hex

    def request() -> str:
        msg_id = uuid.uuid4().hex
        head = {"msg_id": msg_id, "username": "bench", "session": session,
                "msg_type": "kernel_info_request", "version": "5.3", "date": ""}  # fmt: skip
        return json.dumps({"header": head, "parent_header": {}, "metadata": {}, "content": {},
                           "channel": "shell", "buffers": []})  # fmt: skip

    async with connect(url, additional_headers=[header], max_size=2**24) as ws:
        for _ in range(WS_IN_FLIGHT):
            await ws.send(request())
        t0 = time.monotonic()
        deadline = t0 + seconds
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            received += 1
            if message.get("msg_type") == "kernel_info_reply":
                replies += 1
                await ws.send(request())
        span = time.monotonic() - t0
    return {"messages_per_s": received / span, "round_trips_per_s": replies / span}


def _start(hostd: Any, user: str, command: str | None) -> tuple[str, str]:
    """(the session's URL, its Jupyter token header), started through hostd's API."""
    body = {"command": command} if command else {}
    status, view = hostd.api("POST", f"/v1/sessions/{user}?wait=true", body)
    if status not in (200, 201):
        raise RuntimeError(f"the proxy rows' server did not start: {status} {view}")
    status, token = hostd.api("GET", f"/v1/sessions/{user}/token")
    if status != 200:
        raise RuntimeError(f"hostd gave no Jupyter token: {status} {token}")
    big = Path(f"/home/{user}/big.bin")
    big.write_bytes(b"x" * BIG)
    shutil.chown(big, user, user)
    return str(view["url"]).rstrip("/"), f"Authorization: token {token['token']}"


def start_chp(port: int, socket_origin: str) -> subprocess.Popen[bytes]:
    """configurable-http-proxy on 127.0.0.1:``port``, its default target the session's socket
    (``http+unix://...``), as the proxy rows compare it."""
    return subprocess.Popen(
        [str(CHP), "--ip", "127.0.0.1", "--port", str(port),
         "--api-ip", "127.0.0.1", "--api-port", str(free_port()),
         "--default-target", socket_origin, "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_chp(chp: subprocess.Popen[bytes]) -> None:
    chp.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        chp.wait(timeout=10)


class ProxySetup:
    """One JupyterLab on a Unix socket, through hostd-hub and through configurable-http-proxy;
    a second user's on a loopback port, asked directly."""

    def __init__(self, ctx: Context) -> None:
        self.driver = ctx.our_hub()
        self.hub = self.driver.hub
        self.hostd = ctx.hostd()
        self.user = ctx.users.make("px")
        self.direct_user = ctx.users.make("pd")
        self.driver.prepare(self.user)
        origin, self.jupyter_header = _start(self.hostd, self.user, "socket")
        if not origin.startswith("http+unix://"):
            raise RuntimeError(f"the proxy rows' server is not on a Unix socket: {origin}")
        socket_origin = origin.split("/user/", 1)[0]  # http+unix://<path, percent-encoded>
        self.direct, direct_header = _start(self.hostd, self.direct_user, None)
        self.hub_header = f"Authorization: token {self.hub.tokens[self.user]}"
        self.chp_port = free_port()
        self.chp = start_chp(self.chp_port, socket_origin)
        base = f"/user/{self.user}"
        self.targets = {
            "direct": (self.direct, direct_header),
            "configurable-http-proxy": (
                f"http://127.0.0.1:{self.chp_port}{base}",
                self.jupyter_header,
            ),
            "hub": (f"{self.hub.url}{base}", self.hub_header),
        }
        deadline = time.monotonic() + 30
        for name, (url, header) in self.targets.items():
            key, value = header.split(": ", 1)
            while True:
                with contextlib.suppress(OSError):
                    if http(f"{url}/files/big.bin", headers={key: value})[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} does not serve {url}/files/big.bin with 200")
                time.sleep(0.2)

    def close(self) -> None:
        stop_chp(self.chp)
        for user in (self.user, self.direct_user):
            with contextlib.suppress(Exception):
                self.hostd.api("DELETE", f"/v1/sessions/{user}")


class EchoSetup:
    """The lean server (tests/bench/ws_echo.py) on a session's Unix socket, through the hub and
    through a configurable-http-proxy of its own; "direct" is its socket for WebSockets, and a
    second user's lean server on a loopback port for wrk."""

    def __init__(self, ctx: Context, driver: OurHubDriver) -> None:
        self.hostd = ctx.hostd()
        self.user = ctx.users.make("pe")
        self.direct_user = ctx.users.make("pl")
        self.chp: subprocess.Popen[bytes] | None = None
        try:
            self._start(driver)
        except BaseException:
            self.close()
            raise

    def _start(self, driver: OurHubDriver) -> None:
        driver.prepare(self.user)
        origin, jupyter_header = _start(self.hostd, self.user, "wsecho")
        if not origin.startswith("http+unix://"):
            raise RuntimeError(f"the echo server is not on a Unix socket: {origin}")
        socket_origin = origin.split("/user/", 1)[0]
        direct, _ = _start(self.hostd, self.direct_user, "wsechoport")
        self.chp_port = free_port()
        self.chp = start_chp(self.chp_port, socket_origin)
        base = f"/user/{self.user}/echo"
        key, value = jupyter_header.split(": ", 1)
        hub_token = ("Authorization", f"token {driver.hub.tokens[self.user]}")
        chp_url = f"http://127.0.0.1:{self.chp_port}{base}"
        self.targets: dict[str, tuple[str, tuple[str, str]]] = {
            "direct": ("unix:" + unquote(socket_origin.removeprefix("http+unix://")), (key, value)),
            "configurable-http-proxy": (chp_url, (key, value)),
            "hub": (f"{driver.hub.url}{base}", hub_token),
        }
        self.proxy_pids = {"configurable-http-proxy": self.chp.pid, "hub": driver.hub.pid}
        # The small GETs' targets (wrk: TCP only, the header as one string).
        self.http_targets = {
            "direct": (f"{direct}/small", jupyter_header),
            "configurable-http-proxy": (f"{chp_url}/small", jupyter_header),
            "hub": (f"{driver.hub.url}{base}/small", f"{hub_token[0]}: {hub_token[1]}"),
        }
        deadline = time.monotonic() + 30
        while True:  # configurable-http-proxy listening
            with contextlib.suppress(OSError):
                if http(chp_url)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("configurable-http-proxy does not reach the echo server")
            time.sleep(0.2)

    def close(self) -> None:
        if self.chp is not None:
            stop_chp(self.chp)
        for user in (self.user, self.direct_user):
            with contextlib.suppress(Exception):
                self.hostd.api("DELETE", f"/v1/sessions/{user}")


def _echo_rows(
    ctx: Context, driver: OurHubDriver, keys: list[str], seconds: int, results: dict[str, Result]
) -> None:
    """The rows whose upstream is the lean server, on one setup; each row's failure its own."""
    try:
        setup = EchoSetup(ctx, driver)
    except Exception as exc:
        for key in keys:
            results[key] = Result.error(f"{type(exc).__name__}: {exc}")
        return
    try:
        if "proxy ws" in keys:
            results["proxy ws"] = _failed_as_error(lambda: _ws_echo(ctx, setup, seconds))
        if "proxy small lean" in keys:
            results["proxy small lean"] = _failed_as_error(
                lambda: _http_row(ctx, "proxy small lean", setup.http_targets, seconds)
            )
    finally:
        setup.close()


def _ws_echo(ctx: Context, setup: EchoSetup, seconds: int) -> Result:
    def measure(name: str) -> dict[str, Any]:
        target, header = setup.targets[name]
        got = ws_echo_rate(target, header, seconds, setup.proxy_pids.get(name))
        ctx.log(f"  proxy ws {name}: {got}")
        return got

    rounds = _in_rounds(ctx, list(setup.targets), measure)
    measured = {name: _median_round(got, "messages_per_s") for name, got in rounds.items()}
    return Result(samples=[], unit="msg/s", extra=measured)


def _http_row(ctx: Context, key: str, targets: dict[str, tuple[str, str]], seconds: int) -> Result:
    """wrk loaded (req/s, rounds taken in turns) and one request at a time (p50, p99) against
    each target."""

    def measure(name: str) -> dict[str, Any]:
        url, header = targets[name]
        got = wrk(url, header, WRK_LOADED, seconds)
        ctx.log(f"  {key} {name}: {got['rps']} req/s")
        return got

    rounds = _in_rounds(ctx, list(targets), measure)
    measured: dict[str, Any] = {}
    for name, (url, header) in targets.items():
        serial = wrk(url, header, WRK_SERIAL, seconds)
        loaded = _median_round(rounds[name], "rps")
        # Every round's wrong answers count, not only the median round's.
        loaded["non_2xx"] = sum(r["non_2xx"] for r in rounds[name])
        measured[name] = {"loaded": loaded, "serial": serial}
        ctx.log(f"  {key} {name}: median {loaded['rps']} req/s, p50 {serial['p50_s']}")
    return Result(samples=[], unit="req/s", extra=measured)


ROW_KEYS = ("proxy small", "proxy small lean", "proxy 1MB", "proxy ws", "proxy ws kernel")
ECHO_ROWS = ("proxy ws", "proxy small lean")


def proxy_phase(ctx: Context) -> dict[str, Result]:
    if "proxy" in ctx.data:
        return dict(ctx.data["proxy"])
    why = ctx.our_hub_unavailable()
    if why is not None:
        missing = {key: Result.unavailable(why) for key in ROW_KEYS}
        ctx.data["proxy"] = missing
        return dict(missing)
    seconds = _duration(ctx)
    # Each row's own failure is its own: the echo row stands if JupyterLab does not start.
    results: dict[str, Result] = {}
    ctx.data["proxy"] = results
    echo_rows = [key for key in ECHO_ROWS if ctx.wanted(key)]
    if echo_rows:
        _echo_rows(ctx, ctx.our_hub(), echo_rows, seconds, results)
    lab_rows = [key for key in ("proxy small", "proxy 1MB", "proxy ws kernel") if ctx.wanted(key)]
    if lab_rows:
        try:
            _lab_rows(ctx, lab_rows, seconds, results)
        except Exception as exc:
            for key in lab_rows:
                results.setdefault(key, Result.error(f"{type(exc).__name__}: {exc}"))
    return dict(results)


def _failed_as_error(measure: Any) -> Result:
    try:
        result: Result = measure()
    except Exception as exc:
        return Result.error(f"{type(exc).__name__}: {exc}")
    return result


def _lab_rows(ctx: Context, keys: list[str], seconds: int, results: dict[str, Result]) -> None:
    setup = ProxySetup(ctx)
    try:
        for key, path in (("proxy small", "/api"), ("proxy 1MB", "/files/big.bin")):
            if key in keys:
                targets = {name: (url + path, h) for name, (url, h) in setup.targets.items()}
                results[key] = _http_row(ctx, key, targets, seconds)
        if "proxy ws kernel" in keys:
            results["proxy ws kernel"] = _ws(ctx, setup, seconds)
    finally:
        setup.close()


def _ws(ctx: Context, setup: ProxySetup, seconds: int) -> Result:
    """A kernel of its own per target (made and ended through that target)."""
    measured: dict[str, Any] = {}
    for name, (url, header) in setup.targets.items():
        hkey, hvalue = header.split(": ", 1)
        status, body = http(f"{url}/api/kernels", "POST", body={}, headers={hkey: hvalue})
        if status != 201:
            return Result.error(f"no kernel through {name}: {status} {body[:200]!r}")
        kernel = json.loads(body)["id"]
        try:
            ws_url = "ws" + url.removeprefix("http") + f"/api/kernels/{kernel}/channels"
            measured[name] = asyncio.run(ws_rate(ws_url, (hkey, hvalue), seconds))
            ctx.log(f"  proxy ws kernel {name}: {measured[name]}")
        finally:
            http(f"{url}/api/kernels/{kernel}", "DELETE", headers={hkey: hvalue})
    return Result(samples=[], unit="msg/s", extra=measured)


def _proxy_row(key: str) -> Any:
    def run(ctx: Context) -> Result:
        return proxy_phase(ctx)[key]

    return run


PROXY_ROWS = {
    "proxy small": "HTTP GET .../api (small body) from JupyterLab",
    "proxy small lean": "HTTP GET (2-byte body) from a lean server (httptools, uvloop)",
    "proxy 1MB": "HTTP GET .../files/big.bin (1 MB body)",
    "proxy ws": "WebSocket: echo server, 16 connections, a 256-byte message in flight on each",
    "proxy ws kernel": "WebSocket: kernel channels, 16 kernel_info requests in flight",
}
for _key, _title in PROXY_ROWS.items():
    row(_key, "proxy", _title)(_proxy_row(_key))
