"""The HTTP probe against real loopback servers: the sandbox services and servers started here."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from probes import http as probe
from probes import tls
from probes.config import HttpTarget
from probes.result import Status
from probes.thresholds import Thresholds
from tui.sandbox.base import LOOPBACK, free_port
from tui.sandbox.http_server import Service

# --- against the sandbox --------------------------------------------------------------------


def endpoint(sandbox, name: str) -> HttpTarget:  # type: ignore[no-untyped-def]
    return next(t for t in sandbox.env.http if t.name == name)


async def read(sandbox, name: str):  # type: ignore[no-untyped-def]
    [result] = await probe.collect(endpoint(sandbox, name), sandbox.env.thresholds, timeout=2.0)
    return result


async def test_sandbox_endpoints_are_healthy_with_phases(sandbox) -> None:  # type: ignore[no-untyped-def]
    names = {t.name for t in sandbox.env.http}
    assert {"api", "payments", "statuspage"} <= names
    for name in ("api", "payments", "statuspage"):
        result = await read(sandbox, name)
        assert result.status is Status.OK, result.summary
        assert result.kind == "http" and result.probe == "http" and result.target == name
        assert result.data["status_code"] == 200
        phases = result.data["phases"]
        # A fresh client connects: every phase of a plain-HTTP request is measured.
        assert phases["connect_ms"] is not None and phases["connect_ms"] >= 0
        assert phases["tls_ms"] is None
        assert 0 < phases["ttfb_ms"] <= phases["total_ms"]
        assert result.value == result.data["latency_ms"] == phases["total_ms"]
    status = await read(sandbox, "statuspage")
    assert status.data["json_ok"] is True and status.data["json_value"] == "none"


async def test_latency_spike_fails_api_then_heals(sandbox) -> None:  # type: ignore[no-untyped-def]
    with sandbox.scenario("latency-spike"):
        result = await read(sandbox, "api")
        assert result.status is Status.FAIL, result.summary
        assert result.data["latency_ms"] >= endpoint(sandbox, "api").latency_fail_ms
        assert result.data["status_code"] == 200
        assert "slow" in result.summary
        assert (await read(sandbox, "payments")).status is Status.OK
    assert (await read(sandbox, "api")).status is Status.OK


async def test_error_spike_fails_api_with_503_then_heals(sandbox) -> None:  # type: ignore[no-untyped-def]
    with sandbox.scenario("error-spike"):
        result = await read(sandbox, "api")
        assert result.status is Status.FAIL
        assert result.data["status_code"] == 503
        # The 503's own body names the cause, in the summary and in the data.
        assert result.summary == "api: HTTP 503 (expected 200) · upstream: failing, status: degraded"
        assert result.data["body_fields"] == {"checks.upstream": "failing", "status": "degraded", "service": "api"}
    healed = await read(sandbox, "api")
    assert healed.status is Status.OK and "body_fields" not in healed.data


async def test_service_down_refuses_payments_then_heals(sandbox) -> None:  # type: ignore[no-untyped-def]
    port = httpx.URL(endpoint(sandbox, "payments").url).port
    with sandbox.scenario("service-down"):
        result = await read(sandbox, "payments")
        assert result.status is Status.ERROR
        assert f"connection refused at 127.0.0.1:{port}" in result.summary
        assert result.summary.startswith("payments: ")
        assert (await read(sandbox, "api")).status is Status.OK
    assert (await read(sandbox, "payments")).status is Status.OK


async def test_dependency_outage_fails_statuspage_then_heals(sandbox) -> None:  # type: ignore[no-untyped-def]
    with sandbox.scenario("dependency-outage"):
        result = await read(sandbox, "statuspage")
        assert result.status is Status.FAIL
        assert result.data["json_ok"] is False and result.data["json_value"] == "major"
        # The status page's own description of the outage is shown, not only the indicator.
        assert result.summary.endswith('status.indicator == "major" (expected "none") · description: Major Service Outage')
        assert result.data["body_fields"]["status.description"] == "Major Service Outage"
    assert (await read(sandbox, "statuspage")).status is Status.OK


# --- against servers started here -----------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(routes: dict, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Service]:
    service = Service("test", routes, tls=tls)
    await service.listen()
    try:
        yield service
    finally:
        await service.close()


async def test_json_field_mismatch_names_field_and_value() -> None:
    body = {"status": {"indicator": "minor", "description": "Partial outage"}}
    async with serving({"/status": body}) as service:
        target = HttpTarget(
            "upstream", f"{service.url}/status", json_field="status.indicator", json_equals="none"
        )
        result = await probe.http(target, Thresholds())
        assert result.status is Status.FAIL
        assert result.summary == 'upstream: status.indicator == "minor" (expected "none") · description: Partial outage'
        missing = HttpTarget(
            "upstream", f"{service.url}/status", json_field="status.colour", json_equals="none"
        )
        result = await probe.http(missing, Thresholds())
        assert result.status is Status.FAIL and "status.colour missing" in result.summary
        matching = HttpTarget(
            "upstream", f"{service.url}/status", json_field="status.indicator", json_equals="minor"
        )
        assert (await probe.http(matching, Thresholds())).status is Status.OK


async def test_unexpected_status_and_head() -> None:
    async with serving({"/": {"ok": True}}) as service:
        result = await probe.http(HttpTarget("site", f"{service.url}/missing"), Thresholds())
        assert result.status is Status.FAIL and result.data["status_code"] == 404
        head = await probe.http(HttpTarget("site", f"{service.url}/", method="HEAD"), Thresholds())
        assert head.status is Status.OK and head.data["method"] == "HEAD"
        slow_limits = Thresholds({"http": {"latency_ms_warn": 0.001, "latency_ms_fail": 10_000}})
        assert (
            await probe.http(HttpTarget("site", f"{service.url}/"), slow_limits)
        ).status is Status.WARN


async def test_refused_port_is_an_error_naming_the_address() -> None:
    port = free_port()
    started = time.perf_counter()
    result = await probe.http(HttpTarget("ghost", f"http://127.0.0.1:{port}/health"), Thresholds())
    assert result.status is Status.ERROR
    assert (
        result.summary == f"ghost: connection refused at 127.0.0.1:{port} (is the service running?)"
    )
    assert time.perf_counter() - started < 1.0


async def test_hung_server_times_out_within_budget() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read the request, never answer

    server = await asyncio.start_server(accept_and_stall, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.perf_counter()
        result = await probe.http(
            HttpTarget("hung", f"http://127.0.0.1:{port}/"), Thresholds(), timeout=1.0
        )
        took = time.perf_counter() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert result.status is Status.ERROR
    assert result.data["timeout"] is True
    # On a busy machine the summary also says how long warroom's own loop stalled meanwhile.
    assert re.fullmatch(rf"hung: timed out after 1s(, plus [\d.]+ s while warroom was busy)? waiting for "
                        rf"the response from 127\.0\.0\.1:{port}", result.summary), result.summary
    assert 1.0 <= took < 1.5


def test_dns_failure_message() -> None:
    # No resolver is queried (network rule): the real exception chain httpx raises is rebuilt.
    import socket

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from exc
    except httpx.ConnectError as exc:
        assert (
            probe.describe_error(exc, "https://db.example:8443/x")
            == "DNS lookup failed for db.example"
        )


async def test_shared_session_uses_one_pool_for_all_endpoints() -> None:
    async with serving({"/": {"ok": True}}) as service:
        first, second = (
            probe.Session(HttpTarget("a", service.url)),
            probe.Session(HttpTarget("b", service.url)),
        )
        assert first.transport is second.transport
        transport = first.transport
        for session, name in ((first, "a"), (second, "b"), (first, "a")):
            [result] = await probe.collect(
                HttpTarget(name, f"{service.url}/"), Thresholds(), timeout=2.0, session=session
            )
            assert result.status is Status.OK
        assert result.data["reused_connection"] is True  # kept alive between refreshes
        await first.aclose()
        assert not second.closed
        await second.aclose()
        assert second.closed
        # The last user closed the pool: a new session gets a new one, with no connection kept.
        third = probe.Session(HttpTarget("c", service.url))
        assert third.transport is not transport
        assert not transport.connections  # nothing left open
        await third.aclose()


# --- HTTPS with throw-away certificates ------------------------------------------------------

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl CLI is not installed"
)


def make_cert(directory: Path, name: str, *, days: int, san: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            str(days),
            "-subj",
            "/CN=localhost",
            "-addext",
            f"subjectAltName={san}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    directory = tmp_path_factory.mktemp("certs")
    return {
        "short": make_cert(directory, "short", days=5, san="IP:127.0.0.1"),
        "wrong-host": make_cert(directory, "wrong", days=90, san="DNS:elsewhere.invalid"),
    }


@needs_openssl
def test_cert_not_after_matches_openssl(certs) -> None:  # type: ignore[no-untyped-def]
    cert, _ = certs["short"]
    out = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = datetime.strptime(
        out.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"
    ).replace(tzinfo=UTC)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert tls.cert_not_after(der) == expected
    assert 4.9 <= tls.cert_days_left(der) <= 5.0  # type: ignore[operator]


@needs_openssl
async def test_self_signed_fails_verification_and_still_reports_expiry(certs) -> None:  # type: ignore[no-untyped-def]
    async with serving({"/": {"ok": True}}, tls=server_context(*certs["short"])) as service:
        result = await probe.http(HttpTarget("secure", f"{service.url}/"), Thresholds())
    assert result.status is Status.FAIL
    assert result.summary.startswith(
        f"secure: certificate verify failed: self-signed certificate (127.0.0.1:{service.port})"
    )
    assert (
        "certificate expires in 5 days" in result.summary or "expires in 4.9 days" in result.summary
    )
    assert result.data["tls_verified"] is False
    assert 4.9 <= result.data["cert_days_left"] <= 5.0


@needs_openssl
async def test_trusted_cert_grades_days_left(certs) -> None:  # type: ignore[no-untyped-def]
    cert, key = certs["short"]
    session = probe.Session(verify=ssl.create_default_context(cafile=str(cert)))
    target = HttpTarget("secure", "")
    try:
        async with serving({"/": {"ok": True}}, tls=server_context(cert, key)) as service:
            target = HttpTarget("secure", f"{service.url}/")
            [default] = await probe.collect(target, Thresholds(), timeout=2.0, session=session)
            relaxed = Thresholds({"http": {"cert_days_warn": 10.0, "cert_days_fail": 3.0}})
            [warned] = await probe.collect(target, relaxed, timeout=2.0, session=session)
            calm = Thresholds({"http": {"cert_days_warn": 3.0, "cert_days_fail": 1.0}})
            [fine] = await probe.collect(target, calm, timeout=2.0, session=session)
    finally:
        await session.aclose()
    assert default.status is Status.FAIL and "certificate expires in" in default.summary
    assert default.data["tls_verified"] is True and default.data["phases"]["tls_ms"] > 0
    assert warned.status is Status.WARN
    assert fine.status is Status.OK and 4.9 <= fine.data["cert_days_left"] <= 5.0


@needs_openssl
async def test_hostname_mismatch_is_reported(certs) -> None:  # type: ignore[no-untyped-def]
    cert, key = certs["wrong-host"]
    session = probe.Session(verify=ssl.create_default_context(cafile=str(cert)))
    try:
        async with serving({"/": {"ok": True}}, tls=server_context(cert, key)) as service:
            [result] = await probe.collect(
                HttpTarget("secure", f"{service.url}/"), Thresholds(), timeout=2.0, session=session
            )
    finally:
        await session.aclose()
    assert result.status is Status.FAIL
    assert "certificate verify failed: IP address mismatch" in result.summary
    assert result.data["cert_days_left"] > 80


async def test_a_server_that_compresses_anyway_is_decoded() -> None:
    """The probe asks for an uncompressed answer; a server that gzips regardless is still read."""
    document = gzip.compress(json.dumps({"status": {"indicator": "none"}}).encode())
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(document)}\r\n\r\n".encode()
            + document
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = HttpTarget("status", f"http://127.0.0.1:{port}/", json_field="status.indicator", json_equals="none")
        result = await probe.http(target, Thresholds())
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is Status.OK, result.summary
    assert result.data["json_ok"] is True and result.data["json_value"] == "none"
    assert b"accept-encoding: identity" in heads[0].lower()


async def test_a_failing_answer_keeps_its_key_fields_with_secrets_masked() -> None:
    secret = "tok-4f9a8b7c6d5e"

    def broken() -> tuple[int, object]:
        return 500, {"error": "pool exhausted", "token": secret, "detail": {"retry": True},
                     "message": f"db url postgresql://app:{secret}@db/app refused", "trace": "x" * 5000}

    async with serving({"/broken": broken, "/list": lambda: (502, [1, 2, 3])}) as service:
        result = await probe.http(HttpTarget("api", f"{service.url}/broken"), Thresholds())
        fields = result.data["body_fields"]
        assert result.status is Status.FAIL and result.summary.startswith("api: HTTP 500 (expected 200) · error: pool exhausted, message: db url")
        assert fields["token"] == "****" and fields["detail.retry"] is True
        assert len(fields["trace"]) <= 120 and len(fields) <= 8
        assert secret not in json.dumps(result.to_json()), result.to_json()
        # A JSON list says nothing by name: the status alone.
        listed = await probe.http(HttpTarget("api", f"{service.url}/list"), Thresholds())
        assert listed.summary == "api: HTTP 502 (expected 200)" and "body_fields" not in listed.data
        # A 404 from a route that does not exist is a failing answer too; HEAD has no body.
        missing = await probe.http(HttpTarget("api", f"{service.url}/nowhere"), Thresholds())
        assert missing.summary == "api: HTTP 404 (expected 200) · error: not found"
        head = await probe.http(HttpTarget("api", f"{service.url}/nowhere", method="HEAD"), Thresholds())
        assert head.summary == "api: HTTP 404 (expected 200)"


async def test_a_text_or_html_error_page_shows_its_first_line() -> None:
    pages = {
        "/html": (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>x</h1></body></html>", "text/html"),
        "/text": (b"\n\n  Service Unavailable:   backend pool empty\nsecond line\n", "text/plain"),
    }

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split()[1].decode()
        body, kind = pages[path]
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: " + kind.encode()
                     + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        html = await probe.http(HttpTarget("site", f"http://{LOOPBACK}:{port}/html"), Thresholds())
        assert html.summary == "site: HTTP 503 (expected 200) · body: 502 Bad Gateway"
        text = await probe.http(HttpTarget("site", f"http://{LOOPBACK}:{port}/text"), Thresholds())
        assert text.summary == "site: HTTP 503 (expected 200) · body: Service Unavailable: backend pool empty"
        assert text.data["body_fields"] == {"body": "Service Unavailable: backend pool empty"}
    finally:
        server.close()
        await server.wait_closed()
