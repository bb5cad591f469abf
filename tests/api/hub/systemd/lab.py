"""Talking to a user's JupyterLab through the hub, for the hub's systemd tier: start it with the
user's cookie and follow its progress; run code in a kernel over the proxy's WebSocket
(the Jupyter messaging protocol, 5.3), with the sync or the asyncio websockets client."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.sync.client import ClientConnection, connect

from hostd.api.hub.identity import SESSION_COOKIE
from tests.api.hub.systemd.conftest import Hub, xsrf_of

START_TIMEOUT_S = 90
KERNEL_ANSWER_S = 60


def progress(client: httpx.Client, user: str, server: str = "") -> list[dict[str, Any]]:
    """The start progress events of the user's default server (or named ``server``), until ready
    or failed."""
    found: list[dict[str, Any]] = []
    where = f"servers/{server}" if server else "server"
    path = f"/hub/api/users/{user}/{where}/progress"
    with client.stream("GET", path, timeout=START_TIMEOUT_S) as stream:
        assert stream.status_code == 200, stream.read()
        for line in stream.iter_lines():
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
                if found[-1].get("ready") or found[-1].get("failed"):
                    break
    return found


def start_lab(hub: Hub, client: httpx.Client, user: str) -> str:
    """Start the user's server through the hub's API with their cookie; its URL once ready."""
    xsrf = xsrf_of(client.get("/hub/home").text)
    response = client.post(f"/hub/api/users/{user}/server", headers={"X-XSRFToken": xsrf})
    assert response.status_code in (201, 202), (response.text, hub.tail())
    events = progress(client, user)
    assert events[-1].get("ready"), (events, hub.tail())
    return str(events[-1]["url"])


def ws_url(hub: Hub, path: str) -> str:
    return "ws" + hub.url.removeprefix("http") + path


def cookie(client: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"}


def channels(hub: Hub, client: httpx.Client, user: str, kernel_id: str) -> ClientConnection:
    """A kernel's channels WebSocket through the hub's proxy, with the user's cookie."""
    session = uuid.uuid4().hex
    url = ws_url(hub, f"/user/{user}/api/kernels/{kernel_id}/channels?session_id={session}")
    return connect(url, additional_headers=cookie(client), open_timeout=30)


def execute_request(user: str, code: str) -> tuple[str, str]:
    """An execute_request message: its id and its text."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": user,
        "session": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "version": "5.3",
        "date": datetime.now(UTC).isoformat(),
    }
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}  # fmt: skip
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content,
               "channel": "shell", "buffers": []}  # fmt: skip
    return msg_id, json.dumps(message)


class Printed:
    """What the kernel printed in answer to one request, message by message."""

    def __init__(self, msg_id: str) -> None:
        self.msg_id = msg_id
        self.text = ""

    def take(self, raw: str | bytes) -> bool:
        """Take one message; True once the kernel is idle again after the request."""
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != self.msg_id:
            return False
        kind = message["header"]["msg_type"]
        if kind == "stream":
            self.text += message["content"]["text"]
        if kind == "error":
            self.text += "error: " + message["content"]["ename"]
        return bool(kind == "status" and message["content"]["execution_state"] == "idle")


def run_code(socket: ClientConnection, user: str, code: str) -> str:
    """Run code over an open channels WebSocket; what it printed."""
    msg_id, request = execute_request(user, code)
    socket.send(request)
    printed = Printed(msg_id)
    deadline = time.monotonic() + KERNEL_ANSWER_S
    while time.monotonic() < deadline:
        if printed.take(socket.recv(timeout=KERNEL_ANSWER_S)):
            return printed.text
    raise AssertionError(f"no answer from the kernel; printed so far {printed.text!r}")


async def run_code_async(socket: AsyncConnection, user: str, code: str) -> str:
    """run_code over the asyncio client."""
    msg_id, request = execute_request(user, code)
    await socket.send(request)
    printed = Printed(msg_id)
    async with asyncio.timeout(90):
        while not printed.take(await socket.recv()):
            pass
    return printed.text
