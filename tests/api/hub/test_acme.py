"""ACME mode without a CA: its config, when to renew, the HTTP front, what verify says.

The ACME exchange itself is proven only against a real CA (pebble), in
tests/api/hub/systemd/test_acme.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hostd.api.hub.certs import FIRST_RETRY_S, CertInfo, read_cert_info, renewal_reason, retry_delay
from hostd.api.hub.front import ChallengeStore, HttpFront
from hostd.api.hub.server import uvicorn_config
from hostd.api.hub.settings import LETS_ENCRYPT, parse_hub_config
from hostd.cli.verify import Check, judge_acme_certificate
from hostd.units.errors import ConfigError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def problems(**hub: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        parse_hub_config({"hub": hub})
    return dict(raised.value.problems)


# -- config ----------------------------------------------------------------------------------


def test_acme_mode_defaults_to_lets_encrypt_port_80_and_30_days() -> None:
    config = parse_hub_config({"hub": {"acme_domains": ["Hub.Example.org."], "port": 443}})
    assert config.acme and config.tls
    assert config.acme_domains == ("hub.example.org",)
    assert (config.acme_directory, config.http_port) == (LETS_ENCRYPT, 80)
    assert (config.acme_renew_days, config.acme_check_interval) == (30.0, 43200.0)
    assert config.acme_dir == Path("/var/lib/hostd-hub/acme")
    assert not parse_hub_config({}).acme


def test_acme_and_an_admins_certificate_are_one_or_the_other() -> None:
    found = problems(acme_domains=["hub.example.org"], ssl_cert="/c.pem", ssl_key="/k.pem")
    assert "ssl_cert/ssl_key" in found["hub.acme_domains"]
    assert "acme_domains" in found["hub.acme_domains"]


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("acme_domains", ["*.example.org"], "no wildcard"),
        ("acme_domains", "hub.example.org", "a list of host names"),
        ("acme_domains", ["hub example.org"], "host names"),
        ("acme_email", "not-an-address", "e-mail"),
        ("acme_directory", "http://acme.example.org/dir", "https://"),
        ("acme_renew_days", 90, "at most 59"),
        ("acme_renew_days", 0, "more than 0"),
        ("acme_check_interval", 0, "more than 0"),
        ("http_port", 0, "port number"),
    ],
)
def test_a_wrong_acme_option_is_named_with_what_is_expected(
    key: str, value: object, words: str
) -> None:
    found = problems(**{"acme_domains": ["hub.example.org"], key: value})
    assert words in found[f"hub.{key}"]


def test_the_http_port_cannot_be_the_https_port() -> None:
    found = problems(acme_domains=["hub.example.org"], port=8443, http_port=8443)
    assert "8443" in found["hub.http_port"]


def test_uvicorn_serves_the_acme_key_and_chain_file() -> None:
    config = parse_hub_config({"hub": {"acme_domains": ["a.example.org"], "state_dir": "/s"}})
    made = uvicorn_config(config, app=None)
    assert (made.ssl_certfile, made.ssl_keyfile) == ("/s/acme/cert.pem", None)


# -- certificates and renewal ----------------------------------------------------------------


def make_pem(names: list[str], *, days: float, key_first: bool = True) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1234)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return key_pem + cert_pem if key_first else cert_pem


def test_the_key_and_chain_file_is_read_past_its_key() -> None:
    info = read_cert_info(make_pem(["a.example.org", "b.example.org"], days=60))
    assert info.names == ("a.example.org", "b.example.org")
    assert info.not_after == NOW + dt.timedelta(days=60)
    assert info.serial == 1234 and info.issuer == "CN=test"
    with pytest.raises(ValueError, match="no PEM certificate"):
        read_cert_info(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def info(days: float, names: tuple[str, ...] = ("hub.example.org",)) -> CertInfo:
    end = NOW + dt.timedelta(days=days)
    return CertInfo(names=names, not_before=NOW, not_after=end, serial=1, issuer="CN=x")


@pytest.mark.parametrize(
    ("cert", "reason"),
    [
        (None, "no certificate yet"),
        (info(-1), "expired on 2025-12-31"),
        (info(60, ("old.example.org",)), "does not name hub.example.org"),
        (info(29.5), "expires in 29.5 days"),
        (info(30.5), None),
        (info(89), None),
    ],
)
def test_a_certificate_is_renewed_when_missing_expired_misnamed_or_within_renew_days(
    cert: CertInfo | None, reason: str | None
) -> None:
    found = renewal_reason(cert, domains=("hub.example.org",), renew_days=30, now=NOW)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_retries_back_off_from_5_minutes_to_the_check_interval() -> None:
    delays = [retry_delay(n, 43200) for n in range(1, 10)]
    assert delays[:4] == [FIRST_RETRY_S, 600, 1200, 2400]
    assert delays == sorted(delays) and delays[-1] == 43200
    assert retry_delay(10**6, 43200) == 43200  # no overflow after a long outage
    assert retry_delay(1, 2) == 2  # a short interval (the tests') caps it


# -- the HTTP front --------------------------------------------------------------------------


def front_client(*, ready: bool, https_port: int = 443) -> tuple[httpx.AsyncClient, ChallengeStore]:
    store = ChallengeStore()
    app = HttpFront(
        store,
        domains=("hub.example.org", "b.example.org"),
        https_port=https_port,
        ready=lambda: ready,
    )
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://hub.example.org"), store


async def test_the_front_answers_a_challenge_it_holds_and_only_that() -> None:
    client, store = front_client(ready=False)
    store.put("tok-1", "tok-1.thumbprint")
    async with client:
        found = await client.get("/.well-known/acme-challenge/tok-1")
        assert (found.status_code, found.text) == (200, "tok-1.thumbprint")
        assert (await client.get("/.well-known/acme-challenge/other")).status_code == 404
        store.remove("tok-1")
        assert (await client.get("/.well-known/acme-challenge/tok-1")).status_code == 404


async def test_before_the_first_certificate_the_front_says_so_and_serves_no_hub() -> None:
    client, _ = front_client(ready=False)
    async with client:
        found = await client.get("/hub/login")
    assert found.status_code == 503 and found.headers["retry-after"] == "30"
    assert "certificate" in found.text


async def test_the_front_redirects_to_https_on_the_name_asked_for_path_and_query_kept() -> None:
    client, _ = front_client(ready=True, https_port=8443)
    async with client:
        found = await client.get("http://b.example.org/hub/login?next=%2Fuser%2Fa%2F")
        forged = await client.get("/x", headers={"Host": "evil.example.com"})
        slashes = await client.get("http://hub.example.org//evil.example.com/")
        posted = await client.post("http://hub.example.org/hub/login", data={"a": "b"})
    assert found.status_code == 301
    assert found.headers["location"] == "https://b.example.org:8443/hub/login?next=%2Fuser%2Fa%2F"
    assert forged.headers["location"] == "https://hub.example.org:8443/x"
    assert slashes.headers["location"] == "https://hub.example.org:8443/evil.example.com/"
    assert posted.status_code == 301  # no form is ever taken over plain HTTP


async def test_on_port_443_the_redirect_names_no_port() -> None:
    client, _ = front_client(ready=True)
    async with client:
        found = await client.get("/hub/")
    assert found.headers["location"] == "https://hub.example.org/hub/"


# -- hostctl verify --------------------------------------------------------------------------


def test_verify_says_when_the_acme_certificate_expires_and_why_it_was_not_renewed() -> None:
    def judge(days: float | None, failure: str | None = None) -> Check:
        not_after = None if days is None else NOW + dt.timedelta(days=days)
        return judge_acme_certificate(
            "/var/lib/hostd-hub/acme/cert.pem",
            not_after,
            renew_days=30,
            now=NOW,
            last_failure=failure,
        )

    good = judge(60)
    assert good.status == "ok" and "expires on 2026-03-02 00:00 UTC (60 days left)" in good.detail
    due = judge(10, "2025-12-31 10:00 UTC: cannot reach the ACME server: Connection refused")
    assert due.status == "warn"
    assert "2026-01-11" in due.detail and "Connection refused" in due.detail
    expired = judge(-2)
    assert expired.status == "fail" and "expired on 2025-12-30" in expired.detail
    missing = judge(None, "challenge failed: hub.example.org: 404")
    assert missing.status == "fail" and "challenge failed" in missing.detail
