"""The header counts problems, not panes: every reading that is not ok, by target (fixed readings).

The live counterparts, on the real sandbox (latency spike, idle in transaction, behind), are in
test_problems_sandbox.py; these pin the words with deterministic readings.
"""

from __future__ import annotations

from typing import Any

from probes.result import ProbeResult
from probes.units import duration
from tests.tui import fixtures
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tui.app import WarroomApp, make_app
from tui.scheduler import FixedSource
from widgets.env_header import EnvHeader
from widgets.pane import Pane

r = fixtures.r


def healthy() -> list[ProbeResult]:
    """One ok reading for every target of the fixture environment."""
    http = [
        r(name, "http", "http", "ok", f"{name}: HTTP 200 in {ms:.0f} ms", ms, status_code=200, latency_ms=ms,
          latency_warn_ms=300.0, latency_fail_ms=1000.0)
        for name, ms in (("api", 30.0), ("payments", 12.0), ("status", 8.0))
    ]
    postgres = [
        r(name, "postgres", probe, "ok", f"{name}: fine", 0.0, total=4, max_connections=100, by_state={"idle": 4}, waiting=0)
        for name in ("primary", "replica")
        for probe in ("connections", "locks", "idle_in_transaction", "long_queries", "slow_statements")
    ]
    others = [
        r("redis", "redis", "ping", "ok", "redis: PONG in 0.3 ms", 0.3),
        r("docker", "docker", "containers", "ok", "docker: 1 container", 0, containers=[]),
    ]
    return [*http, *postgres, *others]


def replaced(results: list[ProbeResult], *changed: ProbeResult) -> list[ProbeResult]:
    keys = {c.key for c in changed}
    return [*(x for x in results if x.key not in keys), *changed]


def app_on(source: FixedSource) -> WarroomApp:
    return make_app(fixtures.environment(), source=source, clock=fixtures.clock)


def header(app: WarroomApp) -> str:
    return app.screen.query_one(EnvHeader).render_text()


def idle_session(idle_s: float) -> dict[str, Any]:
    return {"pid": 1234, "idle_s": idle_s, "xact_age_s": idle_s, "usename": "app", "application_name": "shop",
            "state": "idle in transaction", "query": "SELECT 1"}


