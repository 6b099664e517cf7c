"""Property tests: whatever a runbook, a condition or a template holds, the loader answers with
problems naming the file and a line, a condition with a value or an EvalError (within its
budget), a template with text or an EvalError; never any other exception."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runbooks.conditions import (
    FILTERS,
    FUNCTIONS,
    ConditionError,
    EvalError,
    TooExpensive,
    compile_condition,
    render,
    render_text,
)
from runbooks.loader import load_file, parse_runbook
from runbooks.model import Problem

# Fast and deterministic enough for every run: a few hundred examples, no per-example deadline
# (the shared test machine has two cores), and no database of past failures in the tree.
FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
WALL_BOUND_S = 1.0  # the budget is 50 ms of CPU; this only proves nothing runs for long

# --- JSON-like data, as results and earlier steps hand it to conditions ------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["²", "42", "0042", "-1", "ok", "fail", "1e999", "nan", " 7 ", "٣", "9" * 5000]),
    st.just(list(range(3000))),  # a big reply: nested generators over it must stop at the budget
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.sampled_from(["a", "b", "n", "rows", "x-y", "value"]) | st.text(max_size=5), inner, max_size=6)),
    max_leaves=30,
)
names = st.fixed_dictionaries(
    {"status": st.sampled_from(["ok", "warn", "fail", "error"]), "value": json_like, "data": json_like,
     "steps": st.dictionaries(st.sampled_from(["find", "find-blocker", "x"]), st.fixed_dictionaries({"value": json_like, "data": json_like}), max_size=3)}
)

# --- expressions from the language's grammar, with some of what it must refuse -----------------

atoms = st.one_of(
    st.sampled_from(["value", "status", "data", "data.a", "data.rows", "data['x-y']", "data.x_y", "data.rows[0]",
                     "data.a[-1]", "steps.find.value", "steps.find_blocker.data", "True", "None", "null", "nothing"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["-10000000", "10000000", "2**64"]),
    st.floats(allow_nan=False).map(repr), st.text(max_size=8).map(repr),
)


def _compose(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.tuples(children, children)
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<<", "|"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is"]), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(children, st.sampled_from(["and", "or"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"not {c}"), children.map(lambda c: f"-{c}"),
        st.tuples(st.sampled_from([*FUNCTIONS, "range", "open", "__import__"]), st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(st.sampled_from(["any", "all", "sum", "max", "min", "len", ""]), children, children, st.booleans()).map(
            lambda t: f"{t[0]}({t[1]} for s in {t[2]}{' for u in ' + t[2] if t[3] else ''} if s)"),
        pairs.map(lambda t: f"{t[0]}[{t[1]}]"), pairs.map(lambda t: f"[{t[0]}, {t[1]}]"),
        children.map(lambda c: f"{c}.__class__"), children.map(lambda c: f"{c}[1:2]"),
    )


expressions = st.recursive(atoms, _compose, max_leaves=12) | st.text(max_size=40)


# Found by hand before these tests existed; kept as fixed examples next to the random ones.
BIG = {"status": "ok", "value": 5, "data": list(range(3000)), "steps": {}}


@FAST
@given(expressions, names)
@example("round(value, -10000000)", BIG)  # 10**10**7: seconds of CPU
@example("sum(1 for s in data for u in data for v in data if v < 0)", BIG)  # 2.7e10 iterations, nothing kept
@example("-" * 300 + "value", BIG)  # recursion
def test_conditions_give_a_value_or_an_eval_error_within_budget(text: str, scope: dict[str, Any]) -> None:
    try:
        condition = compile_condition(text)
    except ConditionError as exc:
        assert str(exc)
        return
    started = time.perf_counter()
    try:
        condition.test(scope)
    except EvalError as exc:
        assert str(exc)
    assert time.perf_counter() - started < WALL_BOUND_S


@FAST
@given(st.text(max_size=600))
def test_any_text_compiles_or_is_a_condition_error(text: str) -> None:
    try:
        compile_condition(text)
    except ConditionError:
        pass


# --- templates --------------------------------------------------------------------------------

field_expressions = st.sampled_from(["steps.find.value", "steps.x.value", "steps.find.data", "value", "data"]) | expressions
fields = st.tuples(field_expressions, st.sampled_from([*FILTERS, "", "shell", "int | name", " name "])).map(
    lambda t: "{{ " + t[0] + (f" | {t[1]}" if t[1] else "") + " }}"
)
templates = st.lists(st.one_of(fields, st.text(max_size=10), st.just("{{"), st.just("}}")), max_size=4).map("".join)


@FAST
@given(templates, names)
@example("SELECT {{ steps.find.value }}", {"steps": {"find": {"value": "²"}}})  # '²'.isdigit(), int('²') fails
@example("{{ value | name }}", {"value": 10**5000})  # str() of it raises
@example("pid {{ sum(1 for s in data for u in data for v in data if v < 0) }}", BIG)
def test_templates_fill_or_refuse_with_an_eval_error(text: str, scope: dict[str, Any]) -> None:
    started = time.perf_counter()
    try:
        assert isinstance(render(text, scope), str)
    except (EvalError, ConditionError) as exc:
        assert str(exc)
    try:
        assert isinstance(render_text(text, scope), str)
    except TooExpensive:
        pass
    assert time.perf_counter() - started < 2 * WALL_BOUND_S


# --- runbooks ------------------------------------------------------------------------------------

yaml_values = st.one_of(
    st.sampled_from(["lock-contention", "Lock contention", "high", "low", "urgent", "[postgres, locks]", "[1, [2]]", "{a: 1}",
                     "2024-13-45", "2024-01-01", "!!python/object:os.system ls", "&a [*a]", "'unclosed", "0x1F", "~", "yes",
                     "[{probe: locks, when: 'value > 0'}]", "[{probe: [1], when: x}]", "[{probe: locks, when: 'value >'}]",
                     "[{target: primary, probe: nope, when: 'True'}]", "{probe: locks}", "- a\n  - b"]),
    st.text(max_size=15),
)
front_keys = st.sampled_from(["id", "title", "severity", "tags", "triggers", "owner", "'id'", '"tags"', "id id", ""])
front_matter = st.lists(st.tuples(front_keys, yaml_values), max_size=7).map(
    lambda kv: "---\n" + "".join(f"{k}: {v}\n" for k, v in kv) + "---\n"
)
commands = {
    "sql": ["SELECT 1", "select pg_terminate_backend({{ steps.find.value }})", "select 1; select 2", "select 'open",
            "delete from t", "SELECT $$", "explain analyze select 1", "select \x00", "with x as (delete from t) select 1"],
    "redis": ["PING", "SCAN 0 COUNT 10 COUNT 100000", "SCAN 0", "KEYS *", "--bigkeys", "redis-cli -a pw INFO",
              "CONFIG GET *", "LRANGE q 0 {{ steps.find.value }}", "DEL {{ steps.x.value | name }}", "'unclosed",
              "PING\nPING", "XINFO STREAM s FULL COUNT 0", "ZRANGE z 0 -1", ""],
    "docker": ["ps", "inspect api", "DOCKER RESTART api", "rm api", "logs api --tail ²", "exec api sh", "restart {{ steps.x.value | name }}", ""],
    "probe": ["target: primary\nprobe: locks\npass: \"value == 0\"", "probe: nope", "[1, 2]", "target: x\nprobe: locks\ntimeout: 1e400",
              "id: a\nprobe: locks\ntarget: p\non_fail: goto nowhere", "date: 2024-13-45", "target: [1]\nprobe: {a: 1}", "{{"],
    "bash": ["redis-cli --bigkeys"],
}
settings_words = st.sampled_from([
    "target=primary", "target=cache", "id=find", "id=find", "pass=\"value == 0\"", "pass=\"value ==\"", "pass='x' ",
    "on_fail=\"goto resolution\"", "on_pass=stop", "on_fail=\"goto nowhere\"", "on_pass=\"jump\"", "timeout=5", "timeout=61",
    "timeout=nan", "timeout=true", "report=\"pid {{ value }}\"", "report=\"{{ | }}\"", "bogus=1", "novalue", "\"unclosed",
])
@st.composite
def step_blocks(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(commands)))
    words = " ".join(draw(st.lists(settings_words, max_size=4)))
    command = draw(st.sampled_from(commands[kind]) | st.text(max_size=20))
    body = "\n".join(f"   {line}" for line in command.splitlines()) or "   "
    return f"   ```{kind} {words}\n{body}\n   ```\n"


@st.composite
def runbook_texts(draw: st.DrawFn) -> str:
    parts = [draw(front_matter | st.sampled_from(["", "---\n", "---\nid: x\n", "...\n"]))]
    for number in range(1, draw(st.integers(min_value=0, max_value=5)) + 1):
        parts.append(draw(st.sampled_from(["", "## Resolution\n", "# Title\n", "- bullet\n", "text\n", "<!-- step: id=x on_fail=stop -->\n"])))
        parts.append(f"{draw(st.sampled_from([number, 1]))}. **Step {number}.** {draw(st.text(max_size=10))}\n")
        if draw(st.booleans()):
            parts.append(draw(step_blocks()))
        if draw(st.booleans()):
            parts.append("   <!-- step: " + " ".join(draw(st.lists(settings_words, max_size=3))) + " -->\n")
    if draw(st.booleans()):
        parts.append(draw(step_blocks()))  # a runnable block outside any step
    text = "".join(parts)
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # some plain garbage
        text = draw(st.text(max_size=200))
    return text


def _named(problems: list[Problem], path: Path, text: str) -> None:
    assert problems, "a runbook that does not load says why"
    last = max(1, len(text.splitlines()) + 1)
    for problem in problems:
        assert problem.path == path and problem.message
        assert isinstance(problem.line, int) and 1 <= problem.line <= last, problem
        assert str(problem).startswith(f"{path}:{problem.line}: ")


@FAST
@given(runbook_texts())
def test_any_runbook_loads_or_names_file_and_line(text: str) -> None:
    path = Path("runbooks/prop.md")
    runbook, problems = parse_runbook(text, path)
    if runbook is None:
        _named(problems, path, text)
    else:
        assert problems == [] and runbook.steps is not None


@FAST
@given(st.binary(max_size=300), st.binary(max_size=40))
def test_any_bytes_load_or_name_file_and_line(tmp_path_factory: Any, head: bytes, tail: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "garbage.md"
    raw = b"---\nid: g\ntitle: g\nseverity: low\n---\n1. **Look.**\n" + head + b"\n" + tail
    path.write_bytes(raw)
    runbook, problems = load_file(path)
    if runbook is None:
        _named(problems, path, raw.decode("utf-8", "replace"))
