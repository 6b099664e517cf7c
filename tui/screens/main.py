"""The main screen: six live panes in a grid, the runbook sidebar, header and footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from widgets.connections import ConnectionsPane
from widgets.env_header import EnvHeader
from widgets.latency import LatencyPane
from widgets.locks import LocksPane
from widgets.pane import Pane
from widgets.queues import QueuesPane
from widgets.replication import ReplicationPane
from widgets.runbook_sidebar import RunbookSidebar
from widgets.services import ServicesPane
from widgets.store import STATE_RANK

if TYPE_CHECKING:
    from tui.app import WarroomApp

# Display order; the number keys follow it.
PANES: tuple[tuple[str, type[Pane]], ...] = (
    ("services", ServicesPane),
    ("connections", ConnectionsPane),
    ("locks", LocksPane),
    ("replication", ReplicationPane),
    ("queues", QueuesPane),
    ("latency", LatencyPane),
)


class MainScreen(Screen[None]):
    """Everything at a glance. Narrow terminals get a tighter grid and no sidebar."""

    app: WarroomApp  # type: ignore[assignment]

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-normal"), (170, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (32, "-tall")]

    BINDINGS: ClassVar[list[Binding]] = [
        *(
            Binding(str(n), f"jump('{name}')", f"{cls.TITLE} pane", show=False, id=f"pane.{name}")
            for n, (name, cls) in enumerate(PANES, start=1)
        ),
        Binding("r", "focus_runbooks", "Runbooks", id="runbooks.focus"),
        Binding("b", "toggle_sidebar", "Sidebar", show=False, id="runbooks.toggle"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._dirty: set[str] = set()

    def compose(self) -> ComposeResult:
        env = self.app.env
        header = EnvHeader(
            env.name,
            banner=env.banner,
            color=env.color,
            production=env.production,
            refresh_s=self.app.refresh_s,
            clock=self.app.store.clock,
            id="header",
        )
        header.read_only = self.app.read_only
        yield header
        with Horizontal(id="body"):
            with Grid(id="panes"):
                for name, cls in PANES:
                    yield cls(self.app.store, thresholds=env.thresholds, id=name)
            yield RunbookSidebar(self.app.runbooks, id="sidebar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Pane).focus()

    def panes(self) -> list[Pane]:
        return list(self.query(Pane))

    def store_changed(self, probes: set[str]) -> None:
        """New readings arrived: redraw the panes that show them (only if on screen)."""
        self._dirty |= probes
        if not self.is_current:
            return
        self._flush()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for pane in self.panes():
            if dirty & set(pane.PROBES):
                pane.version += 1
        header = self.query_one(EnvHeader)
        header.last_update = self.app.store.last_update
        header.counts = self.status_counts()

    def on_screen_resume(self) -> None:
        # Readings that arrived while a detail screen covered this one.
        if self._dirty:
            self._flush()

    def status_counts(self) -> str:
        states = [pane.state for pane in self.panes()]
        bad = [s for s in sorted(set(states), key=lambda s: -STATE_RANK[s]) if s != "ok"]
        return ", ".join(f"{states.count(s)} {s}" for s in bad) or "all ok"

    def action_jump(self, name: str) -> None:
        # Synchronous (Widget.focus is deferred): "3" then Enter typed fast must open Locks.
        self.set_focus(self.query_one(f"#{name}", Pane))

    def action_focus_runbooks(self) -> None:
        sidebar = self.query_one(RunbookSidebar)
        if not sidebar.display or sidebar.styles.display == "none" or sidebar.region.width == 0:
            sidebar.display = True
        self.query_one("#sidebar OptionList", OptionList).focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(RunbookSidebar)
        sidebar.display = sidebar.region.width == 0

    def on_pane_drill_down(self, event: Pane.DrillDown) -> None:
        self.app.open_detail(event.pane.DETAIL)
