"""What the client side loads: the daemon's client, its wire contract and JupyterHub's spawner
run in processes that are not the daemon's (the hub, JupyterHub), so they must not drag in a
server framework, systemd's bindings, PAM, the hub's database or anything of the root side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Prefixes of module names: "pam" is the python-pam package, not "pamela" or "hostd.pamhelper".
FORBIDDEN = ("starlette", "uvicorn", "pystemd", "pam", "sqlmodel", "hostd.daemon", "hostd.config")

_PROBE = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(sys.modules)))
"""


def run_script(source: str, *args: str) -> Any:
    """What a fresh interpreter running ``source`` with this tree's code printed (JSON)."""
    result = subprocess.run(
        [sys.executable, "-c", source, *args],
        cwd=ROOT,  # "-c" puts the working directory first on sys.path: this tree's code
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout)


def loaded_by(*modules: str) -> list[str]:
    """The modules a fresh interpreter holds after importing ``modules`` from this tree."""
    names: list[str] = run_script(_PROBE, *modules)
    return names


def forbidden(names: list[str]) -> list[str]:
    return [name for name in names if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize(
    "modules",
    [("hostd.api.wire",), ("hostd.api.client",), ("hostd.api.client", "hostd.api.spawner")],
)
def test_the_client_side_loads_no_server_framework_and_nothing_of_the_root_side(
    modules: tuple[str, ...],
) -> None:
    names = loaded_by(*modules)
    assert set(modules) <= set(names)
    assert forbidden(names) == []


def test_the_wire_contract_loads_no_http_library_at_all() -> None:
    names = loaded_by("hostd.api.wire")
    assert [name for name in names if name.split(".")[0] in ("httpx", "starlette")] == []


def test_the_probe_does_see_what_the_daemon_loads() -> None:
    assert {"starlette", "hostd.api.daemon"} <= set(loaded_by("hostd.api.daemon"))


def test_the_hub_talks_to_the_daemon_without_httpx() -> None:
    # Issue 17's footprint: httpx (with httpcore, and rich and pygments where installed) cost the
    # hub ~5 MiB of RSS; its daemon client speaks HTTP/1.1 over llhttp (api/client_transport.py).
    names = loaded_by("hostd.api.hub.cli", "hostd.api.hub.app", "hostd.api.hub.server")
    assert "hostd.api.client" in names
    assert [name for name in names if name.split(".")[0] in ("httpx", "httpcore", "h11")] == []


_LEAN_SERVER = """
import asyncio, json, socket, sys, tempfile
from hostd.api.lean_imports import uvicorn_server_only, without_package_init
uvicorn_server_only()
without_package_init("pystemd")
import hostd.api.hub.server, hostd.api.hub.listeners, hostd.daemon.server
hostd.daemon.server.JournalHandler()  # pystemd.journal, as hostd serve's log handler loads it
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("hello")

async def main():
    path = tempfile.mkdtemp() + "/s.sock"
    config = uvicorn.Config(
        Starlette(routes=[Route("/", hello)]), uds=path, http="httptools", lifespan="on",
        log_config=None, ws="none",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    answer = await reader.read()
    server.should_exit = True
    await task
    return answer.decode()

answer = asyncio.run(main())
print(json.dumps({"answer": answer, "modules": sorted(sys.modules)}))
"""


def test_the_daemon_and_the_hub_serve_with_uvicorn_s_server_alone() -> None:
    # hostd.api.lean_imports: the console scripts load uvicorn without uvicorn.main (click,
    # multiprocessing: ~2 MiB of each process's RSS); its server still serves, lifespan too.
    # The daemon's also loads pystemd's journal without the package's __init__.
    seen = run_script(_LEAN_SERVER)
    assert seen["answer"].startswith("HTTP/1.1 200 OK") and seen["answer"].endswith("hello")
    assert [
        name for name in seen["modules"] if name.split(".")[0] in ("click", "multiprocessing")
    ] == []
    assert "uvicorn.main" not in seen["modules"]
    # pystemd's journal alone: not its object layer (systemd1, machine1) nor lxml (~4 MiB).
    assert "pystemd.journal" in seen["modules"]
    assert [name for name in seen["modules"] if name.split(".")[0] == "lxml"] == []
    assert "pystemd.systemd1" not in seen["modules"]


_DAEMON_WITHOUT_TLS = """
import hostd.cli.serve  # what `hostd serve` has loaded when it calls without_tls
from hostd.api.lean_imports import NoTLSError, uvicorn_server_only, without_package_init
from hostd.api.lean_imports import without_tls
stood_in = without_tls()
import asyncio, hashlib, json, secrets, tempfile
uvicorn_server_only()
without_package_init("pystemd")
import hostd.daemon.server, ssl, uvicorn
from hostd.daemon.metrics import Metrics
from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

async def metrics(request):
    body, kind = Metrics().render((), 0)
    return PlainTextResponse(body, media_type=kind)

async def main():
    path = tempfile.mkdtemp() + "/s.sock"
    source = hostd.cli.serve.__file__
    routes = [Route("/metrics", metrics), Route("/file", lambda request: FileResponse(source))]
    config = uvicorn.Config(
        Starlette(routes=routes), uds=path, lifespan="on", log_config=None, ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    answers = []
    for target in ("/metrics", "/file"):  # a file's answer carries an md5 etag (hashlib)
        reader, writer = await asyncio.open_unix_connection(path)
        ask = f"GET {target} HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"
        writer.write(ask.encode())
        answers.append((await reader.read()).decode(errors="replace"))
        writer.close()
    server.should_exit = True
    await task
    return answers

answers = asyncio.run(main())
try:
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    refused = ""
except NoTLSError as exc:
    refused = str(exc)
mapped = [line.split()[-1] for line in open("/proc/self/maps") if len(line.split()) > 5]
print(json.dumps({
    "stood_in": stood_in, "answers": answers, "refused": refused,
    "openssl": sorted({p for p in mapped if "libcrypto" in p or "libssl" in p}),
    "digest": hashlib.sha256(b"hostd").hexdigest(), "token": len(secrets.token_urlsafe(16)),
}))
"""


def test_the_daemon_serves_without_openssl_in_its_address_space() -> None:
    # Issue 17's footprint: OpenSSL cost the daemon 4.3 MiB of RSS, for TLS it never speaks
    # (hostd.api.lean_imports.without_tls). It still serves, renders metrics, hashes.
    seen = run_script(_DAEMON_WITHOUT_TLS)
    assert seen["stood_in"] is True
    assert seen["openssl"] == []
    metrics, file = seen["answers"]
    assert metrics.startswith("HTTP/1.1 200 OK") and "hostd_" in metrics
    assert file.startswith("HTTP/1.1 200 OK") and "etag:" in file.lower()
    assert "does not load TLS" in seen["refused"]
    assert seen["digest"] == "f101f53eeeb1e0d02c89d6da2954e31a739653aa18e18bd9d5ebb7af5f6469ab"
    assert seen["token"] > 16


def test_without_tls_leaves_a_loaded_ssl_whole() -> None:
    import ssl

    from hostd.api.lean_imports import without_tls

    assert without_tls() is False
    assert sys.modules["ssl"] is ssl and hasattr(ssl, "OPENSSL_VERSION")
