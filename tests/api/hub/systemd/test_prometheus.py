"""A real Prometheus (Debian's package, installed by packaging/test.sh) scrapes a real hub's
/hub/metrics with an admin's API token, and PromQL over what it stored says what the machine
does: one server running after a start through the hub, none after its stop, the session's
own series relayed from the daemon, the target healthy (the whole exposition parsed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.hub.systemd.conftest import Hub, PamUser, log_in, xsrf_of
from tests.api.hub.systemd.lab import start_lab
from tests.loopback import free_port

pytestmark = pytest.mark.systemd

PROMETHEUS = Path("/usr/bin/prometheus")


class Prometheus:
    """prometheus on 127.0.0.1 with a config and a TSDB of its own, in a temporary directory."""

    def __init__(self, hub: Hub, token: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hostd-prometheus-"))
        self.url = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "hostd-hub",
                    "metrics_path": "/hub/metrics",
                    "authorization": {"type": "Bearer", "credentials": token},
                    "static_configs": [{"targets": [hub.url.removeprefix("http://")]}],
                }
            ],
        }
        (self.root / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = self.root / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"prometheus was not ready within 60 s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, check: Callable[[list[dict[str, Any]]], bool]) -> Any:
        """The query's result once ``check`` holds of it (within 60 s of scrapes)."""
        deadline = time.monotonic() + 60
        result = self.query(promql)
        while not check(result):
            if time.monotonic() > deadline:
                targets = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
                pytest.fail(f"{promql}: {result}\ntargets: {targets}\n{self.tail()}")
            time.sleep(0.5)
            result = self.query(promql)
        return result


def scalar(result: list[dict[str, Any]]) -> float | None:
    """The value of a one-series result; None for no series."""
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def admin_token(hub: Hub, make_pam_user: Callable[..., PamUser]) -> str:
    admin = make_pam_user(admin=True)
    with hub.browser() as client:
        assert log_in(client, admin.name, admin.password).status_code == 303, hub.tail()
        xsrf = xsrf_of(client.get("/hub/home").text)
        response = client.post(
            f"/hub/api/users/{admin.name}/tokens",
            json={"note": "prometheus"},
            headers={"X-XSRFToken": xsrf},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@pytest.fixture(scope="module")
def prometheus(hub: Hub, admin_token: str) -> Iterator[Prometheus]:
    if not PROMETHEUS.exists():
        pytest.fail(f"{PROMETHEUS} is missing: packaging/test.sh installs Debian's prometheus")
    server = Prometheus(hub, admin_token)
    server.start()
    yield server
    server.stop()


def test_prometheus_scrapes_the_hub_and_promql_sees_a_server_start_and_stop(
    hub: Hub, prometheus: Prometheus, make_pam_user: Callable[..., PamUser]
) -> None:
    # Scraped, and the whole exposition parsed (a duplicate family would fail the target).
    prometheus.wait_for('up{job="hostd-hub"}', lambda r: scalar(r) == 1)
    prometheus.wait_for("jupyterhub_running_servers", lambda r: scalar(r) == 0)
    prometheus.wait_for("hostd_hub_daemon_up", lambda r: scalar(r) == 1)
    user = make_pam_user()
    with hub.browser() as client:
        assert log_in(client, user.name, user.password).status_code == 303
        start_lab(hub, client, user.name)
        prometheus.wait_for("jupyterhub_running_servers", lambda r: scalar(r) == 1)
        # The hub's own histogram and the daemon's per-session series, in one target.
        spawns = 'jupyterhub_server_spawn_duration_seconds_count{status="success",reason=""}'
        prometheus.wait_for(spawns, lambda r: (scalar(r) or 0) >= 1)
        selector = f'{{user="{user.name}"}}'
        memory = prometheus.wait_for(
            f"hostd_session_memory_bytes{selector}", lambda r: (scalar(r) or 0) > 0
        )
        limit = prometheus.query(f"hostd_session_memory_limit_bytes{selector}")
        assert (scalar(limit) or 0) > (scalar(memory) or 0)  # mem_limit = "1G" of LAB_POLICY
        prometheus.wait_for(f"hostd_session_cpu_seconds_total{selector}", lambda r: len(r) == 1)
        prometheus.wait_for(
            "hostd_host_memory_committed_bytes - hostd_host_memory_capacity_bytes",
            lambda r: len(r) == 1,
        )
        # Requests by route template: the progress stream start_lab read.
        handler = "/hub/api/users/{name}/server/progress"
        route = f'jupyterhub_request_duration_seconds_count{{handler="{handler}"}}'
        prometheus.wait_for(route, lambda r: len(r) >= 1)
        xsrf = xsrf_of(client.get("/hub/home").text)
        stop = client.delete(f"/hub/api/users/{user.name}/server", headers={"X-XSRFToken": xsrf})
        assert stop.status_code in (202, 204), stop.text
    prometheus.wait_for("jupyterhub_running_servers", lambda r: scalar(r) == 0)
    prometheus.wait_for(f"hostd_session_memory_bytes{selector}", lambda r: r == [])


def test_health_answers_without_auth_at_once(hub: Hub) -> None:
    """What a load balancer or an uptime check asks of the real hub: no cookie, no token."""
    for path in ("/hub/health", "/hub/api/health"):
        started = time.monotonic()
        answer = httpx.get(f"{hub.url}{path}", timeout=5)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"}), path
        assert time.monotonic() - started < 1.0, path
    assert httpx.get(f"{hub.url}/hub/metrics", timeout=5).status_code == 403  # not without one
