"""The cockpit's one-line header: environment, production banner, refresh interval, last data."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class EnvHeader(Widget):
    """`warroom │ PROD │ prod-eu │ every 2s │ last 12:03:04 (0.4s ago) │ 2 fail`.

    Production gets a red banner unless the config picks another colour; the banner text
    is the config's `banner` (default "PROD" for production environments).
    """

    DEFAULT_CSS = """
    EnvHeader { dock: top; height: 1; background: $panel; color: $text; }
    """

    last_update: reactive[float | None] = reactive(None)
    counts: reactive[str] = reactive("")
    read_only: reactive[bool] = reactive(False)

    def __init__(
        self,
        env_name: str,
        *,
        banner: str = "",
        color: str = "",
        production: bool = False,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.env_name = env_name
        self.banner = banner or ("PROD" if production else "")
        self.banner_style = f"bold white on {color or ('red' if production else 'blue')}"
        self.refresh_s = refresh_s
        self.clock = clock

    def render(self) -> Text:
        text = Text(" warroom ", style="bold")
        if self.banner:
            text.append(f" {self.banner} ", style=self.banner_style)
            text.append(" ")
        text.append(self.env_name, style="bold")
        text.append(f" │ every {self.refresh_s:g}s │ ", style="dim")
        if self.last_update is None:
            text.append("waiting for first readings…", style="italic")
        else:
            # Whole seconds: the clock must not force a repaint more than once per refresh.
            stamp = time.strftime("%H:%M:%S", time.localtime(self.last_update))
            text.append(f"last {stamp}")
        if self.read_only:
            text.append(" │ read-only", style="dim")
        if self.counts:
            text.append(" │ ", style="dim")
            text.append(self.counts, style="bold")
        return text
