"""HTTPS by itself, end to end: hostd-hub (its own unprivileged user) gets its certificate
from Debian's pebble, a real ACME server on loopback, over HTTP-01; redirects HTTP to HTTPS;
renews into the live TLS context without dropping an open connection; and, the CA gone,
keeps serving the certificate it has and logs why.

pebble issues 30-day certificates here (certificateValidityPeriod) and the hub keeps its
default acme_renew_days of 30, so every check (acme_check_interval = 2 s) finds a renewal due:
renewals happen over and over while these tests run. The name is "localhost": pebble accepts
it and its HTTP-01 check resolves it to the hub's loopback listener.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hostd.cli.verify_host import check_hub_config
from tests.api.hub.systemd.conftest import BASE, HUB_USER, Hub
from tests.hostd.daemon.systemd.conftest import Daemon
from tests.loopback import free_port

pytestmark = pytest.mark.systemd

PEBBLE = Path("/usr/bin/pebble")  # Debian's package pebble (packaging/test.sh installs it)
DOMAIN = "localhost"
VALIDITY_S = 30 * 86400


@dataclass
class Pebble:
    root: Path
    directory: str
    management: str
    http_port: int
    listener_ca: Path  # the certificate of pebble's own HTTPS (directory and management)
    proc: subprocess.Popen[bytes]

    def get(self, path: str) -> str:
        answer = httpx.get(f"{self.management}{path}", verify=ssl_context(self.listener_ca))
        answer.raise_for_status()
        return answer.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def ssl_context(ca: Path | str) -> ssl.SSLContext:
    if isinstance(ca, Path):
        return ssl.create_default_context(cafile=str(ca))
    return ssl.create_default_context(cadata=ca)


def write_listener_cert(root: Path) -> tuple[Path, Path]:
    """pebble's HTTPS needs a certificate; Debian ships none: a self-signed one for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble listener")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = root / "listener.pem", root / "listener.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)  # the hub's user reads it: acme_ca_bundle
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_pebble(pebble: Pebble) -> subprocess.Popen[bytes]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PEBBLE_VA_NOSLEEP": "1",
        # pebble refuses 5% of good nonces by default; the acme library retries once only.
        "PEBBLE_WFE_NONCEREJECT": "0",
    }
    with (pebble.root / "pebble.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(PEBBLE), "-config", str(pebble.root / "config.json")],
            cwd=pebble.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(pebble.directory, verify=ssl_context(pebble.listener_ca)).raise_for_status()
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    proc.wait()
    pytest.fail("pebble did not answer within 15 s")


@pytest.fixture(scope="module")
def pebble_config(hub_machine: None) -> Iterator[Pebble]:
    if not PEBBLE.exists():
        pytest.fail(f"{PEBBLE} is missing: apt-get install pebble (packaging/test.sh does)")
    root = BASE / f"pebble-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    cert, key = write_listener_cert(root)
    listen, management, http_port = free_port(), free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{listen}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": http_port,  # where pebble's HTTP-01 check goes: the hub's http_port
            "tlsPort": free_port(),  # TLS-ALPN-01: unused
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": VALIDITY_S,
        }
    }
    (root / "config.json").write_text(json.dumps(config))
    pebble = Pebble(
        root=root,
        directory=f"https://127.0.0.1:{listen}/dir",
        management=f"https://127.0.0.1:{management}",
        http_port=http_port,
        listener_ca=cert,
        proc=None,  # type: ignore[arg-type]  # started by the tests, after the hub
    )
    yield pebble
    if pebble.proc is not None:
        pebble.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def acme_hub(lab_daemon: Daemon, pebble_config: Pebble) -> Iterator[Hub]:
    root = BASE / f"hub-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    shutil.chown(root, HUB_USER, HUB_USER)
    hub = Hub(
        root,
        lab_daemon,
        acme_domains=[DOMAIN],
        acme_email="admin@example.org",
        acme_directory=pebble_config.directory,
        acme_ca_bundle=str(pebble_config.listener_ca),
        acme_check_interval=2,
        http_port=pebble_config.http_port,
    )
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


def peer_serial(response: httpx.Response) -> int:
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    return x509.load_der_x509_certificate(ssl_object.getpeercert(True)).serial_number


