"""TLS certificate expiry: days left from a DER certificate, graded against thresholds."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime

from probes.result import Status, grade

# The DER certificate is parsed here (a few lines of ASN.1) rather than via getpeercert()'s
# dict, because that dict is empty when verification is off, and the `cryptography` package is
# not a dependency. Only the path Certificate > TBSCertificate > Validity > notAfter is read.


def _der_item(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER item at `pos`."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def cert_not_after(der: bytes) -> datetime:
    """The notAfter time of a DER-encoded X.509 certificate (UTC)."""
    _, cert_start, _ = _der_item(der, 0)
    _, pos, _ = _der_item(der, cert_start)  # TBSCertificate content
    tag, _, end = _der_item(der, pos)
    if tag == 0xA0:  # explicit [0] version
        pos = end
    for _ in range(3):  # serialNumber, signature algorithm, issuer
        _, _, pos = _der_item(der, pos)
    _, validity, _ = _der_item(der, pos)
    _, _, after_pos = _der_item(der, validity)  # skip notBefore
    tag, start, end = _der_item(der, after_pos)
    text = der[start:end].decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSS: years 50-99 are 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def cert_days_left(der: bytes | None) -> float | None:
    if not der:
        return None
    try:
        delta = cert_not_after(der) - datetime.now(UTC)
    except (IndexError, ValueError):
        return None
    return round(delta.total_seconds() / 86400, 1)


async def unverified_cert(host: str, port: int, timeout: float) -> bytes | None:
    """The server's certificate from a second handshake without verification (read-only: no request)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(max(timeout, 0.1)):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object else None
    finally:
        writer.close()


def days_words(days: float) -> str:
    if days < 0:
        return f"certificate expired {-days:g} days ago"
    return f"certificate expires in {days:g} days"


def cert_issue(days: float | None, limits: dict[str, float]) -> tuple[Status, str | None]:
    """Fewer days left is worse, so the thresholds are compared negated."""
    if days is None:
        return Status.OK, None
    status = grade(-days, -limits["cert_days_warn"], -limits["cert_days_fail"])
    return status, (days_words(days) if status is not Status.OK else None)
