"""``hostd-hub``: options, config checks, the refusal to run as root, and a real start (files
made 0600, pages served, a clean stop on SIGTERM); HTTPS with a Secure cookie."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hostd.api.hub import cli
from hostd.api.hub.identity import SESSION_COOKIE
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in
from tests.api.hub.test_login import set_cookie
from tests.loopback import free_port

HUB = Path(sys.executable).parent / "hostd-hub"


def test_check_config_reads_the_file_and_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\nip = "127.0.0.1"\n')
    assert cli.main(["--config", str(path), "--port", "8443", "--check-config"]) == 0
    assert capsys.readouterr().out == f"ok: {path} (http on 127.0.0.1:8443)\n"


def test_a_bad_config_prints_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[hub]\nport = 0\nnope = 1\n")
    assert cli.main(["--config", str(path), "--ssl-cert", "/etc/c.pem", "--check-config"]) == 1
    err = capsys.readouterr().err
    assert "hub.port:" in err and "hub.nope:" in err and "hub.ssl_cert:" in err


def test_root_is_refused_without_allow_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    path = tmp_path / "hub.toml"
    path.write_text(f'[hub]\nstate_dir = "{tmp_path}/state"\n')
    assert cli.main(["--config", str(path)]) == 1
    assert "refusing to run as root" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_a_state_dir_that_cannot_be_made_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    (tmp_path / "file").write_text("")
    path = tmp_path / "hub.toml"
    path.write_text(f'[hub]\nstate_dir = "{tmp_path}/file/state"\n')
    assert cli.main(["--config", str(path)]) == 1
    assert "cannot make the state directory" in capsys.readouterr().err


def openssl_mapped(pid: int) -> list[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return sorted({line.split()[-1] for line in lines if "libcrypto" in line or "libssl" in line})


def run_hub(tmp_path: Path, extra: str = "", verify: ssl.SSLContext | None = None) -> list[str]:
    """Start the real ``hostd-hub``, GET its login page, stop it with SIGTERM; what OpenSSL
    libraries it had mapped while serving."""
    port = free_port()
    state = tmp_path / "state"
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\nip = "127.0.0.1"\nport = {port}\nstate_dir = "{state}"\n'
        f'hostd_socket = "{tmp_path}/no-daemon.sock"\n{extra}'
    )
    args = [str(HUB), "--config", str(config)]
    if os.geteuid() == 0:
        args.append("--allow-root")
    scheme = "https" if verify is not None else "http"
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(
                    f"{scheme}://127.0.0.1:{port}/hub/login", timeout=2, verify=verify or True
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "hostd-hub did not come up"
                time.sleep(0.1)
        assert response.status_code == 200
        mapped = openssl_mapped(proc.pid)
        for name in ("cookie_secret", "hub.sqlite"):
            assert (state / name).stat().st_mode & 0o777 == 0o600, name
        assert state.stat().st_mode & 0o777 == 0o700
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    # uvicorn shuts down cleanly, then dies of the signal it caught (systemd counts SIGTERM
    # as a clean exit of a service).
    assert proc.returncode == -signal.SIGTERM, err
    assert "Application shutdown complete" in err
    assert "the daemon is not reachable yet" in err
    return mapped


def test_hostd_hub_starts_makes_its_files_private_and_stops_on_sigterm(tmp_path: Path) -> None:
    # Serving plain HTTP, it keeps OpenSSL out of its address space (issue 17's footprint:
    # 4.5 MiB; hostd.api.lean_imports.without_tls), and signs its cookies all the same.
    assert run_hub(tmp_path) == []


def test_hostd_hub_serving_https_loads_openssl(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    verify = ssl.create_default_context(cafile=str(cert))
    mapped = run_hub(tmp_path, f'ssl_cert = "{cert}"\nssl_key = "{key}"\n', verify=verify)
    assert any("libssl" in path for path in mapped)


@pytest.fixture
def hub_options(certificate: tuple[Path, Path]) -> dict[str, Any]:
    cert, key = certificate
    return {
        "ssl_cert": cert,
        "ssl_key": key,
        "tls": {"ssl_certfile": str(cert), "ssl_keyfile": str(key)},
    }


async def test_under_tls_the_hub_speaks_https_and_its_cookie_is_secure(
    hub: HubUnderTest, certificate: tuple[Path, Path]
) -> None:
    assert hub.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(certificate[0]))
    async with hub.client(verify=context) as client:
        response = await log_in(client, "alice")
        assert response.status_code == 303
        cookie = set_cookie(response, SESSION_COOKIE)
        assert "secure" in cookie and "httponly" in cookie
        assert (await client.get("/hub/home")).status_code == 200
