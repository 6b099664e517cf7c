"""SIGTERM and SIGHUP end the cockpit cleanly, also when the terminal is gone (an SSH link dropped)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import termios
from collections.abc import Callable
from typing import Any


def terminal_gone(fd: int = 0) -> bool:
    """Whether the terminal on `fd` hung up (its calls fail with EIO), not merely sent a signal."""
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:
        return bool(exc.args) and exc.args[0] == errno.EIO
    return False


def _output_to_null() -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


def exit_on_signals(exit_app: Callable[[int], Any]) -> Callable[[], None]:
    """From now on SIGTERM and SIGHUP call `exit_app(128 + signal)` in the running event loop.

    Returns what puts the previous handlers back (call it when the app has ended). Raises
    ValueError off the main thread, where Python cannot set signal handlers.
    """
    loop = asyncio.get_running_loop()

    def handle(signum: int, frame: object) -> None:
        if signum == signal.SIGHUP and terminal_gone():
            # The kernel follows a hang-up with SIGCONT, on which Textual would start its
            # application mode again on the dead terminal (a second writer thread: the exit then
            # deadlocked on its queue). What the exit still writes goes nowhere instead.
            signal.signal(signal.SIGCONT, signal.SIG_DFL)
            _output_to_null()
        with contextlib.suppress(RuntimeError):  # the loop is already closing
            loop.call_soon_threadsafe(exit_app, 128 + signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)

    return restore
