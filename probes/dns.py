"""DNS probe: one question to a name server (dnspython), its rcode, answers, TTLs and timing.

dnspython is imported when the first question is asked, never when this module loads: the
cockpit's first frame and `warroom check` without DNS targets do not pay for it.
"""

from __future__ import annotations

import errno
import ipaddress
import time
from typing import Any

from probes.config import DnsTarget
from probes.lag import PatientTimeout
from probes.result import ProbeResult, Status, error_result, grade, guarded, lag_words, worst
from probes.thresholds import Thresholds
from probes.units import duration, duration_ms

KIND = "dns"
PROBES = ("dns",)

_BACKSTOP_S = 0.5  # guarded() is the backstop: our own timeout fires first and names the server
_MAX_ANSWERS = 50  # records kept in data; a TXT-heavy answer can hold hundreds

_RCODE_WORDS = {
    "NXDOMAIN": "no such name",
    "SERVFAIL": "the server failed to resolve it",
    "REFUSED": "the server refused to answer (not its zone, or no recursion for us?)",
    "FORMERR": "the server could not read the question",
    "NOTIMP": "the server does not implement this query",
}


def where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def latency_limits(target: DnsTarget, thresholds: Thresholds) -> tuple[float, float]:
    """The target's own lines win over the environment's thresholds.dns."""
    limits = thresholds.of("dns")
    warn, fail = target.latency_warn_ms, target.latency_fail_ms
    return (limits["latency_warn_ms"] if warn is None else warn, limits["latency_fail_ms"] if fail is None else fail)


def system_servers() -> list[tuple[str, int]]:
    """The name servers of /etc/resolv.conf, as the system resolver would ask them (in order)."""
    import dns.resolver as resolver

    conf = resolver.Resolver(configure=True)
    servers = []
    for server in conf.nameservers:
        address = getattr(server, "address", server)
        port = getattr(server, "port", None) or conf.nameserver_ports.get(str(address), conf.port)
        servers.append((str(address), int(port)))
    return servers


def _value(rdtype: str, rdata: Any) -> tuple[str, dict[str, Any]]:
    """An answer's value as the config's `expect` writes it, and its other fields."""
    if rdtype in ("A", "AAAA"):
        return str(rdata.address), {}
    if rdtype in ("CNAME", "NS"):
        return rdata.target.to_text(omit_final_dot=True), {}
    if rdtype == "MX":
        return rdata.exchange.to_text(omit_final_dot=True), {"preference": rdata.preference}
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace"), {}
    return rdata.to_text(), {}


def _same(rdtype: str, value: str) -> str:
    """A value in one spelling, to compare: addresses canonical, names lower case without the dot."""
    if rdtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    return value if rdtype == "TXT" else value.lower().rstrip(".")


def answers_of(response: Any) -> list[dict[str, Any]]:
    import dns.rdatatype as rdatatype

    found = []
    for rrset in response.answer:
        kind = rdatatype.to_text(rrset.rdtype)
        for rdata in rrset:
            value, extra = _value(kind, rdata)
            found.append({"name": rrset.name.to_text(omit_final_dot=True), "type": kind, "ttl": rrset.ttl, "value": value, **extra})
    return found


async def _ask(target: DnsTarget, thresholds: Thresholds, timeout: float) -> list[ProbeResult]:
    import dns.asyncquery as asyncquery
    import dns.flags as flags
    import dns.message as message
    import dns.rcode as rcodes

    warn_ms, fail_ms = latency_limits(target, thresholds)
    base: dict[str, Any] = {"host": target.host, "type": target.type, "server": None, "rcode": None, "answers": [],
                            "values": [], "query_ms": None, "expect": list(target.expect),
                            "latency_warn_ms": warn_ms, "latency_fail_ms": fail_ms}
    if target.server_address:
        servers = [(target.server_address, target.server_port)]
    else:
        try:
            servers = system_servers()
        except Exception as exc:  # noqa: BLE001 - NoResolverConfiguration, an unreadable resolv.conf
            return [error_result(target.name, KIND, "dns", f"{target.name}: no system resolver to ask ({type(exc).__name__}); set server", **base)]
        if not servers:
            return [error_result(target.name, KIND, "dns", f"{target.name}: /etc/resolv.conf names no name server; set server", **base)]
    query = message.make_query(target.host, target.type)
    per_server = timeout / len(servers)  # the system resolver's servers share the timeout, in order
    silent: list[str] = []
    lag_s = 0.0
    for address, port in servers:
        server = where(address, port)
        scope = PatientTimeout(per_server)
        try:
            async with scope:
                response = await asyncquery.udp(query, address, port=port, ignore_unexpected=True)
                over_tcp = bool(response.flags & flags.TC)
                if over_tcp:  # truncated: the whole answer only comes over TCP, as resolvers do
                    response = await asyncquery.tcp(query, address, port=port)
        except TimeoutError:
            silent.append(server)
            lag_s = max(lag_s, scope.lag_s)
            continue
        except OSError as exc:  # ICMP port unreachable comes back as ECONNREFUSED on loopback
            if exc.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise
            silent.append(server)
            if len(servers) == 1:
                return [error_result(target.name, KIND, "dns", f"{target.name}: no name server listening at {server} ({exc.strerror})",
                                     **{**base, "server": server, "rcode": "unreachable"})]
            continue
        query_ms = round(max(0.0, time.perf_counter() - scope.started - scope.stalled()) * 1000, 2)
        return [_graded(target, base, server, rcodes.to_text(response.rcode()), response, query_ms, over_tcp, silent)]
    asked = ", ".join(silent)
    return [error_result(target.name, KIND, "dns", f"{target.name}: no answer from {asked} within {duration(timeout)}{lag_words(lag_s)} (is the name server up?)",
                         **{**base, "server": silent[-1], "rcode": "timeout", "silent": silent}, timeout=True)]


