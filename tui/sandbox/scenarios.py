"""The fault scenarios a sandbox can inject, and which component owns each."""

from __future__ import annotations

# name -> (component name, what the operator will see)
SCENARIOS: dict[str, tuple[str, str]] = {
    "lock-contention": ("postgres", "a transaction holds a row lock; several sessions queue behind it"),
    "connection-exhaustion": ("postgres", "connections opened up to a few below max_connections"),
    "idle-in-transaction": ("postgres", "a session opens a transaction and sits idle in it"),
    "replication-lag": ("postgres", "replay paused on the replica while the primary keeps writing"),
    "queue-backlog": ("redis", "the producer outruns the consumer; queues grow and age"),
    "redis-memory": ("redis", "Redis memory filled close to maxmemory"),
    "latency-spike": ("http", "the api service answers slowly (over a second)"),
    "error-spike": ("http", "the api service answers 5xx"),
    "error-rate": ("http", "a bad api deploy: 30 % of requests answer 500 and /metrics counts them; health stays 200"),
    "cors-broken": ("http", "the api's CORS preflight no longer allows the app's origin"),
    "auth-failure": ("http", "the api rotated its token: the protected endpoint answers 401 to the configured one"),
    "webhook-failures": ("http", "the webhook receiver answers 503; failed deliveries climb until redelivered"),
    "service-down": ("http", "the payments service stops listening (connection refused)"),
    "dependency-outage": ("http", "the external status page reports a major outage"),
    "dns-failure": ("dns", "the name server answers SERVFAIL, then slowly (1.5 s)"),
    "container-crashloop": ("docker", "one container keeps restarting, another turns unhealthy"),
}


def owner(scenario: str) -> str:
    return SCENARIOS[scenario][0]


def describe_all() -> str:
    width = max(map(len, SCENARIOS))
    return "\n".join(f"{name:<{width}}  {text}" for name, (_, text) in SCENARIOS.items())


def unknown(scenario: str) -> str:
    return f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}"
