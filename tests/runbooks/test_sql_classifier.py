"""The SQL classifier fails closed: attack corpus, diagnostic corpus, bundled runbooks, and
libpg_query (pglast, GPL: a test oracle only) as a second reader of every statement."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbooks.classify import SqlSyntaxError, classify_sql
from runbooks.sql_allowlist import FUNCTIONS, OPERATORS, SYNTAX_FUNCTIONS, TYPE_KEYWORDS, TYPES
from tests.runbooks.sql_corpus import ATTACKS, READS

pglast = pytest.importorskip("pglast")  # in the test extra; CI installs it
from pglast.parser import ParseError, parse_sql_json  # noqa: E402


def test_corpora_are_big_enough() -> None:
    assert len(ATTACKS) >= 80
    assert len(READS) >= 60


@pytest.mark.parametrize(("sql", "what"), ATTACKS, ids=[w for _, w in ATTACKS])
def test_attack_is_an_action(sql: str, what: str) -> None:
    verdict = classify_sql(sql)
    assert verdict.verdict == "action", f"{what}: {verdict}"
    assert verdict.reason


@pytest.mark.parametrize("sql", READS)
def test_diagnostic_stays_a_read(sql: str) -> None:
    verdict = classify_sql(sql)
    assert verdict.read_only, verdict.reason


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ('select U&"pg\\005fterminate_backend"(1)', "pg_terminate_backend"),
        ("select public.kill_idle(pid) from pg_stat_activity", "public.kill_idle"),
        ("select 'a\\' , pg_terminate_backend(1), ''", "standard_conforming_strings"),
        ("select rolpassword from pg_authid", "password hashes"),
        ("select 'x'::public.mytype", "public.mytype"),
        ("select 1 === 2", "==="),
        ("select * from t for update", "row locks"),
        ("select * into t2 from t", "INTO"),
        ("explain analyze select 1", "EXPLAIN ANALYZE"),
    ],
)
def test_reason_names_what_was_not_understood(sql: str, needle: str) -> None:
    assert needle in classify_sql(sql).reason


def test_bundled_runbooks_sql_reads_stay_reads() -> None:
    """Every bundled `sql` step is a read unless it is one of the runbooks' remediations."""
    from runbooks.loader import load_runbooks

    remediations = {"pg_terminate_backend", "pg_cancel_backend", "pg_wal_replay_resume"}
    runbooks, problems = load_runbooks([])
    assert not problems
    reads = actions = 0
    for runbook in runbooks:
        for step in runbook.steps:
            if step.block != "sql":
                continue
            assert step.classification is not None
            if any(name in step.command for name in remediations):
                assert step.kind == "action", (runbook.id, step.id)
                actions += 1
            else:
                assert step.classification.read_only, (runbook.id, step.id, step.classification.reason)
                reads += 1
    assert reads >= 6 and actions >= 5


def test_probe_statements_are_reads() -> None:
    from probes import postgres_sql

    statements = [v for k, v in vars(postgres_sql).items() if k.isupper() and isinstance(v, str) and "select" in v.lower()]
    assert statements
    for sql in (s.replace("{schema}", "public") for s in statements):
        assert classify_sql(sql).read_only, (sql[:80], classify_sql(sql).reason)


@pytest.mark.parametrize("sql", ["select 'open", "select 1 /* open", 'select "open', "select $a$ open", "", " ; "])
def test_unreadable_sql_is_a_syntax_error(sql: str) -> None:
    with pytest.raises(SqlSyntaxError):
        classify_sql(sql)


def test_allow_list_entries_say_why() -> None:
    assert all(isinstance(why, str) and why for why in FUNCTIONS.values())
    assert SYNTAX_FUNCTIONS <= set(FUNCTIONS)
    assert TYPE_KEYWORDS <= TYPES


# --- libpg_query as a second reader ---------------------------------------------------------


