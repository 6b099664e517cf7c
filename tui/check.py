"""`warroom check`: every configured probe once, concurrently, as a table or JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from probes.config import load_config
from probes.registry import collect_all
from probes.result import ProbeResult, Status
from probes.secrets import redact

_MARK = {Status.OK: "ok", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR"}


def format_table(results: list[ProbeResult], width: int = 120) -> str:
    rows = [
        (_MARK[r.status], r.target, r.kind, r.probe, f"{r.elapsed_ms:.0f}ms", redact(r.summary))
        for r in results
    ]
    headers = ("STATUS", "TARGET", "KIND", "PROBE", "TIME", "SUMMARY")
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths, strict=True)) + "  SUMMARY"]
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
        room = max(20, width - len(head) - 2)
        summary = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        lines.append(f"{head}  {summary}")
    counts = {s: sum(r.status is s for r in results) for s in Status}
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no probes configured")
    return "\n".join(lines)


def to_json(results: list[ProbeResult]) -> list[dict[str, Any]]:
    out = []
    for result in results:
        item = result.to_json()
        item["summary"] = redact(item["summary"])
        out.append(item)
    return out


async def _probe(env: Any, timeout: float) -> tuple[list[ProbeResult], list[str]]:
    """Every probe, and alongside them one look per PostgreSQL target at the role it reads with."""
    if not env.postgres:
        return await collect_all(env, timeout=timeout), []
    from probes.postgres import read_role_risk

    results, *risks = await asyncio.gather(
        collect_all(env, timeout=timeout), *(read_role_risk(t, timeout=timeout) for t in env.postgres)
    )
    return results, [r for r in risks if r]


def main(args: Any) -> int:
    config = load_config(getattr(args, "config", None))
    env = config.environment(getattr(args, "env", None))
    timeout = getattr(args, "timeout", None) or env.timeout_s
    results, warnings = asyncio.run(_probe(env, timeout))
    # On stderr, so `--json` stays one array for its consumers. A warning about the read role is
    # advice on the configuration, not a reading: it leaves the exit status to the probes.
    for warning in warnings:
        print(f"warning: {redact(warning)}", file=sys.stderr)
    if args.json:
        # default=str: data may hold datetimes or Decimals from a backend; never fail the output.
        print(redact(json.dumps(to_json(results), indent=2, default=str)))
    else:
        import shutil

        print(format_table(results, shutil.get_terminal_size((120, 24)).columns))
    sys.stdout.flush()
    return 0 if all(r.status is Status.OK for r in results) else 1
