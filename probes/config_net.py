"""DNS and TCP targets of the config: their types and strict validation (no dnspython import)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.config import _Validator

DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS")
DNS_PORT = 53
# A DNS name as resolvers accept it: labels of letters, digits, "-" and "_" (`_dmarc`), at most
# 63 characters each and 253 in all, with or without the root's trailing dot.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """One DNS question (`host` `type`) asked of `server`, or of the system's resolvers."""

    name: str
    host: str  # the name asked for, always absolute (`api.example.com`, no search domains)
    type: str = "A"
    server: str = ""  # "127.0.0.1:5353" as written; "" means the resolvers of /etc/resolv.conf
    server_address: str = ""
    server_port: int = DNS_PORT
    expect: tuple[str, ...] = ()  # the answers wanted (any order); empty: any answer will do
    latency_warn_ms: float | None = None
    latency_fail_ms: float | None = None
    group: str = ""  # panes with more targets than rows show one line per group

    @property
    def display_server(self) -> str:
        return self.server or "system resolver"


@dataclass(frozen=True, slots=True)
class TcpTarget:
    """A port that must accept connections (a search engine, SMTP, a broker)."""

    name: str
    host: str
    port: int
    connect_warn_ms: float | None = None
    connect_fail_ms: float | None = None
    group: str = ""

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def dns_name(text: str) -> bool:
    """Whether `text` is a DNS name a query can carry."""
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def server_address(text: str) -> tuple[str, int]:
    """("127.0.0.1", 5353) from "127.0.0.1:5353", "127.0.0.1", "[::1]:5353" or "::1".

    ValueError with the operator's message when it is not an IP address with an optional port:
    the address of a resolver cannot itself need resolving."""
    host, port = text.strip(), DNS_PORT
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("expected \"ADDRESS\" or \"ADDRESS:PORT\" (IPv6 as \"[::1]:5353\")")
        host, port_text = inner, rest[1:] if rest else str(DNS_PORT)
        port = _port(port_text)
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = _port(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address with an optional port, such as \"127.0.0.1:5353\", got {text!r}") from None
    return str(address), port


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def _expected_answer(kind: str, value: str) -> str | None:
    """Why `value` cannot be an answer of a `kind` record, or None when it can."""
    if kind in ("A", "AAAA"):
        version = 4 if kind == "A" else 6
        try:
            if ipaddress.ip_address(value).version == version:
                return None
        except ValueError:
            pass
        return f"expected an IPv{version} address for an {kind} record, got {value!r}"
    if kind in ("CNAME", "MX", "NS") and not dns_name(value):
        return f"expected a host name for a {kind} record, got {value!r}"
    return None


def dns_target(v: _Validator, raw: Any, key: str) -> DnsTarget:
    t = v.table(raw, key, {"name", "host", "type", "server", "expect", "latency_warn_ms", "latency_fail_ms", "group"})
    name = v.typed(t, "name", key, str, required=True)
    if not name.strip():
        raise v.fail(f"{key}.name", "must not be empty")
    host = v.typed(t, "host", key, str, required=True)
    if not dns_name(host):
        raise v.fail(f"{key}.host", f"expected a DNS name such as \"api.example.com\", got {host[:60]!r}")
    kind = v.typed(t, "type", key, str, "A").upper()
    if kind not in DNS_TYPES:
        raise v.fail(f"{key}.type", f"expected one of {', '.join(DNS_TYPES)}, got {t['type']!r}")
    server = v.typed(t, "server", key, str, "")
    address, port = "", DNS_PORT
    if "server" in t:
        try:
            address, port = server_address(server)
        except ValueError as exc:
            raise v.fail(f"{key}.server", str(exc)) from None
    expect = v.strings(t, "expect", key)
    for i, value in enumerate(expect):
        if problem := _expected_answer(kind, value):
            raise v.fail(f"{key}.expect", f"item {i}: {problem}")
    warn, fail = _limits(v, t, key, "latency_warn_ms", "latency_fail_ms")
    return DnsTarget(name, host, kind, server.strip(), address, port, expect, warn, fail, v.group(t, key))


def tcp_target(v: _Validator, raw: Any, key: str) -> TcpTarget:
    t = v.table(raw, key, {"name", "host", "port", "connect_warn_ms", "connect_fail_ms", "group"})
    name = v.typed(t, "name", key, str, required=True)
    if not name.strip():
        raise v.fail(f"{key}.name", "must not be empty")
    host = v.typed(t, "host", key, str, required=True).strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not dns_name(host):
            raise v.fail(f"{key}.host", f"expected a host name or IP address (no port: give it as port), got {host[:60]!r}") from None
    port = v.typed(t, "port", key, int, required=True)
    if not 1 <= port <= 65535:
        raise v.fail(f"{key}.port", f"expected a port from 1 to 65535, got {port}")
    warn, fail = _limits(v, t, key, "connect_warn_ms", "connect_fail_ms")
    return TcpTarget(name, host, port, warn, fail, v.group(t, key))


def _limits(v: _Validator, t: dict[str, Any], key: str, warn_key: str, fail_key: str) -> tuple[float | None, float | None]:
    warn, fail = v.typed(t, warn_key, key, float, None), v.typed(t, fail_key, key, float, None)
    for limit, limit_key in ((warn, warn_key), (fail, fail_key)):
        if limit is not None and limit <= 0:
            raise v.fail(f"{key}.{limit_key}", f"expected a number of milliseconds above 0, got {limit!r}")
    if warn is not None and fail is not None and warn > fail:
        raise v.fail(f"{key}.{warn_key}", f"must not be above {fail_key} ({warn:g} > {fail:g})")
    return warn, fail
