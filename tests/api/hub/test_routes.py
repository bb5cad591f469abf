"""hostd.api.hub.routes.Routes: a route belongs to one run of its user's session; the daemon
saying the session ended or started again drops it (over a stand-in for the daemon's client)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from hostd.api.client import HostdClient
from hostd.api.hub.routes import Routes
from hostd.units.errors import SessionNotFound, SystemdUnavailable
from hostd.units.values import SessionView

FIRST = datetime(2026, 12, 6, 10, tzinfo=UTC)
RUNNING = SessionView(
    user="alice",
    unit="jupyter-alice.service",
    state="running",
    started_at=FIRST,
    url="http://127.0.0.1:20001/user/alice/",
)


class Daemon:
    """What Routes asks of HostdClient: the session's view and token."""

    def __init__(self) -> None:
        self.view: SessionView | None = RUNNING
        self.gets = 0

    async def get(self, user: str) -> SessionView:
        self.gets += 1
        if self.view is None:
            raise SessionNotFound(f"{user} has no session")
        return self.view

    async def token(self, user: str) -> str:
        return f"token of {self.view.started_at if self.view else None}"


def routes_over(daemon: Daemon) -> Routes:
    return Routes(cast(HostdClient, daemon), revalidate_s=0.0, uid_of=lambda user: os.getuid())


async def settle(routes: Routes) -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_route_is_kept_while_the_daemon_says_it_is_the_same_run() -> None:
    daemon = Daemon()
    routes = routes_over(daemon)
    first = await routes.get("alice")
    assert first is not None and first.port == 20001 and first.uid == os.getuid()
    assert await routes.get("alice") is first  # answered at once; checked in the background
    await settle(routes)
    assert await routes.get("alice") is first and daemon.gets >= 2
    await routes.aclose()


async def test_a_session_started_again_outside_the_hub_drops_its_route() -> None:
    # Same port, same uid, another invocation (and token): the old route must go.
    daemon = Daemon()
    routes = routes_over(daemon)
    first = await routes.get("alice")
    daemon.view = replace(RUNNING, started_at=datetime(2026, 12, 6, 11, tzinfo=UTC))
    assert await routes.get("alice") is first
    await settle(routes)
    second = await routes.get("alice")
    assert second is not None and second is not first and second.token != first.token
    await routes.aclose()


async def test_a_session_that_ended_or_moved_drops_its_route() -> None:
    daemon = Daemon()
    routes = routes_over(daemon)
    await routes.get("alice")
    daemon.view = replace(RUNNING, url="http://127.0.0.1:20002/user/alice/")
    await routes.get("alice")
    await settle(routes)
    moved = await routes.get("alice")
    assert moved is not None and moved.port == 20002
    daemon.view = None
    await routes.get("alice")
    await settle(routes)
    assert await routes.get("alice") is None
    await routes.aclose()


async def test_a_daemon_that_cannot_answer_keeps_the_route_for_now() -> None:
    daemon = Daemon()
    routes = routes_over(daemon)
    first = await routes.get("alice")

    async def unreachable(user: str) -> SessionView:
        raise SystemdUnavailable("hostd is restarting")

    daemon.get = unreachable  # type: ignore[method-assign]
    await routes.get("alice")
    await settle(routes)
    assert await routes.get("alice") is first
    await routes.aclose()
