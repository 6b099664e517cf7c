"""`warroom sandbox inject|heal|status|scenarios`: talk to a running sandbox over its control socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tui.sandbox.scenarios import SCENARIOS, describe_all, unknown

REPLY_TIMEOUT_S = 60.0


class ControlError(Exception):
    """The sandbox could not be reached or refused the request."""


def request(directory: Path, payload: dict[str, Any], *, timeout: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
    path = Path(directory).resolve() / "control.sock"
    if not path.exists():
        raise ControlError(f"no sandbox is running in {directory} (start one with: warroom sandbox up --dir {directory})")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionRefusedError, FileNotFoundError):
            raise ControlError(f"the sandbox in {directory} is not answering (stopped?)") from None
        except TimeoutError:
            raise ControlError(f"the sandbox in {directory} did not answer within {timeout:g}s") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise ControlError(f"the sandbox in {directory} sent an unreadable reply") from None


def main(args: Any) -> int:
    from tui.cli import UsageError

    action = args.sandbox_command
    if action == "scenarios":
        print(describe_all())
        return 0
    if action in ("inject", "heal") and args.scenario not in SCENARIOS:
        raise UsageError(unknown(args.scenario))
    payload: dict[str, Any] = {"op": action}
    if action in ("inject", "heal"):
        payload["scenario"] = args.scenario
    try:
        reply = request(args.dir, payload)
    except ControlError as exc:
        raise UsageError(str(exc)) from None
    if not reply.get("ok"):
        print(f"warroom sandbox: {reply.get('message')}")
        return 1
    if action == "status":
        print(f"components: {', '.join(reply.get('components', []))}")
    else:
        print(f"{action} {args.scenario}: {reply.get('message')}")
    print(f"active scenarios: {', '.join(reply.get('active', [])) or 'none'}")
    return 0
