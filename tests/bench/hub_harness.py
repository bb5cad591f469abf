"""The hub's proxy alone, for profiling it without systemd: the hub's app as hostd-hub serves it
(uvicorn with httptools, uvloop, HubWebSocketProtocol), a fake daemon in the same process whose
user alice runs a server at UPSTREAM (a Unix socket: tests/bench/ws_echo.py, say).

    python -m tests.bench.hub_harness UPSTREAM_SOCKET PORT
prints alice's API token, then serves http://127.0.0.1:PORT/user/alice/ until interrupted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import uvicorn
import uvloop

from hostd.api.client import HostdClient
from hostd.api.daemon import build_daemon_app
from hostd.api.hub.app import build_hub_app
from hostd.api.hub.db import HubStore
from hostd.api.hub.security import load_or_create_secret
from hostd.api.hub.server import HubWebSocketProtocol
from hostd.api.hub.settings import HubConfig
from tests.api.fake import MEMBER, with_peer
from tests.api.hub.fake import HubFake, start_server


async def main(upstream: str, port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hub-") as directory:
        top = Path(directory)
        fake = HubFake()
        fake.upstream = f"http+unix://{quote(upstream, safe='')}"
        fake.add_session("alice")
        daemon_socket = top / "hostd.sock"
        daemon = await start_server(
            with_peer(build_daemon_app(fake), MEMBER), uds=str(daemon_socket)
        )
        config = HubConfig(state_dir=top / "state", hostd_socket=daemon_socket)
        config.state_dir.mkdir(mode=0o700)
        store = HubStore.open(config.database_url)
        store.record_login("alice", ok=True)
        token, _ = store.create_token("alice", uid=fake.uid_of("alice"), lifetime=timedelta(days=1))
        print(token, flush=True)
        app = build_hub_app(
            config,
            store=store,
            secret=load_or_create_secret(config.cookie_secret_path),
            daemon=HostdClient(str(daemon_socket)),
            uid_of=lambda user: os.getuid(),
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                http="httptools",
                ws=HubWebSocketProtocol,
                lifespan="on",
                log_config=None,
                access_log=False,
            )
        )
        try:
            await server.serve()
        finally:
            daemon[0].should_exit = True
            await daemon[1]
            store.close()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