async def test_all_ok_only_once_every_target_has_reported() -> None:
    api = [x for x in healthy() if x.target == "api"]
    source = FixedSource(api)
    app = app_on(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        text = header(app)
        assert "waiting for 6" in text and "all ok" not in text, text
        source.push(healthy())
        await pilot.pause()
        text = header(app)
        assert text.endswith("│ all ok") and "waiting" not in text, text


async def test_a_problem_shows_while_other_targets_are_still_waiting() -> None:
    slow = r("api", "http", "http", "fail", "api: slow: 1400 ms (fail at 1000 ms)", 1400.0, status_code=200,
             latency_ms=1400.0, latency_warn_ms=300.0, latency_fail_ms=1000.0)
    app = app_on(FixedSource([slow]))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        assert "1 problem: api slow 1.4 s · waiting for 6" in header(app), header(app)


async def test_one_failing_endpoint_is_one_problem_though_two_panes_show_it() -> None:
    down = r("payments", "http", "http", "fail", "payments: HTTP 503 (expected 200)", 12.0, status_code=503,
             latency_ms=12.0, latency_warn_ms=300.0, latency_fail_ms=1000.0)
    app = app_on(FixedSource(replaced(healthy(), down)))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        panes = {pane.id: pane.state for pane in app.screen.query(Pane)}
        assert panes["services"] == panes["latency"] == "fail"  # two panes...
        assert header(app).endswith("│ 1 problem: payments HTTP 503"), header(app)  # ...one problem
        latency = app.screen.query_one("#latency", Pane)
        assert str(latency.border_subtitle).startswith("worst: payments HTTP 503"), latency.border_subtitle


async def test_a_target_that_is_down_is_one_problem_for_all_its_probes() -> None:
    summary = "primary: timed out after 2s (hung or unreachable?)"
    down = [r("primary", "postgres", p, "error", summary, None, timeout=True)
            for p in ("connections", "locks", "idle_in_transaction", "long_queries", "slow_statements")]
    app = app_on(FixedSource([x for x in healthy() if x.target != "primary"] + down))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        assert header(app).endswith("│ 1 problem: primary timeout"), header(app)


async def test_idle_in_transaction_reaches_the_header_and_the_connections_pane() -> None:
    # Seen in the walk-through: 107 s idle in transaction and the header said `all ok`.
    idle = r("primary", "postgres", "idle_in_transaction", "warn",
             "primary: 1 session(s) idle in transaction; longest 107s (pid 1234)", 1.0, sessions=[idle_session(107.0)])
    slow = r("api", "http", "http", "fail", "api: slow: 1400 ms (fail at 1000 ms)", 1400.0, status_code=200,
             latency_ms=1400.0, latency_warn_ms=300.0, latency_fail_ms=1000.0)
    app = app_on(FixedSource(replaced(healthy(), idle, slow)))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        age = duration(107.0)  # the one unit system's words for it (`107 s`)
        assert header(app).endswith(f"│ 2 problems: api slow 1.4 s; primary idle in transaction {age}"), header(app)
        connections = app.screen.query_one("#connections", Pane)
        assert connections.state == "warn"
        # The culprit's owner on the line, or right below it when the pane is too narrow.
        text = screen_text(app)
        assert f"▲ 1 idle in transaction {age}" in text and "pid 1234, app shop" in text, text


async def test_replication_problems_name_the_replica_and_how_far_behind() -> None:
    # Seen walking replication-lag: the header read "primary 1 replica(s), max lag 33.7 MiB".
    primary = r("primary", "postgres", "replication", "fail", "primary: 1 replica(s), max lag 33.7 MiB", 35332960.0,
                role="primary", replicas=[{"application_name": "replica", "lag_bytes": 35332960, "replay_lag_s": 46.0}],
                missing=["replica-2"], expected=["replica", "replica-2"])
    replica = r("replica", "postgres", "replication", "fail", "replica: replay PAUSED; replay 47 s behind", 46.7,
                role="replica", replay_paused=True, replay_delay_s=46.7)
    app = app_on(FixedSource(replaced(healthy(), primary, replica)))
    async with app.run_test(size=(160, 40)) as pilot:
        await main_screen_settled(pilot)
        text = header(app)
        assert "primary → replica 33.7 MiB behind; primary → replica-2 missing" in text, text
        assert f"replica replay paused, {duration(46.7)} behind" in text, text
        assert "replica(s)" not in text


async def test_backed_up_queues_are_counted_with_the_worst_named() -> None:
    # Seen walking queue-backlog: five queues backed up read "1 problem: redis celery depth 426".
    queues = [{"name": name, "depth": depth, "status": status} for name, depth, status in
              (("celery", 426, "warn"), ("emails", 980, "fail"), ("default", 426, "warn"), ("idle", 0, "ok"))]
    backed_up = r("redis", "redis", "queues", "fail", "redis: celery depth 426; emails depth 980 (+1 more)", 1832.0,
                  queues=queues)
    app = app_on(FixedSource(replaced(healthy(), backed_up)))
    async with app.run_test(size=(160, 40)) as pilot:
        await main_screen_settled(pilot)
        assert header(app).endswith("│ 1 problem: redis 3 queues backed up, worst emails 980 waiting"), header(app)


async def test_latency_subtitle_names_an_endpoint_that_times_out() -> None:
    # A timeout has no latency: the worst p95 of the others must not hide it.
    timeout = r("api", "http", "http", "error", "api: timed out after 2s waiting for the response from 127.0.0.1:58080",
                None, timeout=True)
    source = FixedSource(replaced(healthy(), timeout))
    app = app_on(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        latency = app.screen.query_one("#latency", Pane)
        assert latency.border_subtitle == "worst: api timeout", latency.border_subtitle
        text = screen_text(app)
        assert "api timeout" in text and "no data yet" not in text, text


async def test_latency_subtitle_ranks_a_slow_endpoint_by_its_p95_with_the_slow_samples() -> None:
    base = healthy()
    history = [
        r("api", "http", "http", "fail" if ms >= 1000 else "ok", "api", ms, fixtures.NOW - 10 + i, status_code=200,
          latency_ms=ms, latency_warn_ms=300.0, latency_fail_ms=1000.0)
        for i, ms in enumerate([30.0] * 6 + [1300.0, 1400.0, 1350.0])
    ]
    slow = r("api", "http", "http", "fail", "api: slow: 1300 ms (fail at 1000 ms)", 1300.0, status_code=200,
             latency_ms=1300.0, latency_warn_ms=300.0, latency_fail_ms=1000.0)
    app = app_on(FixedSource(replaced(base, slow), history=history))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        subtitle = str(app.screen.query_one("#latency", Pane).border_subtitle)
        assert subtitle.startswith("worst: api slow 1.3 s, p95 1.") and subtitle.endswith(" s"), subtitle


async def test_header_says_when_a_target_skips_ticks_and_when_warroom_is_behind() -> None:
    slow = r("api", "http", "http", "fail", "api: slow: 1300 ms (fail at 1000 ms)", 1300.0, status_code=200,
             latency_ms=1300.0, latency_warn_ms=300.0, latency_fail_ms=1000.0)
    source = FixedSource(replaced(healthy(), slow))
    # What a LiveSource reports: api's rounds outlast the refresh, redis's too (under its lines).
    source.skipping = {"api": 2.0, "redis": 3.0}  # type: ignore[attr-defined]
    app = app_on(source)
    async with app.run_test(size=(200, 40)) as pilot:
        await main_screen_settled(pilot)
        assert header(app).endswith("│ 1 problem: api slow 1.3 s (read every 2 s) · redis read every 3 s"), header(app)
        # Behind, every target is read less often: the one line says why, without a list.
        source.behind = "behind: a round of 9 targets takes 1.8 s at refresh 1 s"  # type: ignore[attr-defined]
        source.push([slow])
        await pilot.pause()
        assert header(app).endswith("│ 1 problem: api slow 1.3 s · behind: a round of 9 targets takes 1.8 s at refresh 1 s"), header(app)


async def test_the_header_line_on_a_narrow_terminal_starts_with_the_count() -> None:
    app = app_on(FixedSource(fixtures.incident_results(), history=fixtures.history()))
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen_settled(pilot)
        first = screen_text(app).splitlines()[0]
        # The count comes first, the refresh and the clock give way to the problems (seen at
        # 80x24: "4 probl…" beside "every 1s │ last 13:32:46"); the runbook hint stays.
        assert "│ 7 problems: payments HTTP 503; primary" in first and first.rstrip().endswith("r ▶ 5 runbooks"), first
        assert "every" not in first and "last " not in first
