"""Getting a certificate over ACME, HTTP-01 (api layer; blocking: run it off the event loop).

``obtain(request, challenges)`` speaks RFC 8555 through certbot's ``acme`` library: the
account (its key made once and kept; an existing account is found again by that key), a new
order, the HTTP-01 answers put into the ``ChallengeStore`` that the HTTP front
(hostd.api.hub.front) serves, then the finalised chain. It returns the new key and chain as one
PEM; ``store_certificate`` writes it. Every failure of the CA, the network or a challenge
becomes one ``AcmeFailed`` whose message says what went wrong; no key is ever in a message.

Files, under ``state_dir/acme`` (0700, the hub's user's; every file 0600):
  account.key   the ACME account's key (EC P-256), made at the first start, kept;
  cert.pem      the certificate's key then its full chain, in one file so that one rename
                replaces both: a key and a chain from two different orders never meet.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from hostd.api.hub.front import ChallengeStore

__all__ = [
    "ACCOUNT_KEY",
    "CERT_FILE",
    "AcmeFailed",
    "AcmeRequest",
    "obtain",
    "store_certificate",
]

ACCOUNT_KEY: Final = "account.key"
CERT_FILE: Final = "cert.pem"
# The whole order (authorizations polled, finalised, chain fetched) may take this long; the
# acme library's own default is 90 s.
ORDER_TIMEOUT_S: Final = 120
NETWORK_TIMEOUT_S: Final = 30


class AcmeFailed(Exception):
    """No certificate this time; the message says why (for the log and ``hostctl verify``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, kw_only=True)
class AcmeRequest:
    """What to ask for, and of whom: hub.toml's acme_* keys."""

    directory: str
    domains: tuple[str, ...]
    email: str
    ca_bundle: Path | None
    key_dir: Path


def _write_private(path: Path, data: bytes) -> None:
    """``path`` replaced whole by ``data``, 0600: a reader sees the old file or the new."""
    partial = path.with_name(f".{path.name}.new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def _new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _account_key(key_dir: Path) -> JWKEC:
    path = key_dir / ACCOUNT_KEY
    if not path.exists():
        key_dir.mkdir(mode=0o700, exist_ok=True)
        _write_private(path, _new_key_pem())
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AcmeFailed(f"{path} is not an EC key: move it away and a new account is made")
    return JWKEC(key=key)


def store_certificate(key_dir: Path, pem: bytes) -> Path:
    """Write the key-and-chain ``pem`` as key_dir/cert.pem (atomically, 0600); its path."""
    key_dir.mkdir(mode=0o700, exist_ok=True)
    path = key_dir / CERT_FILE
    _write_private(path, pem)
    return path


def _problem(exc: BaseException, directory: str) -> str:
    """One line for the log from whatever the acme library or requests raised."""
    if isinstance(exc, errors.ValidationError):
        lines = []
        for authzr in exc.failed_authzrs:
            name = authzr.body.identifier.value
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    lines.append(f"{name}: {challb.error.detail or challb.error.typ}")
        return "challenge failed: " + ("; ".join(lines) or "no detail from the CA")
    if isinstance(exc, messages.Error):
        return f"the CA refused: {exc.detail or exc.typ}"
    if isinstance(exc, errors.TimeoutError):
        return f"the CA did not finish the order within {ORDER_TIMEOUT_S} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the ACME directory's certificate is not trusted (acme_ca_bundle?): {exc}"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"cannot reach the ACME server {directory}: {_root_cause(exc)}"
    return f"{type(exc).__name__}: {exc}"


def _root_cause(exc: BaseException) -> str:
    """requests wraps urllib3 wraps the socket's error: the innermost says it best."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    if isinstance(seen, OSError) and seen.strerror:
        return seen.strerror
    return str(exc)


def _register(acme: client.ClientV2, email: str) -> None:
    registration = messages.NewRegistration.from_data(
        email=email or None, terms_of_service_agreed=True
    )
    try:
        acme.new_account(registration)
    except errors.ConflictError as exc:
        # The key has an account already (RFC 8555 §7.3.1: 200 and its Location): use it.
        acme.net.account = messages.RegistrationResource(
            uri=exc.location, body=messages.Registration()
        )


def _answer_challenges(
    acme: client.ClientV2,
    order: messages.OrderResource,
    account: JWKEC,
    store: ChallengeStore,
    tokens: list[str],
) -> None:
    for authzr in order.authorizations:
        if authzr.body.status == messages.STATUS_VALID:
            continue  # proved recently: the CA reuses the authorization
        name = authzr.body.identifier.value
        offered = [c for c in authzr.body.challenges if isinstance(c.chall, challenges.HTTP01)]
        if not offered:
            raise AcmeFailed(f"{name}: the CA offers no HTTP-01 challenge")
        challb = offered[0]
        response, validation = challb.response_and_validation(account)
        token = challb.chall.encode("token")
        tokens.append(token)
        store.put(token, validation)
        acme.answer_challenge(challb, response)


def obtain(request: AcmeRequest, store: ChallengeStore) -> bytes:
    """A new key and certificate for request.domains: the key's PEM then the full chain's.
    Blocking (HTTP to the CA, then polling); AcmeFailed when there is none."""
    tokens: list[str] = []
    try:
        account = _account_key(request.key_dir)
        # requests takes a CA file where it takes True; the acme library passes it through.
        verify: bool | str = str(request.ca_bundle) if request.ca_bundle else True
        net = client.ClientNetwork(
            account,
            alg=ES256,
            verify_ssl=verify,  # type: ignore[arg-type]
            user_agent="hostd-hub",
            timeout=NETWORK_TIMEOUT_S,
        )
        acme = client.ClientV2(client.ClientV2.get_directory(request.directory, net), net)
        _register(acme, request.email)
        key_pem = _new_key_pem()  # a new key for each certificate
        order = acme.new_order(crypto_util.make_csr(key_pem, list(request.domains)))
        _answer_challenges(acme, order, account, store, tokens)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT_S)
        order = acme.poll_and_finalize(order, deadline)
        chain = order.fullchain_pem
    except AcmeFailed:
        raise
    except requests.exceptions.RequestException as exc:  # an OSError too: before the next
        raise AcmeFailed(_problem(exc, request.directory)) from exc
    except OSError as exc:  # the key directory
        raise AcmeFailed(f"{request.key_dir}: {exc.strerror or exc}") from exc
    except Exception as exc:  # the acme library's, josepy's and requests' errors, all kinds
        raise AcmeFailed(_problem(exc, request.directory)) from exc
    finally:
        for token in tokens:
            store.remove(token)
    return key_pem + chain.encode()
