"""What a certificate says and when to renew it: pure functions over PEM bytes (api layer).

Shared by the hub's renewal loop (hostd.api.hub.renewal) and ``hostctl verify``, which reads
the same file to say when the certificate expires. No I/O here: callers read the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509

__all__ = ["CertInfo", "read_cert_info", "renewal_reason", "retry_delay"]

_CERT_BLOCK: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
# After a failure the next try waits 5 minutes, then twice as long each time, up to the check
# interval: Let's Encrypt allows 5 failed validations per name and account an hour.
FIRST_RETRY_S: Final = 300.0


@dataclass(frozen=True)
class CertInfo:
    """The leaf of a chain: names (subjectAltName DNS), validity (UTC), serial, issuer."""

    names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    serial: int
    issuer: str

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now) / timedelta(days=1)


def read_cert_info(pem: bytes) -> CertInfo:
    """The first certificate of ``pem`` (a chain, or the hub's key-and-chain file: other PEM
    blocks, the key among them, are skipped unread); ValueError if there is none."""
    block = _CERT_BLOCK.search(pem)
    if block is None:
        raise ValueError("no PEM certificate in it")
    cert = x509.load_pem_x509_certificate(block.group(0))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(
        names=names,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
        issuer=cert.issuer.rfc4514_string(),
    )


def renewal_reason(
    cert: CertInfo | None, *, domains: tuple[str, ...], renew_days: float, now: datetime
) -> str | None:
    """Why a new certificate is needed now (a sentence for the log), or None: keep this one."""
    if cert is None:
        return "there is no certificate yet"
    if now >= cert.not_after:
        return f"the certificate expired on {cert.not_after:%Y-%m-%d %H:%M} UTC"
    missing = sorted(set(domains) - set(cert.names))
    if missing:
        return f"the certificate does not name {', '.join(missing)} (acme_domains changed)"
    days = cert.days_left(now)
    if days < renew_days:
        return f"the certificate expires in {days:.1f} days, fewer than acme_renew_days"
    return None


def retry_delay(failures: int, interval: float) -> float:
    """Seconds before the next try after ``failures`` failures in a row (1 or more)."""
    return min(FIRST_RETRY_S * 2.0 ** min(failures - 1, 20), interval)