def wait_for_log(hub: Hub, words: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if words in hub.log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    pytest.fail(f"{words!r} not in the hub's log within {timeout} s:\n{hub.tail()}")


def test_without_a_ca_the_hub_serves_no_plain_http_hub_and_says_it_is_waiting(
    acme_hub: Hub, pebble_config: Pebble
) -> None:
    acme_hub.launch()
    http = f"http://{DOMAIN}:{pebble_config.http_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            pending = httpx.get(f"{http}/hub/login", timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, acme_hub.tail()
            time.sleep(0.2)
    assert pending.status_code == 503 and "certificate" in pending.text
    wait_for_log(acme_hub, "no new certificate for localhost (cannot reach the ACME server")
    assert "HTTPS waits for one" in acme_hub.tail()
    with pytest.raises(ConnectionRefusedError):  # no HTTPS listener yet
        socket.create_connection(("127.0.0.1", acme_hub.port), timeout=2).close()


def test_the_hub_gets_its_certificate_from_the_ca_and_serves_https(
    acme_hub: Hub, pebble_config: Pebble
) -> None:
    pebble_config.proc = start_pebble(pebble_config)
    root = pebble_config.get("/roots/0")
    intermediate = x509.load_pem_x509_certificate(pebble_config.get("/intermediates/0").encode())
    acme_hub.verify = ssl_context(root)  # the chain must lead to pebble's root
    acme_hub.wait_ready()  # within 30 s: the retry after the failure above is 2 s away
    with acme_hub.browser() as client:
        answer = client.get("/hub/api")
        assert answer.status_code == 200
        ssl_object = answer.extensions["network_stream"].get_extra_info("ssl_object")
        leaf = x509.load_der_x509_certificate(ssl_object.getpeercert(True))
    assert leaf.issuer == intermediate.subject
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [DOMAIN]
    acme_dir = acme_hub.root / "state" / "acme"
    hub_uid = int(subprocess.check_output(["id", "-u", HUB_USER]))
    for path in (acme_dir, acme_dir / "account.key", acme_dir / "cert.pem"):
        facts = path.stat()
        assert facts.st_uid == hub_uid, path
        assert facts.st_mode & 0o077 == 0, f"{path} is {oct(facts.st_mode)}"


def test_http_is_redirected_to_https(acme_hub: Hub, pebble_config: Pebble) -> None:
    answer = httpx.get(f"http://{DOMAIN}:{pebble_config.http_port}/hub/login?next=%2Fhub%2F")
    assert answer.status_code == 301
    assert answer.headers["location"] == f"{acme_hub.url}/hub/login?next=%2Fhub%2F"
    assert httpx.get(answer.headers["location"], verify=acme_hub.verify).status_code == 200


def test_a_renewal_serves_a_new_certificate_and_an_open_connection_keeps_working(
    acme_hub: Hub,
) -> None:
    with acme_hub.browser() as kept:
        first = kept.get("/hub/api")
        stream = first.extensions["network_stream"]
        old = peer_serial(first)
        deadline = time.monotonic() + 60
        new = old
        while new == old:
            assert time.monotonic() < deadline, f"no renewal within 60 s:\n{acme_hub.tail()}"
            time.sleep(1)
            # The kept connection is used every second (uvicorn closes one idle for 5 s).
            again = kept.get("/hub/api")
            assert again.status_code == 200
            assert again.extensions["network_stream"] is stream, "the connection was dropped"
            with acme_hub.browser() as fresh:
                new = peer_serial(fresh.get("/hub/api"))
        last = kept.get("/hub/api")
        assert last.status_code == 200 and last.extensions["network_stream"] is stream
        assert peer_serial(last) == old  # the open connection kept its handshake
    assert f"new certificate for localhost: serial {new:x}" in acme_hub.log.read_text()


def test_with_the_ca_gone_the_hub_keeps_its_certificate_and_says_why(
    acme_hub: Hub, pebble_config: Pebble
) -> None:
    pebble_config.stop()
    failures_before = acme_hub.log.read_text().count("the current one is kept")
    deadline = time.monotonic() + 30
    while acme_hub.log.read_text().count("the current one is kept") <= failures_before:
        assert time.monotonic() < deadline, acme_hub.tail()
        time.sleep(0.2)
    with acme_hub.browser() as client:
        before = peer_serial(client.get("/hub/api"))
    time.sleep(5)  # two more failed checks
    with acme_hub.browser() as client:
        answer = client.get("/hub/api")
        assert answer.status_code == 200 and peer_serial(answer) == before
    # The one still served is the last one the hub got.
    assert f"new certificate for localhost: serial {before:x}," in acme_hub.log.read_text()
    log = acme_hub.log.read_text()
    assert (
        f"no new certificate for localhost (cannot reach the ACME server "
        f"{pebble_config.directory}: Connection refused); the current one is kept"
    ) in log
    failure = (acme_hub.root / "state" / "acme" / "last-failure").read_text()
    assert "Connection refused" in failure
    # hostctl verify's reading of it, as root on the machine: the expiry and why it stays.
    checks = {check.name: check for check in check_hub_config(acme_hub.config)}
    tls = checks["TLS"]
    # pebble's certificates last 30 days here, within acme_renew_days (30): a warning.
    assert tls.status == "warn", tls
    assert "the ACME certificate expires on" in tls.detail, tls
    assert "last failure:" in tls.detail and "Connection refused" in tls.detail, tls
