"""Fixtures of the API's tests: a fake service, the app over it, and HTTP clients of the app."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from hostd.api.daemon import build_daemon_app
from hostd.units.values import PeerCredentials
from tests.api.fake import ROOT, FakeSessionService, with_peer

# Short, so a test of a follow whose first line is slow stays fast.
FIRST_LINE_WAIT_S = 0.2


@pytest.fixture
def fake() -> FakeSessionService:
    return FakeSessionService()


@pytest.fixture
def app(fake: FakeSessionService) -> Starlette:
    return build_daemon_app(fake, first_line_wait_s=FIRST_LINE_WAIT_S)


def asgi_client(app: Starlette, peer: PeerCredentials | None) -> httpx.AsyncClient:
    # raise_app_exceptions=False: what matters is what a client would see on the wire.
    transport = httpx.ASGITransport(app=with_peer(app, peer), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://hostd")


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app as root."""
    async with asgi_client(app, ROOT) as client:
        yield client


@pytest.fixture
def http_as(app: Starlette) -> Callable[[PeerCredentials | None], httpx.AsyncClient]:
    """A client of the app as another peer (or none); the test closes it."""
    return lambda peer: asgi_client(app, peer)


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A path for a Unix socket in a fresh directory: short, as sun_path holds 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="hostd-") as directory:
        yield Path(directory) / "hostd.sock"
