"""The hub's ACME certificate over time: the first one, renewals, the live TLS context (api
layer; the event loop's side of hostd.api.hub.acme).

``CertKeeper.first_certificate()`` returns once state_dir/acme/cert.pem holds a certificate
that HTTPS can serve (unexpired, naming every acme_domains entry), obtaining one if needed and
retrying after failures. ``keep_renewed(context)`` then checks every acme_check_interval
seconds and, when ``certs.renewal_reason`` says so, obtains a new one and loads it into the
``ssl.SSLContext`` that uvicorn's listening socket uses: new handshakes get the new
certificate, connections already open keep theirs, nobody is dropped. A failure keeps the old
certificate, logs why, writes it to state_dir/acme/last-failure (``hostctl verify`` shows it)
and retries sooner (``certs.retry_delay``).

The ACME exchange blocks (requests, polling): it runs in a daemon thread, so that neither the
event loop nor the process's exit waits on a slow CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

from hostd.api.hub.acme import CERT_FILE, AcmeFailed, AcmeRequest, obtain, store_certificate
from hostd.api.hub.certs import CertInfo, read_cert_info, renewal_reason, retry_delay
from hostd.api.hub.front import ChallengeStore
from hostd.api.hub.settings import HubConfig

__all__ = ["LAST_FAILURE", "CertKeeper"]

log = logging.getLogger("hostd.hub.acme")

LAST_FAILURE: Final = "last-failure"
T = TypeVar("T")


async def _in_thread(work: Callable[[], T]) -> T:
    """work() in a daemon thread of its own; its result or its exception."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():  # cancelled: the hub is stopping
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="acme", daemon=True).start()
    return await done


class CertKeeper:
    """The certificate of ACME mode; ``ready`` once HTTPS serves it."""

    def __init__(self, config: HubConfig, challenges: ChallengeStore) -> None:
        self.request = AcmeRequest(
            directory=config.acme_directory,
            domains=config.acme_domains,
            email=config.acme_email,
            ca_bundle=config.acme_ca_bundle,
            key_dir=config.acme_dir,
        )
        self.challenges = challenges
        self.renew_days = config.acme_renew_days
        self.interval = config.acme_check_interval
        self.failures = 0
        self.ready = False

    @property
    def path(self) -> Path:
        return self.request.key_dir / CERT_FILE

    def current(self) -> CertInfo | None:
        """The certificate on disk, or None (none yet, or unreadable: a new one is needed)."""
        try:
            return read_cert_info(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read (%s): getting a new certificate", self.path, exc)
            return None

    def _reason(self) -> str | None:
        return renewal_reason(
            self.current(),
            domains=self.request.domains,
            renew_days=self.renew_days,
            now=datetime.now(UTC),
        )

    def _servable(self) -> bool:
        cert = self.current()
        return cert is not None and (
            renewal_reason(cert, domains=self.request.domains, renew_days=0, now=datetime.now(UTC))
            is None
        )

    async def _renew(self, reason: str) -> CertInfo | None:
        """One try: the new certificate (stored) or None (logged, recorded, failures + 1)."""
        names = ", ".join(self.request.domains)
        log.info("getting a certificate for %s from %s: %s", names, self.request.directory, reason)
        try:
            pem = await _in_thread(lambda: obtain(self.request, self.challenges))
            cert = read_cert_info(pem)
            await _in_thread(lambda: store_certificate(self.request.key_dir, pem))
        except (AcmeFailed, ValueError, OSError) as exc:
            self.failures += 1
            message = exc.message if isinstance(exc, AcmeFailed) else str(exc)
            delay = retry_delay(self.failures, self.interval)
            log.error(
                "no new certificate for %s (%s); %s, next try in %.0f s",
                names,
                message,
                "the current one is kept" if self.ready else "HTTPS waits for one",
                delay,
            )
            self._record_failure(message)
            return None
        self.failures = 0
        (self.request.key_dir / LAST_FAILURE).unlink(missing_ok=True)
        log.info(
            "new certificate for %s: serial %x, from %s, expires %s UTC",
            names,
            cert.serial,
            cert.issuer,
            f"{cert.not_after:%Y-%m-%d %H:%M}",
        )
        return cert

    def _record_failure(self, message: str) -> None:
        try:
            (self.request.key_dir / LAST_FAILURE).write_text(
                f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {message}\n"
            )
        except OSError as exc:
            log.warning("cannot record the failure in %s: %s", self.request.key_dir, exc)

    async def first_certificate(self) -> None:
        """Return once cert.pem can be served; tries (and retries) ACME until then."""
        while not self._servable():
            if await self._renew(self._reason() or "the certificate cannot be served") is None:
                await asyncio.sleep(retry_delay(self.failures, self.interval))

    async def keep_renewed(self, context: ssl.SSLContext) -> None:
        """Forever: renew when due, into ``context`` (the one the HTTPS socket serves from)."""
        self.ready = True
        delay = 0.0  # a certificate due already at start is renewed at once
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            reason = self._reason()
            if reason is None:
                continue
            if await self._renew(reason) is None:
                delay = retry_delay(self.failures, self.interval)
                continue
            try:
                # The same context object: the listening socket's next handshakes use it.
                context.load_cert_chain(self.path)
            except (OSError, ssl.SSLError) as exc:
                log.error("the new certificate %s cannot be loaded: %s", self.path, exc)