def _graded(target: DnsTarget, base: dict[str, Any], server: str, rcode: str, response: Any, query_ms: float,
            over_tcp: bool, silent: list[str]) -> ProbeResult:
    import dns.flags as flags

    answers = answers_of(response)
    values = [a["value"] for a in answers if a["type"] == target.type]
    data = {**base, "server": server, "rcode": rcode, "answers": answers[:_MAX_ANSWERS], "values": values[:_MAX_ANSWERS],
            "query_ms": query_ms, "authoritative": bool(response.flags & flags.AA), "over_tcp": over_tcp,
            "min_ttl": min((a["ttl"] for a in answers), default=None)}
    if silent:
        data["silent"] = silent  # servers before this one that did not answer
    question = f"{target.host} {target.type}"
    issues: list[tuple[Status, str]] = []
    # None: nothing to compare (no `expect`, or no answer); False: an answer, not the one wanted.
    data["expect_ok"] = None
    if rcode != "NOERROR":
        issues.append((Status.FAIL, f"{rcode} from {server} for {question}: {_RCODE_WORDS.get(rcode, 'an error answer')}"))
    elif not values:
        issues.append((Status.FAIL, f"no {target.type} record for {target.host} (NOERROR, empty answer from {server})"))
    elif target.expect:
        data["expect_ok"] = {_same(target.type, v) for v in values} == {_same(target.type, v) for v in target.expect}
        if not data["expect_ok"]:
            issues.append((Status.FAIL, f"{question} is {', '.join(values)}, expected {', '.join(target.expect)} (from {server})"))
    warn_ms, fail_ms = data["latency_warn_ms"], data["latency_fail_ms"]
    slow = grade(query_ms, warn_ms, fail_ms)
    if slow is not Status.OK:
        limit = fail_ms if slow is Status.FAIL else warn_ms
        issues.append((slow, f"slow: {duration_ms(query_ms)} ({slow} at {duration_ms(limit)}) from {server}"))
    if issues:
        summary = f"{target.name}: " + "; ".join(text for _, text in issues)
    else:
        first = next(a for a in answers if a["type"] == target.type)
        more = f" (+{len(values) - 1})" if len(values) > 1 else ""
        summary = f"{target.name}: {question} {first['value']}{more} TTL {first['ttl']} s in {duration_ms(query_ms)} from {server}"
    return ProbeResult(target.name, KIND, "dns", worst(s for s, _ in issues), summary, value=query_ms, data=data, elapsed_ms=query_ms or 0.01)


def _describe(exc: BaseException, target: DnsTarget) -> str | None:
    server = where(target.server_address, target.server_port) if target.server_address else "the system resolver"
    name = type(exc).__name__
    if name in ("BadResponse", "FormError", "UnexpectedSource", "ShortHeader", "TrailingJunk"):
        return f"unreadable answer from {server} ({name})"
    if isinstance(exc, OSError):
        return f"cannot ask {server}: {exc.strerror or exc}"
    return None


async def dns(target: DnsTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Any = None) -> ProbeResult:
    """One question to the target's name server, graded; never raises."""
    results = await guarded(
        target.name, KIND, PROBES, _ask(target, thresholds or Thresholds(), timeout), timeout=timeout + _BACKSTOP_S,
        describe_error=lambda exc: _describe(exc, target),
    )
    return results[0]


async def collect(target: DnsTarget, thresholds: Thresholds, *, timeout: float = 2.0, session: Any = None) -> list[ProbeResult]:
    """Every probe of one DNS target (there is one: "dns"); never raises."""
    return [await dns(target, thresholds, timeout=timeout, session=session)]
