"""ACME mode's two listeners in one event loop: HTTP (challenges, redirects) and the hub's
HTTPS (api layer; called by hostd.api.hub.server.serve).

Order at start: the HTTP front (hostd.api.hub.front) listens first, since the CA's HTTP-01
check comes to it; the hub's HTTPS listener starts once state_dir/acme/cert.pem can be served
(at once when a valid one is there from an earlier run). uvicorn builds its SSLContext in
``Config.load()``; the renewal loop (hostd.api.hub.renewal) is handed that very object
(``Config.ssl``), so a renewed certificate reaches the listening socket without a restart.

Signals: SIGTERM and SIGINT stop both listeners. While HTTPS waits for its first certificate
this module catches them; then uvicorn's HTTPS server does (as without ACME) and tells the
HTTP front to stop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Iterator
from types import FrameType

import uvicorn

from hostd.api.hub.front import ChallengeStore, HttpFront
from hostd.api.hub.settings import HubConfig

__all__ = ["serve_with_acme"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _FrontServer(uvicorn.Server):
    """The HTTP front's server: it leaves the process's signals to the hub's server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _HubServer(uvicorn.Server):
    """The hub's HTTPS server, which stops the HTTP front when it is told to stop."""

    def __init__(self, config: uvicorn.Config, front: uvicorn.Server) -> None:
        super().__init__(config)
        self.front = front

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.front.should_exit = True


async def _unless_stopped(work: Awaitable[None]) -> bool:
    """Await work; False if SIGTERM or SIGINT came first (work is then cancelled)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    # signal.signal, as uvicorn does, so that the previous handlers come back afterwards.
    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    try:
        job = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({job, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            return False
        job.result()  # its exception, if any
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def serve_with_acme(config: HubConfig, https_config: uvicorn.Config) -> int:
    """Serve until stopped; the exit status (0: stopped as asked, 1: the hub did not start).
    https_config: the hub's uvicorn config, its certificate file state_dir/acme/cert.pem."""
    # Imported here: certbot's acme and cryptography are ~15 MiB of RSS that a hub without
    # ACME never needs (issue 17).
    from hostd.api.hub.renewal import CertKeeper

    challenges = ChallengeStore()
    keeper = CertKeeper(config, challenges)
    front_app = HttpFront(
        challenges,
        domains=config.acme_domains,
        https_port=config.port,
        ready=lambda: keeper.ready,
    )
    front = _FrontServer(
        uvicorn.Config(
            front_app,
            host=config.ip,
            port=config.http_port,
            lifespan="off",
            server_header=False,
            log_config=None,
            access_log=False,
        )
    )
    front_task = asyncio.create_task(front.serve())
    try:
        if not await _unless_stopped(keeper.first_certificate()):
            return 0
        https_config.load()  # makes https_config.ssl, the context the socket will serve from
        if https_config.ssl is None:
            raise RuntimeError("the hub's uvicorn config has no certificate")
        renewals = asyncio.create_task(keeper.keep_renewed(https_config.ssl))
        hub = _HubServer(https_config, front)
        try:
            await hub.serve()
        finally:
            renewals.cancel()
        return 0 if hub.started else 1
    finally:
        front.should_exit = True
        await front_task
