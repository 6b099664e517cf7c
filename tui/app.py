"""The cockpit App and `make_app`, the one factory the CLI, tests, screenshots and demo use."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from probes.config import Environment
from probes.registry import targets
from runbooks.catalog import RunbookEntry, find_runbooks
from tui.commands import WarroomCommands
from tui.messages import JumpToPane, ProbesUpdated
from tui.scheduler import LiveSource, ProbeSource
from tui.screens.help import HelpScreen, KeyRow
from tui.screens.main import MainScreen
from tui.symptoms import SymptomWatch
from widgets.store import HISTORY, ResultStore

if TYPE_CHECKING:
    from widgets.runbook_sidebar import RunbookSidebar

# Allocations between two collections of young objects once the cockpit runs (default 700).
GC_YOUNG_THRESHOLD = 20_000


def _detail_screens() -> dict[str, Callable[[], Screen[None]]]:
    # Imported on first drill-down: the chart screens pull in plotext.
    from tui.screens import charts, details

    return {
        "services": details.ServicesDetail,
        "connections": details.ConnectionsDetail,
        "locks": details.LocksDetail,
        "replication": charts.ReplicationDetail,
        "latency": charts.LatencyDetail,
        "queues": charts.QueuesDetail,
        "alerts": _alerts_screen,
    }


def _alerts_screen() -> Screen[None]:
    from tui.screens.alerts import AlertsDetail

    return AlertsDetail()


class WarroomApp(App[int]):
    """Six live panes over one environment; every probe runs in a worker of `source`."""

    TITLE = "warroom"
    _restore_signals: Callable[[], None] | None = None
    CSS_PATH = "cockpit.tcss"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {WarroomCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("tab", "focus_next", "Next pane", show=False, id="app.focus_next"),
        Binding("shift+tab", "focus_previous", "Previous pane", show=False, id="app.focus_previous"),
    ]

    def __init__(
        self,
        env: Environment,
        *,
        source: ProbeSource,
        refresh_s: float,
        read_only: bool = False,
        runbooks: list[RunbookEntry] | None = None,
        store: ResultStore | None = None,
        start_runbook: str | None = None,
        guided: bool = False,
        resume: bool = False,
    ) -> None:
        super().__init__()
        if self.no_color:
            # NO_COLOR: Textual would only turn colours to greys; strip them instead. Every
            # state also reads from its mark's shape and its word (● ▲ ✖ ○, "fail").
            from textual.filter import Monochrome, NoColor

            self._filters = [f for f in self._filters if not isinstance(f, Monochrome)] + [NoColor()]
        self.env = env
        self.source = source
        self.refresh_s = refresh_s
        self.read_only = read_only
        self.runbooks = runbooks or []
        self.store = store or ResultStore()
        self.start_runbook = start_runbook
        self.guided = guided
        self.resume = resume
        self.runbook_left: Any = None  # (runbook, mode, step id) `c` on the main screen goes back to
        self.incident: Any = None  # tui.incident.IncidentLog, created at the first alarm or runbook opened
        self.symptoms = SymptomWatch(self._incident_log)  # opens the incident at the first alarm
        self._help_rows: list[KeyRow] | None = None
        self.title = f"warroom · {env.name}"

    def get_default_screen(self) -> MainScreen:
        # The main screen is the first screen, not pushed over an empty default one that
        # would be laid out and drawn first (and delay the first frame).
        return MainScreen()

    def on_ready(self) -> None:
        # Textual posts Ready once the first frame is written: probes and the parts of the
        # main screen the first frame does without start only then, so nothing delays it.
        self.source.start(self)
        main = self.main_screen()
        if main is not None:
            main.first_frame_shown()
        if not gc.isenabled():
            self.set_timer(1.0, self._collect_garbage_again)

    def _collect_garbage_again(self) -> None:
        # The cockpit command paused the collector for start-up (tui/cockpit.py). What exists
        # now lives as long as the app: frozen, later collections need not scan it again.
        gc.freeze()
        # A refresh's young objects are nearly all freed by reference counting: collecting
        # them every 700 allocations (the default) cost ~1 ms of CPU a second; every 20000,
        # a collection takes a few ms once in a while and less CPU in all.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        gc.enable()

    def on_mount(self) -> None:
        if not self.is_headless:
            # SIGTERM, and SIGHUP when the SSH link drops: a clean exit (journal closed, terminal
            # restored when there is one; `warroom demo` then stops its sandbox), not death mid-frame.
            from tui.exit_signals import exit_on_signals

            with contextlib.suppress(ValueError):  # off the main thread Python sets no handlers
                self._restore_signals = exit_on_signals(self.exit)
        if self.resume:
            from tui.screens.runbook import resume_incident

            resume_incident(self)  # before --runbook opens, so its checklist state is restored
        if self.start_runbook:
            self.call_after_refresh(self.open_runbook, self.start_runbook, self.guided)

    async def on_unmount(self) -> None:
        if self._restore_signals is not None:
            self._restore_signals()
        await self.source.stop()
        if self.incident is not None:
            self.incident.close(self.symptoms.still_seen())

    def _incident_log(self) -> Any:
        from tui.screens.runbook import incident_of

        return incident_of(self)

    def action_close_incident(self) -> None:
        """Ask for a one-line resolution, then close the session's incident in the journal."""
        incident = self.incident
        if incident is None or incident.incident_id is None:
            self.notify("no incident is open: one opens at the first reading that is not ok", title="incident journal")
            return
        from tui.screens.close_incident import CloseIncident

        journal = incident.journal
        found = journal.incident(incident.incident_id) if journal is not None else None
        incident_id = incident.incident_id

        def closed(resolution: str | None) -> None:
            if resolution and incident.incident_id == incident_id:
                incident.close_incident(resolution, self.symptoms.incident_closed())
                self.notify(f"incident #{incident_id} closed: {resolution}", title="incident journal")

        self.push_screen(CloseIncident(incident_id, found.title if found else ""), closed)

    # --- readings ----------------------------------------------------------------------

    def on_probes_updated(self, message: ProbesUpdated) -> None:
        changed = self.store.add(message.results)
        # After this refresh is drawn: the first alarm opens the journal (imports, SQLite).
        self.call_after_refresh(self.symptoms.observe, message.results)
        # The main screen tracks what it missed while covered; the top screen redraws now.
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.store_changed(changed)
        top = self.screen_stack[-1] if self.screen_stack else None  # empty while the app exits
        if top is not None and not isinstance(top, MainScreen) and hasattr(top, "store_changed"):
            top.store_changed(changed)

    # --- navigation --------------------------------------------------------------------

    def main_screen(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    def jump_to_pane(self, name: str) -> None:
        self.post_message(JumpToPane(name))

    def on_jump_to_pane(self, message: JumpToPane) -> None:
        main = self.main_screen()
        if main is None:
            return
        while self.screen is not main:
            self.pop_screen()
        main.action_jump(message.pane_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The Alerts key (tui/screens/alerts.py) exists only where an Alertmanager is configured.
        if action == "open_detail" and parameters == ("alerts",):
            return bool(self.env.alertmanager)
        return True

    def action_open_detail(self, name: str) -> None:
        self.open_detail(name)

    def open_detail(self, name: str) -> None:
        screen = _detail_screens().get(name)
        if screen is not None:
            self.push_screen(screen())

    def open_runbook(self, runbook_id: str, guided: bool = False) -> None:
        """Open a runbook's checklist (or guided mode) in this session's incident."""
        entry = next((e for e in self.runbooks if e.id == runbook_id), None)
        if entry is None:
            known = ", ".join(e.id for e in self.runbooks) or "none found"
            self.notify(f"no runbook {runbook_id!r} (known: {known})", severity="error")
            return
        from tui.screens.runbook import runbook_screen

        screen = runbook_screen(self, entry, guided=guided)
        if screen is not None:
            self.push_screen(screen)

    def on_runbook_sidebar_opened(self, message: RunbookSidebar.Opened) -> None:
        self.open_runbook(message.runbook_id)

    # --- keys --------------------------------------------------------------------------

    def key_rows(self) -> list[KeyRow]:
        """Every key active on the current screen, plus the pane keys, for the help screen."""
        seen: dict[str, KeyRow] = {}
        bindings = [(b.binding, b.node) for b in self.screen.active_bindings.values()]
        if not any(b.id == "pane.details" for b, _ in bindings):
            from widgets.pane import Pane  # imported after the first frame (see MainScreen)

            bindings += [(b, None) for b in Pane.BINDINGS if isinstance(b, Binding)]
        for binding, _node in bindings:
            if not binding.description or binding.system:
                continue
            key = self.get_key_display(binding)
            name = binding.id or binding.action
            if name in seen:
                key = f"{seen[name][0]}, {key}"
            seen[name] = (key, binding.description, name)
        # Grouped by what they belong to (the id's prefix), then by key: 1-6 read in order.
        return sorted(seen.values(), key=lambda row: (row[2].partition(".")[0] if "." in row[2] else "~", row[0]))

    def action_help(self) -> None:
        if any(isinstance(screen, HelpScreen) for screen in self.screen_stack):
            return
        # The help screen is kept (installed) while the keys it lists stay the same: showing a
        # built screen again answers `?` in ~13 ms instead of ~37 ms (measured on a pty).
        rows = self.key_rows()
        if self._help_rows != rows:
            if self.is_screen_installed("help"):
                old = self.get_screen("help")
                self.uninstall_screen("help")
                old.remove()
            self.install_screen(HelpScreen(rows), "help")
            self._help_rows = rows
        self.push_screen("help")


def make_app(
    env: Environment,
    *,
    refresh_s: float | None = None,
    read_only: bool = False,
    source: ProbeSource | None = None,
    runbook_dirs: Iterable[Path] = (),
    keymap: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    history: int = HISTORY,
    runbook: str | None = None,
    guided: bool = False,
    resume: bool = False,
) -> WarroomApp:
    """The cockpit for one environment.

    `source` defaults to live probes of `env` every `refresh_s` seconds (default: the
    environment's own interval); tests pass a `FixedSource`. `clock` gives "now" for the
    ages on screen. `keymap` maps binding ids (see `?`) to keys, e.g. {"app.quit": "ctrl+q"}.
    """
    refresh = refresh_s or (source.refresh_s if source is not None else env.refresh_s)
    app = WarroomApp(
        env,
        source=source or LiveSource(env, refresh_s=refresh),
        refresh_s=refresh,
        read_only=read_only,
        runbooks=find_runbooks(runbook_dirs),
        store=ResultStore(history=history, clock=clock, order=[target.name for _kind, target in targets(env)],
                          groups={target.name: getattr(target, "group", "") for _kind, target in targets(env)}),
        start_runbook=runbook,
        guided=guided,
        resume=resume,
    )
    if keymap:
        app.set_keymap(dict(keymap))
    return app
