"""The cockpit's one-line header: environment, production banner, refresh, last data, problems."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from widgets.blank import BlankBacked
from widgets.text_line import TextLine

# NO_COLOR drops the colours; the words ("2 problems", "all ok") carry the meaning anyway.
_COUNTS_STYLE = {"warn": "bold yellow", "fail": "bold red", "error": "bold red", "stale": "bold"}
# Below this width the refresh and the clock give way to the problems (80x24 on a bastion:
# "4 probl…" beside "every 1s │ last 13:32:46" told nothing).
NARROW_WIDTH = 100


class EnvHeader(BlankBacked, Horizontal):
    """`warroom │ PROD │ prod-eu │ every 2s │ last 12:03:04 │ read-only │ 1 problem: api slow 1.3 s`.

    Production gets a red banner unless the config picks another colour; the banner text
    is the config's `banner` (default "PROD" for production environments).

    The parts that change (time of the last reading, the problems) are separate one-line
    widgets that are only touched when their text changes: a terminal then receives a dozen
    cells per second for the clock instead of the whole header line.
    """

    DEFAULT_CSS = """
    EnvHeader { dock: top; height: 1; background: $panel; color: $text; }
    EnvHeader > Label { width: auto; height: 1; text-wrap: nowrap; }
    EnvHeader > #header-counts { width: 1fr; }
    EnvHeader > #header-hint { width: auto; text-style: bold; color: $warning; }
    """

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
        self._last_update: float | None = None
        self._counts = ""
        self._counts_state = ""
        self._read_only = False
        self._narrow = False
        # Kept as attributes: the screen sets readings before this header's compose ran.
        self._env = Label(self._env_text(), id="header-env")
        self._last = TextLine(self._last_text(), id="header-last")
        self._tail = TextLine(self._tail_text(), id="header-counts")
        self._hint = TextLine(Text(), id="header-hint")  # `r ▶ 3 runbooks` while the sidebar is hidden

    def compose(self) -> ComposeResult:
        yield self._env
        yield self._last
        yield self._tail
        yield self._hint

    def on_resize(self, event: object) -> None:
        narrow = self.size.width < NARROW_WIDTH
        if narrow != self._narrow:
            self._narrow = narrow
            self._env.update(self._env_text())
            self._last.display = not narrow

    def show_hint(self, text: str) -> None:
        """A short hint at the right end (the main screen's runbook hint); "" hides it."""
        self._hint.update(Text(f" {text} " if text else ""))

    # --- what the screen sets ------------------------------------------------------------

    @property
    def last_update(self) -> float | None:
        return self._last_update

    @last_update.setter
    def last_update(self, value: float | None) -> None:
        self._last_update = value
        self._last.update(self._last_text())

    @property
    def counts(self) -> str:
        return self._counts

    @counts.setter
    def counts(self, value: str) -> None:
        self.show_problems(value)

    def show_problems(self, text: str, state: str = "") -> None:
        """The problem line (`2 problems: ...`, `all ok`), coloured by the worst `state`."""
        self._counts, self._counts_state = text, state
        self._tail.update(self._tail_text())

    @property
    def read_only(self) -> bool:
        return self._read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self._read_only = value
        self._tail.update(self._tail_text())

    # --- the parts ---------------------------------------------------------------------

    def _env_text(self) -> Text:
        text = Text(" warroom ", style="bold")
        if self.banner:
            text.append(f" {self.banner} ", style=self.banner_style)
            text.append(" ")
        text.append(self.env_name, style="bold")
        text.append(" " if self._narrow else f" │ every {self.refresh_s:g}s │ ", style="dim")
        return text

    def _last_text(self) -> Text:
        if self._last_update is None:
            return Text("waiting for first readings…", style="italic")
        # Whole seconds: the clock must not force a repaint more than once per refresh.
        return Text("last " + time.strftime("%H:%M:%S", time.localtime(self._last_update)))

    def _tail_text(self) -> Text:
        text = Text()
        if self._read_only:
            text.append(" │ read-only", style="dim")
        if self._counts:
            text.append(" │ ", style="dim")
            text.append(self._counts, style=_COUNTS_STYLE.get(self._counts_state, "bold"))
        return text

    def render_text(self) -> str:
        """The header as plain text (tests and screenshots read it)."""
        last = "" if self._narrow else self._last_text().plain
        return self._env_text().plain + last + self._tail_text().plain + self._hint.text.plain
