"""The main screen: six live panes in a grid, the runbook sidebar, header and footer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from probes.registry import targets
from widgets.blank import BlankBacked
from widgets.env_header import EnvHeader
from widgets.problems import header_line, problems, waiting_for

if TYPE_CHECKING:
    from tui.app import WarroomApp
    from widgets.pane import Pane

FILL_IN_S = 1.0  # the longest the sidebar and footer wait for the first readings
# Runbook suggestions are checked again at once when a reading changes state, else at most
# this often (a trigger on a value alone, `lag > 10 MB`, shows within this many seconds).
SUGGEST_EVERY_S = 5.0

# Display order; the number keys follow it.
PANE_TITLES: tuple[tuple[str, str], ...] = (
    ("services", "Services"),
    ("connections", "Connections"),
    ("locks", "Locks"),
    ("replication", "Replication"),
    ("queues", "Queues"),
    ("latency", "Latency"),
)


def pane_classes() -> tuple[tuple[str, type[Pane]], ...]:
    """(id, class) of the six panes, in display order; imported once the first frame is up."""
    from widgets.connections import ConnectionsPane
    from widgets.latency import LatencyPane
    from widgets.locks import LocksPane
    from widgets.queues import QueuesPane
    from widgets.replication import ReplicationPane
    from widgets.services import ServicesPane

    classes = (ServicesPane, ConnectionsPane, LocksPane, ReplicationPane, QueuesPane, LatencyPane)
    return tuple((name, cls) for (name, _title), cls in zip(PANE_TITLES, classes, strict=True))


class Body(BlankBacked, Horizontal):
    """The panes and the sidebar side by side."""


class PaneGrid(BlankBacked, Grid):
    """The six panes."""


class MainScreen(BlankBacked, Screen[None]):
    """Everything at a glance. Narrow terminals get a tighter grid and no sidebar."""

    app: WarroomApp  # type: ignore[assignment]

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-normal"), (170, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (32, "-tall")]

    BINDINGS: ClassVar[list[Binding]] = [
        *(
            Binding(str(n), f"jump('{name}')", f"{title} pane", show=False, id=f"pane.{name}")
            for n, (name, title) in enumerate(PANE_TITLES, start=1)
        ),
        Binding("r", "focus_runbooks", "Runbooks", id="runbooks.focus"),
        Binding("b", "toggle_sidebar", "Sidebar", show=False, id="runbooks.toggle"),
        Binding("slash", "filter_runbooks", "Find runbook", id="runbooks.find"),
        Binding("i", "app.close_incident", "Close incident", show=False, id="incident.close"),
        Binding("c", "resume_runbook", "Back to runbook", id="runbooks.resume"),
        Binding("a", "app.open_detail('alerts')", "Alerts", id="alerts.view"),  # tui/screens/alerts.py
    ]

    def __init__(self) -> None:
        super().__init__()
        self._dirty: set[str] = set()
        self._panes: list[Pane] = []  # empty until the first frame is on screen
        self._pending_jump: str | None = None  # a number key typed before that
        self._sidebar: Any = None  # widgets.runbook_sidebar.RunbookSidebar, once mounted
        self._header: EnvHeader | None = None
        self._suggested: tuple[dict[Any, Any], float] = ({}, 0.0)  # states checked last, when
        self._expected = [(kind, target.name) for kind, target in targets(self.app.env)]
        # The breakpoint classes Textual would add on the first resize, set up front: adding
        # them after the first layout restyles every widget and lays the screen out twice.
        width, height = self.app.size
        horizontal = self._breakpoint(width, self.HORIZONTAL_BREAKPOINTS)
        self.add_class(horizontal, self._breakpoint(height, self.VERTICAL_BREAKPOINTS), update=False)

    @staticmethod
    def _breakpoint(size: int, breakpoints: list[tuple[int, str]]) -> str:
        return max((b for b in breakpoints if size >= b[0]), key=lambda b: b[0])[1]

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
        self._header = header
        yield header
        # The first frame shows the layout with stand-ins drawn like the panes, the runbook
        # list and the footer: the real ones (their modules, styles, rows) cost more to set up
        # than the rest of the app and replace them right after it (`first_frame_shown`).
        with Body(id="body"):
            with PaneGrid(id="panes"):
                for name, title in PANE_TITLES:
                    slot = Static("waiting for first readings…", id=f"{name}-slot", classes="pane-slot")
                    slot.border_title = title
                    yield slot
            slot = Vertical(id="sidebar-slot")
            slot.border_title = "Runbooks"
            yield slot
        yield Static(id="footer-slot")

    def first_frame_shown(self) -> None:
        """The app calls this once the first frame is on screen: the panes replace their
        stand-ins now; the sidebar and the footer follow the first readings (they would
        delay them), or a second later without any."""
        if self._panes:
            return
        env = self.app.env
        kinds = {kind for kind, _target in targets(env)}
        self._panes = [
            cls(self.app.store, thresholds=env.thresholds, configured=bool(kinds & set(cls.KINDS)), id=name)
            for name, cls in pane_classes()
        ]
        grid = self.query_one("#panes", PaneGrid)
        grid.remove_children()
        grid.mount_all(self._panes)
        if self.focused is None:
            wanted = next((p for p in self._panes if p.id == self._pending_jump), self._panes[0])
            self.set_focus(wanted)
        self.set_timer(FILL_IN_S, self._fill_in, name="fill in")
        if self._dirty and self.is_current:
            self.call_after_refresh(self._flush)

    def _fill_in(self) -> None:
        """Mount the runbook sidebar and the footer in place of their stand-ins."""
        if self._sidebar is not None:
            return
        from widgets.key_bar import KeyBar
        from widgets.runbook_sidebar import RunbookSidebar

        self.query_one("#sidebar-slot").remove()
        self.query_one("#footer-slot").remove()
        self._sidebar = RunbookSidebar(self.app.runbooks, id="sidebar")
        self.query_one("#body").mount(self._sidebar)
        # A footer shows its keys when the bindings change: tell it once it is mounted.
        self.mount(KeyBar())
        self.call_after_refresh(self.refresh_bindings)
        self.call_after_refresh(self._suggest)

    def _suggest(self, *, unless_unchanged: bool = False) -> None:
        if self._sidebar is None:
            return
        latest = self.app.store.latest
        states = {key: result.status for key, result in latest.items()}
        now = time.monotonic()
        if unless_unchanged and states == self._suggested[0] and now - self._suggested[1] < SUGGEST_EVERY_S:
            return
        self._suggested = (states, now)
        self._sidebar.suggest(latest.values())

    def panes(self) -> list[Pane]:
        # Kept from compose: querying the DOM on every reading cost more than drawing it.
        return list(self._panes)

    def store_changed(self, probes: set[str]) -> None:
        """New readings arrived: redraw the panes that show them (only if on screen)."""
        self._dirty |= probes
        if not self.is_current or not self._panes:
            return
        self._flush()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for pane in self.panes():
            if dirty & set(pane.PROBES):
                pane.version += 1
        header = self._header
        if header is None or not header.is_attached:
            return  # the screen is being torn down (the app is exiting)
        header.last_update = self.app.store.last_update
        header.show_problems(*self.problem_line())
        self.call_after_refresh(self._fill_in)
        # After the redraw: the first suggestion loads every runbook file.
        self.call_after_refresh(self._suggest, unless_unchanged=True)

    def on_screen_resume(self) -> None:
        self.refresh_bindings()  # `c` (back to the runbook) once one was left
        # Readings that arrived while a detail screen covered this one.
        if self._dirty:
            self._flush()

    def problem_line(self) -> tuple[str, str]:
        """(the header's problem line, its worst state): every reading that is not ok, by
        target, with how many targets have not reported yet and whether warroom keeps up."""
        store, source = self.app.store, self.app.source
        return header_line(
            problems(store),
            waiting=len(waiting_for(store, self._expected)),
            behind=getattr(source, "behind", ""),
            skipping=getattr(source, "skipping", None),
        )

    def status_counts(self) -> str:
        return self.problem_line()[0]

    def action_jump(self, name: str) -> None:
        # Synchronous (Widget.focus is deferred): "3" then Enter typed fast must open Locks.
        pane = next((p for p in self._panes if p.id == name), None)
        if pane is not None:
            self.set_focus(pane)
        else:  # typed before the panes replaced their stand-ins: focus it when they do
            self._pending_jump = name

    def _with_sidebar(self, then: Callable[[Any], object]) -> None:
        """Call `then(sidebar)`; a key pressed before the first readings mounts the sidebar
        first and calls it once that is done."""
        mounted = self._sidebar is not None
        self._fill_in()
        if mounted:
            then(self._sidebar)
        else:
            self.call_after_refresh(then, self._sidebar)

    def action_focus_runbooks(self) -> None:
        """`r`: the runbook list; where the sidebar is hidden (a narrow terminal), full screen
        rather than squeezing the panes."""
        from textual.widgets import OptionList

        def focus(sidebar: Any) -> None:
            if not sidebar.display:
                self._runbook_list(sidebar)
            else:
                # On the top, the first suggestion, even when focus came back to the list from
                # a runbook: after the incident moved on, `r` Enter opens what the readings
                # point to now, not the runbook the cursor was on before.
                options = sidebar.query_one(OptionList)
                if options.option_count:
                    options.highlighted = 0
                options.focus()

        self._with_sidebar(focus)

    def action_filter_runbooks(self) -> None:
        """`/` anywhere on the main screen: type part of a runbook's name, Enter opens it."""
        self._with_sidebar(lambda sidebar: sidebar.action_filter() if sidebar.display else self._runbook_list(sidebar, filter_first=True))

    def _runbook_list(self, sidebar: Any, *, filter_first: bool = False) -> None:
        from tui.screens.runbook_list import RunbookListScreen

        self.app.push_screen(RunbookListScreen(sidebar, filter_first=filter_first))

    def action_toggle_sidebar(self) -> None:
        self._fill_in()
        self._sidebar.display = not self._sidebar.display
        self.call_after_refresh(self._show_runbook_hint)

    # --- the runbook hint and the runbook in progress (issue 9, item 9) ---------------------

    def on_runbook_sidebar_suggested(self) -> None:
        self._show_runbook_hint()

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_runbook_hint)

    def _show_runbook_hint(self) -> None:
        """With the sidebar hidden, the header says runbooks are suggested and which key lists them."""
        sidebar, header = self._sidebar, self._header
        if header is None or not header.is_attached or sidebar is None:
            return
        found = len(sidebar.suggested) if not sidebar.display else 0
        header.show_hint(f"r ▶ {found} runbook{'s' if found > 1 else ''}" if found else "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume_runbook":  # in the key bar once a runbook was left
            return getattr(self.app, "runbook_left", None) is not None
        return True

    def action_resume_runbook(self) -> None:
        """`c`: back to the runbook left last, on the step it was left at."""
        from tui.screens.runbook import reopen_runbook

        if not reopen_runbook(self.app):
            self.notify("no runbook in progress yet: r lists them")

    def on_pane_drill_down(self, event: Pane.DrillDown) -> None:
        self.app.open_detail(event.pane.DETAIL)
