"""Fixtures of the hub's pure tests: a fake daemon on a Unix socket, a fake upstream server,
and the hub itself, each served by real uvicorn in the test's event loop."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn

from hostd.api.client import HostdClient
from hostd.api.daemon import build_daemon_app
from hostd.api.hub.app import build_hub_app
from hostd.api.hub.db import ApiToken, HubStore
from hostd.api.hub.security import load_or_create_secret
from hostd.api.hub.server import HubWebSocketProtocol
from hostd.api.hub.settings import HubConfig
from tests.api.fake import MEMBER, with_peer
from tests.api.hub.fake import (
    HubFake,
    start_server,
    stop_servers,
    upstream_app,
    url_of,
)
from tests.loopback import free_port


@dataclass
class HubUnderTest:
    url: str
    fake: HubFake
    store: HubStore
    config: HubConfig
    upstream_seen: list[str]  # every request path that reached the fake upstream
    server: uvicorn.Server | None = None  # the hub's (a test may stop it: should_exit)

    def client(self, **options: Any) -> httpx.AsyncClient:
        """A browser-like client: keeps cookies, follows no redirects."""
        return httpx.AsyncClient(base_url=self.url, timeout=10, **options)

    def make_token(
        self, user: str, *, note: str | None = None, lifetime: timedelta = timedelta(days=1)
    ) -> tuple[str, ApiToken]:
        """An API token of ``user``'s account as the fake daemon has it now (its uid)."""
        return self.store.create_token(
            user, uid=self.fake.uid_of(user), lifetime=lifetime, note=note
        )


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # sun_path holds 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="hub-") as directory:
        yield Path(directory)


@pytest.fixture
def hub_options() -> dict[str, Any]:
    """What a test changes of the hub's config (override this fixture, or the dict)."""
    return {}


@pytest.fixture
def server_owner() -> Callable[[str], int]:
    """Whose account the proxy expects a user's server socket to be: here every fake server
    is this process's (override to see the proxy refuse another's)."""
    return lambda user: os.getuid()


@pytest.fixture
def upstream_kind() -> str:
    """Where the fake user's server listens: "tcp" (127.0.0.1, a {PORT} cmd) or "socket" (a
    Unix socket, as the daemon's default cmd has it); test_proxy.py runs both."""
    return "tcp"


@pytest.fixture
async def hub(
    short_dir: Path,
    hub_options: dict[str, Any],
    server_owner: Callable[[str], int],
    upstream_kind: str,
) -> AsyncIterator[HubUnderTest]:
    fake = HubFake()
    daemon = await start_server(
        with_peer(build_daemon_app(fake), MEMBER), uds=str(short_dir / "hostd.sock")
    )
    upstream_seen: list[str] = []
    if upstream_kind == "socket":
        path = str(short_dir / "jupyter.sock")
        upstream = await start_server(upstream_app(upstream_seen), uds=path)
        fake.upstream = f"http+unix://{quote(path, safe='')}"  # as the daemon writes it
    else:
        upstream = await start_server(upstream_app(upstream_seen))
        fake.upstream = url_of(upstream[0])
    options: dict[str, Any] = {
        "state_dir": short_dir / "state",
        "hostd_socket": short_dir / "hostd.sock",
        "slow_spawn_timeout": 0.5,
        "slow_stop_timeout": 0.5,
        **hub_options,
    }
    tls = options.pop("tls", None)
    where: dict[str, Any] = {}
    if "{port}" in options.get("subdomain_host", ""):
        # subdomain_host names the hub's port: the hub listens on one picked first.
        where["port"] = free_port()
        options["subdomain_host"] = options["subdomain_host"].format(port=where["port"])
    config = HubConfig(**options)
    config.state_dir.mkdir(mode=0o700)
    store = HubStore.open(config.database_url)
    secret = load_or_create_secret(config.cookie_secret_path)
    app = build_hub_app(
        config,
        store=store,
        secret=secret,
        daemon=HostdClient(str(config.hostd_socket)),
        uid_of=server_owner,
    )
    # The hub's own WebSocket protocol, as hostd-hub serves it (hostd.api.hub.server).
    hub = await start_server(app, lifespan="on", ws=HubWebSocketProtocol, **(tls or {}), **where)
    try:
        yield HubUnderTest(
            url=url_of(hub[0]),
            fake=fake,
            store=store,
            config=config,
            upstream_seen=upstream_seen,
            server=hub[0],
        )
    finally:
        await stop_servers(hub, daemon, upstream)
        store.close()


@pytest.fixture
def browser(hub: HubUnderTest) -> Callable[..., httpx.AsyncClient]:
    return hub.client


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "hub.crt", directory / "hub.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
