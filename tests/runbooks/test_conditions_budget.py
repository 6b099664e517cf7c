"""Conditions, triggers and templates cannot hang or crash a run; a step's timeout has a ceiling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from probes.config import Environment, PostgresTarget
from probes.result import ProbeResult, Status
from runbooks.conditions import (
    MAX_OPS,
    ConditionError,
    EvalError,
    TooExpensive,
    compile_condition,
    render,
    render_text,
)
from runbooks.loader import MAX_STEP_TIMEOUT_S, parse_runbook
from runbooks.model import Runbook, Trigger, triggered
from runbooks.runner import Outcome, RunContext, StepOutcome, run_step
from tests.conftest import SandboxHandle

# Generous: the budget is 50 ms of CPU; this only proves nothing runs for seconds.
WALL_BOUND_S = 1.0
DATA = {"data": {"items": list(range(1000)), "digits": "9" * 4000, "sup": "²", "rows": [{"a": i} for i in range(200)]},
        "value": 3}

EXPENSIVE = [
    "any(a == b == c for a in data.items for b in data.items for c in data.items)",  # 10**9 iterations
    "sum(1 for a in data.items for b in data.items)",  # nested generators count
    "sum(len(str(data.items)) for x in data.items)",  # builds 5 MB of text
    "int(data.digits) * int(data.digits)",  # a number of 26,000 bits
    "all(x.a >= 0 for x in data.rows for y in data.items)",
]
FAILING = [
    "int(data.sup)",  # ValueError in Python: a plain evaluation error here
    "round(5, -10000000)",  # would compute 10**10**7
    "round(value, 'x')",
    "sum((x for x in [[1]]), [])",  # list concatenation is quadratic
    "1 / 0", "int(float('inf'))", "int(float('nan'))", "max([])", "data[[1]]", "data.items[0] in 5",
    "'x' * 1000000000", "value < 'a'", "float('1e999') * 0 < int(float('1e999'))",
]
REJECTED = ["'x' * 10**9", "10**10**10", "range(10**9)", "-" * 200 + "1", "not " * 60 + "value", "value\x00"]


@pytest.mark.parametrize("text", EXPENSIVE)
def test_expensive_conditions_stop_at_the_budget(text: str) -> None:
    condition = compile_condition(text)
    started = time.perf_counter()
    with pytest.raises(TooExpensive, match="condition too expensive"):
        condition.evaluate(DATA)
    assert time.perf_counter() - started < WALL_BOUND_S


@pytest.mark.parametrize("text", FAILING)
def test_failing_evaluations_are_eval_errors_naming_no_traceback(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(EvalError):
        compile_condition(text).evaluate(DATA)
    assert time.perf_counter() - started < WALL_BOUND_S


@pytest.mark.parametrize("text", REJECTED)
def test_unsafe_or_absurd_conditions_do_not_load(text: str) -> None:
    with pytest.raises(ConditionError):
        compile_condition(text)


def test_a_large_legitimate_condition_fits_the_budget() -> None:
    # 1000 items (a capped Redis reply) with a comparison each is well inside MAX_OPS.
    assert compile_condition("all(x >= 0 for x in data.items) and max(x for x in data.items) == 999").test(DATA)
    assert MAX_OPS >= 10 * len(DATA["data"]["items"])


def test_templates_convert_or_refuse_never_raise_anything_else() -> None:
    names = {"steps": {"x": {"value": "²", "data": {"n": "0042", "big": 2**70, "huge": "1" * 30, "list": [1]}}}}
    for field, why in [("steps.x.value", "expected an integer"), ("steps.x.data.big", "64-bit"),
                       ("steps.x.data.huge", "expected an integer"), ("steps.x.data.list", "expected an integer")]:
        with pytest.raises(EvalError, match=why):
            render(f"SELECT {{{{ {field} }}}}", names)
    assert render("SELECT {{ steps.x.data.n }}", names) == "SELECT 42"
    with pytest.raises(EvalError, match="not a plain name"):
        render("DEL {{ steps.x.data.list | name }}", names)
    with pytest.raises(TooExpensive):
        render("SELECT {{ sum(1 for a in steps.x.data.huge for b in steps.x.data.huge for c in steps.x.data.huge for d in steps.x.data.huge) }}", names)
    assert render_text("v={{ steps.x.value }}", names) == "v=²"  # a report shows it as it is
    assert render_text("v={{ int(steps.x.value) }}", names) == ""  # cannot convert: left out
    with pytest.raises(TooExpensive):
        render_text("{{ sum(1 for a in steps.x.data.huge for b in steps.x.data.huge for c in steps.x.data.huge for d in steps.x.data.huge) }}", names)


# --- in a run: an error outcome, never a traceback ----------------------------------------------


def _runbook(block: str) -> Runbook:
    text = f"---\nid: budget\ntitle: budget\nseverity: low\n---\n# b\n\n1. **Read.**\n{block}"
    rb, problems = parse_runbook(text, "budget.md")
    assert rb is not None, problems
    return rb


async def test_a_template_that_cannot_convert_is_a_step_error() -> None:
    # Nothing listens on the target: the command is filled (and refused) before any connection.
    env = Environment("lab", postgres=(PostgresTarget("primary", "postgresql://u@127.0.0.1:9/db"),))
    rb = _runbook("   ```sql target=primary\n   SELECT {{ steps.find.value }}\n   ```\n")
    context = RunContext(rb.id)
    context.outcomes["find"] = StepOutcome("find", Outcome.PASS, "", value="²")
    outcome = await run_step(rb.steps[0], env, context=context)
    assert outcome.status == Outcome.ERROR
    assert outcome.summary == "cannot fill the command: {{ steps.find.value }}: expected an integer, got '²'"


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ('pass="any(a == b == c for a in data for b in data for c in data)"', "condition too expensive"),
        ('report="{{ sum(1 for a in data for b in data for c in data) }}"', "condition too expensive"),
        ('pass="int(data.maxmemory_policy) > 0"', "invalid literal for int()"),
    ],
)
async def test_over_budget_or_failing_conditions_are_step_errors(sandbox: SandboxHandle, settings: str, words: str) -> None:
    target = sandbox.env.redis[0].name
    rb = _runbook(f"   ```redis target={target} {settings}\n   CONFIG GET *\n   ```\n")
    started = time.perf_counter()
    outcome = await run_step(rb.steps[0], sandbox.env)
    assert outcome.status == Outcome.ERROR and words in outcome.summary, outcome.summary
    assert time.perf_counter() - started < 5.0


def test_triggers_over_budget_do_not_suggest_and_stay_short() -> None:
    slow = compile_condition("any(a == b == c for a in data.items for b in data.items for c in data.items)")
    fine = compile_condition("value > 2")
    rb = Runbook("r", "r", "low", Path("r.md"), triggers=(Trigger("locks", slow), Trigger("locks", fine)))
    reading = ProbeResult("primary", "postgres", "locks", Status.WARN, "3 blocked", 3.0, DATA["data"])
    started = time.perf_counter()
    assert triggered(rb, [reading]) == ["primary locks: value > 2"]
    assert time.perf_counter() - started < WALL_BOUND_S


# --- a step's timeout has a documented ceiling ---------------------------------------------------


@pytest.mark.parametrize("value", ["0.5", "60", "60.0", "1e1"])
def test_timeouts_up_to_the_ceiling_load(value: str) -> None:
    rb = _runbook(f"   ```redis target=cache timeout={value}\n   PING\n   ```\n")
    assert rb.steps[0].timeout == float(value)


@pytest.mark.parametrize("value", ["61", "3600", "1e400", "inf", "nan", "0", "-1", "soon", "true"])
def test_timeouts_over_the_ceiling_or_not_seconds_are_load_errors(value: str) -> None:
    text = f"---\nid: t\ntitle: t\nseverity: low\n---\n# t\n\n1. **Read.**\n   ```redis target=cache timeout={value}\n   PING\n   ```\n"
    rb, problems = parse_runbook(text, "t.md")
    assert rb is None
    assert [str(p) for p in problems] == [
        f"t.md:9: timeout: expected seconds above 0 and at most {MAX_STEP_TIMEOUT_S:g} (the ceiling), got {value!r}"
    ]


def test_probe_block_timeout_true_is_not_one_second() -> None:
    text = "---\nid: t\ntitle: t\nseverity: low\n---\n1. **Read.**\n   ```probe\n   target: primary\n   probe: locks\n   timeout: true\n   ```\n"
    _, problems = parse_runbook(text, "t.md")
    assert len(problems) == 1 and "timeout: expected seconds" in str(problems[0]) and str(problems[0]).startswith("t.md:7:")


def test_the_ceiling_is_documented() -> None:
    from runbooks.loader import BUNDLED_DIR

    assert f"at most {MAX_STEP_TIMEOUT_S:g}" in (BUNDLED_DIR / "FORMAT.md").read_text()