def _nodes(tree: Any, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == kind and isinstance(value, dict):
                    found.append(value)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [item["String"]["sval"] for item in items if "String" in item]


def _explicit_calls(sql: str, tree: Any) -> set[str]:
    """Function calls as written, by libpg_query. Calls the grammar itself makes for syntax
    (`AT TIME ZONE` -> timezone, `SIMILAR TO` -> similar_to_escape, `TRIM(...)` -> btrim) are
    pg_catalog-qualified at a location where the text does not say pg_catalog: not compared."""
    calls = set()
    for call in _nodes(tree, "FuncCall"):
        names = _names(call["funcname"])
        written = sql.encode()[call.get("location", 0) :].decode(errors="replace").lower()
        if call.get("funcformat") == "COERCE_SQL_SYNTAX":
            continue
        if names[0] == "pg_catalog" and not written.lstrip('"').startswith("pg_catalog"):
            continue
        if names[0] == "pg_catalog":
            names = names[1:]
        calls.add(".".join(names))
    return calls


def _oracle_disagrees(sql: str) -> str | None:
    """Why libpg_query's reading contradicts a `read` verdict, or None."""
    try:
        verdict = classify_sql(sql)
    except SqlSyntaxError:
        return None  # not run at all: the loader refuses the runbook
    if not verdict.read_only:
        return None
    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError:
        return None  # PostgreSQL's grammar rejects it: the server would run nothing
    for entry in tree["stmts"]:
        stmt = entry["stmt"]
        kind = next(iter(stmt))
        if kind not in ("SelectStmt", "ExplainStmt", "VariableShowStmt"):
            return f"a {kind} read as a read"
    missed = _explicit_calls(sql, tree) - set(verdict.functions)
    if missed:
        return f"calls {missed} that the classifier did not see"
    for kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "IntoClause", "LockingClause"):
        if _nodes(tree, kind):
            return f"{kind} inside a read"
    for cast in _nodes(tree, "TypeCast"):
        names = _names(cast["typeName"]["names"])
        if names[-1] not in TYPES:
            return f"cast to {names}"
    for expr in _nodes(tree, "A_Expr"):
        if expr.get("kind", "AEXPR_OP") in ("AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_OP_ALL"):
            names = _names(expr.get("name", []))
            if len(names) != 1 or names[0] not in OPERATORS:
                return f"operator {names}"
    return None


@pytest.mark.parametrize("sql", [s for s, _ in ATTACKS] + READS)
def test_libpg_query_agrees_on_the_corpora(sql: str) -> None:
    assert _oracle_disagrees(sql) is None


def test_libpg_query_sees_the_corpus_calls_we_see() -> None:
    """The oracle itself can fail: it finds the calls of the attack corpus."""
    tree = json.loads(parse_sql_json('select U&"pg\\005fterminate_backend"(1), public.kill_idle(2)'))
    assert _explicit_calls("", tree) >= {"pg_terminate_backend", "public.kill_idle"}


_NAMES = st.sampled_from([
    "now", "count", "pg_terminate_backend", "pg_catalog.pg_cancel_backend", "public.kill_idle",
    '"pg_terminate_backend"', 'U&"pg\\005fterminate_backend"', "left", "coalesce", '"coalesce"',
    "pg_sleep", "current_setting", "pg_blocking_pids", "query_to_xml", "pg_promote",
])
_ATOMS = st.sampled_from([
    "1", "pid", "'x'", "E'\\''", "$$ ) , pg_terminate_backend(1) $$", "'a\\'", "$€$ x $€$",
    "null", "now()", "interval '1 min'", "'1'::int", "x.y", "$1",
])
_GLUE = st.sampled_from([" ", "\n", "/* c */", " -- c\n", "\t", "/* /* n */ */"])


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(_ATOMS)
    name = draw(_NAMES)
    args = [draw(_expressions(depth + 1)) for _ in range(draw(st.integers(0, 2)))]
    glue = draw(_GLUE)
    form = draw(st.sampled_from(["call", "op", "cast", "case", "sub"]))
    if form == "call":
        return f"{name}{glue}({', '.join(args)})"
    if form == "op":
        op = draw(st.sampled_from(["+", "=", "||", "===", "operator(pg_catalog.+)"]))
        return f"{draw(_expressions(depth + 1))} {op} {name}({', '.join(args)})"
    if form == "cast":
        target = draw(st.sampled_from(["int", "text", "public.t", '"integer"']))
        return f"{name}({', '.join(args)})::{target}"
    if form == "case":
        return f"case when {draw(_expressions(depth + 1))} then {name}({', '.join(args)}) end"
    return f"(select {name}({', '.join(args)}))"


@st.composite
def _statements(draw: st.DrawFn) -> str:
    cols = ", ".join(draw(_expressions()) for _ in range(draw(st.integers(1, 3))))
    source = draw(st.sampled_from([
        "", " from pg_stat_activity", " from pg_stat_activity a(x)", " from generate_series(1, 2) g(i)",
        " from pg_stat_activity, lateral pg_terminate_backend(pid) t", " from pg_stat_activity pg_terminate_backend(pid)",
    ]))
    where = draw(st.sampled_from(["", " where " + draw(_expressions())]))
    return f"select {cols}{source}{where}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_statements())
def test_libpg_query_agrees_on_generated_statements(sql: str) -> None:
    assert _oracle_disagrees(sql) is None, sql


def test_allow_listed_names_are_pg_catalog_functions_and_types(sandbox) -> None:  # noqa: ANN001
    """An allow-listed name that PostgreSQL does not have in pg_catalog would resolve to a
    site's own function of that name: every entry must exist there (syntax excepted)."""
    import psycopg

    with psycopg.connect(sandbox.env.postgres_named("primary").dsn) as conn:
        functions = {r[0] for r in conn.execute(
            "SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace")}
        types = {r[0] for r in conn.execute(
            "SELECT typname FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace")}
    assert set(FUNCTIONS) - SYNTAX_FUNCTIONS - functions == set()
    assert TYPES - TYPE_KEYWORDS - types == set()
