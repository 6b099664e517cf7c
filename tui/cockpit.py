"""The bare `warroom` command: load the config and run the cockpit until the operator quits."""

from __future__ import annotations

import gc
from typing import Any

from probes.config import load_config


def main(args: Any) -> int:
    # Start-up allocates a lot and frees little: garbage collections then only delay the
    # first frame (by ~20%). The app turns the collector back on once it is up (WarroomApp).
    gc.disable()
    config = load_config(getattr(args, "config", None))
    env = config.environment(getattr(args, "env", None))
    from tui.app import make_app

    app = make_app(
        env,
        refresh_s=getattr(args, "refresh", None),
        read_only=bool(getattr(args, "read_only", False)),
        runbook_dirs=config.runbook_dirs,
        keymap=config.keys,
        runbook=getattr(args, "runbook", None),
        guided=bool(getattr(args, "guided", False)),
        resume=bool(getattr(args, "resume", False)),
    )
    code = app.run()
    return int(code or 0)
