"""The condition language evaluates over results and refuses anything that is not an expression."""

from __future__ import annotations

import pytest

from runbooks.conditions import ConditionError, EvalError, compile_condition, render, render_text

RESULT = {
    "status": "fail",
    "value": 3.0,
    "rows": 2,
    "data": {
        "chains": [{"blocker_pid": 4242, "state": "idle in transaction", "blocked": [1, 2, 3]}],
        "by-state": {"active": 4},
        "sessions": [{"pid": 1, "wait_s": 2.0}, {"pid": 2, "wait_s": 40.0}],
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("value > 2", True),
        ("value > 2 and status == 'ok'", False),
        ("not (rows == 0)", True),
        ("data.chains[0].blocker_pid == 4242", True),
        ("data['chains'][0]['state'] == 'idle in transaction'", True),
        ("len(data.chains[0].blocked) == 3", True),
        ("any(s.wait_s > 30 for s in data.sessions)", True),
        ("all(s.wait_s > 30 for s in data.sessions)", False),
        ("max(s.wait_s for s in data.sessions) == 40.0", True),
        ("status in ['warn', 'fail']", True),
        ("data.by_state.active == 4", True),  # "_" may stand for "-" in keys
        ("data.chains[5].blocker_pid == None", True),  # missing index is None, not a crash
        ("data.nothing > 1", False),  # ordering with None is false
        ("len(data.nothing) == 0", True),
        ("value / 3 == 1", True),
        ("lower('ABC') == 'abc'", True),
    ],
)
def test_evaluates(text: str, expected: bool) -> None:
    assert compile_condition(text).test(RESULT) is expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "data.__class__",
        "value.__class__.__mro__",
        "(lambda: 1)()",
        "[x for x in data]",
        "value ** 1000000",
        "exec('1')",
        "a := 1",
        "data.keys()",
        "f'{value}'",
        "value if True else 0",
        "",
        "value >",
    ],
)
def test_rejects_unsafe_or_bad(text: str) -> None:
    with pytest.raises(ConditionError):
        compile_condition(text)


def test_type_errors_are_eval_errors() -> None:
    with pytest.raises(EvalError):
        compile_condition("status > 3").evaluate(RESULT)
    with pytest.raises(EvalError):
        compile_condition("'a' * 100000000").evaluate(RESULT)


def test_templates_validate_values() -> None:
    names = {"steps": {"find-blocker": {"data": RESULT["data"]}}}
    sql = "select pg_terminate_backend({{ steps.find_blocker.data.chains[0].blocker_pid }})"
    assert render(sql, names) == "select pg_terminate_backend(4242)"
    with pytest.raises(EvalError, match="expected an integer"):
        render("{{ steps.find_blocker.data.chains[0].state }}", names)
    with pytest.raises(EvalError, match="no value yet"):
        render("{{ steps.other.value }}", names)
    bad = {"steps": {"x": {"value": "1); drop table t; --"}}}
    with pytest.raises(EvalError):
        render("select {{ steps.x.value }}", bad)
    with pytest.raises(EvalError, match="not a plain name"):
        render("DEL {{ steps.x.value | name }}", bad)
    assert render("DEL {{ steps.x.value | name }}", {"steps": {"x": {"value": "queue:low"}}}) == "DEL queue:low"
    with pytest.raises(ConditionError):
        render("{{ steps.x.value | shell }}", bad)


def test_report_text_left_out_when_values_missing() -> None:
    assert render_text("pid {{ data.chains[0].blocker_pid }}", RESULT) == "pid 4242"
    assert render_text("pid {{ data.chains[3].blocker_pid }}", RESULT) == ""
