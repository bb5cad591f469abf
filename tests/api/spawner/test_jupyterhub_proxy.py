"""PatientConfigurableHTTPProxy against the real configurable-http-proxy, made slow to listen.

On a slow host node takes longer than the 10 s JupyterHub gives it (run 37, stop 26's CI: the
first start of install.sh --jupyterhub died with "didn't respond in 10 seconds"). Here the real
proxy is started 11 s late by a shell in front of it: JupyterHub's own class gives up, ours
waits for the same process and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from jupyterhub.proxy import ConfigurableHTTPProxy

from hostd.api.jupyterhub_proxy import JUPYTERHUB_WAIT, PatientConfigurableHTTPProxy
from tests.api.spawner.systemd.conftest import CHP
from tests.loopback import free_port

LATE = JUPYTERHUB_WAIT + 1  # seconds node starts after JupyterHub's wait began


def late(seconds: int, then: str) -> list[str]:
    """A command that runs `then` (with JupyterHub's arguments) `seconds` after it starts."""
    return ["sh", "-c", f'sleep {seconds} && exec {then} "$@"', "late-proxy"]


MakeProxy = Callable[..., ConfigurableHTTPProxy]


@pytest.fixture
async def make_proxy(tmp_path: Path) -> AsyncIterator[MakeProxy]:
    made: list[ConfigurableHTTPProxy] = []

    def make(
        cls: type[ConfigurableHTTPProxy], command: list[str], **traits: object
    ) -> ConfigurableHTTPProxy:
        proxy = cls(
            public_url=f"http://127.0.0.1:{free_port()}/",
            api_url=f"http://127.0.0.1:{free_port()}",
            auth_token="test-token",
            command=command,
            pid_file=str(tmp_path / f"proxy-{len(made)}.pid"),
            hub=SimpleNamespace(url="http://127.0.0.1:1/hub/"),
            app=SimpleNamespace(subdomain_host="", internal_ssl=False),
            **traits,
        )
        made.append(proxy)
        return proxy

    yield make
    # Nothing left behind: every process a test started is gone, whatever the test did.
    for proxy in made:
        process = getattr(proxy, "proxy_process", None)
        if process is None:
            continue
        proxy.stop()
        # Its own session (start_new_session): the shell and its sleep or node, all of them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def listens(url: str) -> bool:
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


async def test_jupyterhubs_own_proxy_class_gives_up_on_a_proxy_that_listens_after_10_s(
    make_proxy: MakeProxy,
) -> None:
    proxy = make_proxy(ConfigurableHTTPProxy, late(LATE, str(CHP)))
    with pytest.raises(TimeoutError):
        await proxy.start()


async def test_a_proxy_that_listens_after_10_s_is_waited_for_and_serves(
    make_proxy: MakeProxy,
) -> None:
    proxy = make_proxy(PatientConfigurableHTTPProxy, late(LATE, str(CHP)))
    await proxy.start()
    assert listens(proxy.public_url) and listens(proxy.api_url)
    # It is the proxy JupyterHub talks to: its API answers with the token, and it is watched.
    assert await proxy.get_all_routes() == {}
    assert proxy._check_running_callback.is_running()
    pid = proxy.proxy_process.pid
    proxy.stop()
    await asyncio.to_thread(proxy.proxy_process.wait, 10)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_proxy_that_exits_while_waited_for_fails_the_start_with_its_exit_code(
    make_proxy: MakeProxy,
) -> None:
    proxy = make_proxy(
        PatientConfigurableHTTPProxy, ["sh", "-c", f"sleep {LATE}; exit 3", "broken-proxy"]
    )
    with pytest.raises(RuntimeError, match="exit code 3"):
        await proxy.start()


async def test_a_proxy_that_never_listens_fails_the_start_after_start_timeout(
    make_proxy: MakeProxy,
) -> None:
    proxy = make_proxy(
        PatientConfigurableHTTPProxy,
        ["sh", "-c", "exec sleep 60", "mute-proxy"],
        start_timeout=LATE,
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        await proxy.start()
    assert loop.time() - began < LATE + 3
