"""A small safe expression language for pass conditions, triggers and action templates.

Parsing and checking live here (what an expression may contain, and the `{{ ... }}` templates
built on it); evaluating a checked tree within its budget lives in runbooks.condition_eval,
whose public names are re-exported from this module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runbooks.condition_eval import (
    CONSTANTS,
    FUNCTIONS,
    MAX_BUILT,
    MAX_INT_BITS,
    MAX_OPS,
    MAX_SECONDS,
    Condition,
    EvalError,
    TooExpensive,
    _shown,
)
from runbooks.condition_metrics import CONTEXT_FUNCTIONS, KEYWORD_FUNCTIONS

__all__ = [
    "CONSTANTS", "FILTERS", "FUNCTIONS", "MAX_BUILT", "MAX_INT_BITS", "MAX_OPS", "MAX_PIDS",
    "MAX_SECONDS", "TEMPLATE", "Condition", "ConditionError", "EvalError", "Field", "NothingToDo",
    "TooExpensive", "compile_condition", "placeholder", "render", "render_text", "template_fields",
]

# Only JSON-like values flow through an expression, and attribute access is mapping lookup,
# so no Python object (and no dunder) is ever reachable from runbook text.
_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Call, ast.List,
    ast.Tuple, ast.GeneratorExp, ast.comprehension, ast.Store, ast.keyword,
)
_MAX_LENGTH = 500
_MAX_DEPTH = 40  # nesting of the expression tree: the evaluator recurses once per level


class ConditionError(ValueError):
    """A condition or template that does not parse or uses something not allowed."""


def compile_condition(text: str) -> Condition:
    """Parse and check an expression; ConditionError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("empty condition")
    if len(text) > _MAX_LENGTH:
        raise ConditionError(f"condition longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"cannot parse {text!r}: {exc.msg} (column {exc.offset})") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ConditionError(f"cannot parse {text!r}: {type(exc).__name__}") from None
    if _depth(tree) > _MAX_DEPTH:
        raise ConditionError(f"{text!r}: nested more than {_MAX_DEPTH} levels deep")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ConditionError(f"{text!r}: {type(node).__name__} is not allowed in a condition")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ConditionError(f"{text!r}: names starting with '_' are not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ConditionError(f"{text!r}: names starting with '_' are not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in (*FUNCTIONS, *CONTEXT_FUNCTIONS):
                known = ", ".join((*FUNCTIONS, *CONTEXT_FUNCTIONS))
                raise ConditionError(f"{text!r}: only these functions may be called: {known}")
            if node.keywords and (node.func.id not in KEYWORD_FUNCTIONS or any(k.arg is None for k in node.keywords)):
                raise ConditionError(f"{text!r}: keyword arguments are not allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, bool, type(None))):
            raise ConditionError(f"{text!r}: unsupported literal {node.value!r}")
        if isinstance(node, ast.comprehension) and (not isinstance(node.target, ast.Name) or node.is_async):
            raise ConditionError(f"{text!r}: a generator must bind one plain name")
    return Condition(text.strip(), tree)


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


# --- templates: {{ expression }} or {{ expression | int }} / {{ expression | name }} -------

TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: '²'.isdigit() is true, int('²') fails
_INT_LIMIT = 2**63  # pids, counts, offsets: a 64-bit signed integer
FILTERS = ("int", "name", "pids")
MAX_PIDS = 1000  # the sessions one action may name: what a step lists, never a whole server
_PID_LIMIT = 2**31  # a backend pid is a PostgreSQL int4


class NothingToDo(EvalError):
    """An action's template found an empty list to act on: the action is refused, not run."""


def _pid(item: Any, source: str) -> int:
    if isinstance(item, str) and _DIGITS.fullmatch(item):
        item = int(item)
    if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < _PID_LIMIT:
        raise EvalError(f"{source}: {_shown(item)} is not a backend pid")
    return item


def _pids(value: Any, source: str) -> str:
    """`{{ rows | pids }}`: the pids a step listed, as `4711, 4712` (for `ARRAY[...]`).

    Takes a list of pids, or of rows / sessions carrying a `pid` or a `pids` list (a mapping
    alone counts as a list of one). Only positive 32-bit integers pass; an empty list refuses
    the action (NothingToDo) instead of filling in an empty array."""
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, (list, tuple)):
        raise EvalError(f"{source}: expected a list of sessions or pids, got {_shown(value)}")
    found: list[int] = []
    for item in items:
        if isinstance(item, Mapping):
            if "pids" not in item and "pid" not in item:
                raise EvalError(f"{source}: a row without `pid` or `pids`: {_shown(item)}")
            inner = item.get("pids") if "pids" in item else [item.get("pid")]
            if inner is None:  # array_agg over no row is NULL: nothing listed there
                continue
            if not isinstance(inner, (list, tuple)):
                raise EvalError(f"{source}: expected a list of pids, got {_shown(inner)}")
            found.extend(_pid(p, source) for p in inner)
        else:
            found.append(_pid(item, source))
        if len(found) > MAX_PIDS:
            raise EvalError(f"{source}: more than {MAX_PIDS} sessions; narrow the step that lists them")
    if not found:
        raise NothingToDo("nothing to do: the previous step found no sessions")
    return ", ".join(str(p) for p in dict.fromkeys(found))




@dataclass(frozen=True, slots=True)
class Field:
    source: str  # the whole "{{ ... }}"
    condition: Condition
    filter: str


def template_fields(text: str) -> list[Field]:
    """Every `{{ ... }}` of a template, parsed and checked (ConditionError when bad)."""
    fields = []
    for match in TEMPLATE.finditer(text):
        expr, _, flt = match.group(1).partition("|")
        flt = flt.strip() or "int"
        if flt not in FILTERS:
            raise ConditionError(f"{match.group(0)}: unknown filter {flt!r} (use int, name or pids)")
        fields.append(Field(match.group(0), compile_condition(expr), flt))
    return fields


def render(text: str, names: Mapping[str, Any]) -> str:
    """Fill a template; every value is validated (int, a safe name, or a list of pids). EvalError
    otherwise (NothingToDo when a `pids` list is empty)."""
    out, last = [], 0
    for match, field in zip(TEMPLATE.finditer(text), template_fields(text), strict=True):
        value = field.condition.evaluate(names)
        if value is None:
            raise EvalError(f"{field.source}: no value yet (has the step it reads run and found it?)")
        if field.filter == "pids":
            rendered = _pids(value, field.source)
        elif field.filter == "int":
            if isinstance(value, str) and _DIGITS.fullmatch(value):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise EvalError(f"{field.source}: expected an integer, got {_shown(value)}")
            if not -_INT_LIMIT <= value < _INT_LIMIT:
                raise EvalError(f"{field.source}: {_shown(value)} is out of range for a 64-bit integer")
            rendered = str(value)
        else:
            # Lists and mappings are never names; str() of a huge number raises.
            small = isinstance(value, float) or (isinstance(value, int) and -_INT_LIMIT <= value < _INT_LIMIT)
            rendered = value if isinstance(value, str) else str(value) if small else ""
            if not _SAFE_NAME.fullmatch(rendered):
                raise EvalError(f"{field.source}: {_shown(value)} is not a plain name (letters, digits, _ . : -)")
        out.append(text[last:match.start()] + rendered)
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def placeholder(text: str) -> str:
    """The template with every field replaced by 0, for classifying it before it is filled."""
    return TEMPLATE.sub("0", text)


def render_text(text: str, names: Mapping[str, Any]) -> str:
    """Fill a display template (a step's `report`); "" when any value is missing, because a
    report about a blocker that is not there ("blocker pid ?") would only mislead.
    TooExpensive when a field goes over its budget."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        try:
            value = compile_condition(match.group(1).partition("|")[0]).evaluate(names)
            shown = "" if value is None else str(value)
        except TooExpensive:
            raise  # the step is an error, not a quietly shorter summary
        except (ConditionError, EvalError, ValueError):  # ValueError: str() of a huge number
            value = shown = None
        missing = missing or shown is None or value is None
        return shown or ""

    filled = TEMPLATE.sub(fill, text)
    return "" if missing else filled
