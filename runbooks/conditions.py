"""A small safe expression language for pass conditions, triggers and action templates."""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from probes import units
from runbooks.condition_metrics import CONTEXT_FUNCTIONS, KEYWORD_FUNCTIONS

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
# The budget of one evaluation (a pass, a trigger's `when`, one template field). Conditions
# run on the cockpit's event loop, so none may take long: 20,000 node evaluations (generator
# iterations included) take 15-30 ms on a small VM; the CPU-time limit is the backstop for a
# slow machine. Sizes are capped so that no single operation can allocate or run for long either.
MAX_OPS = 20_000
MAX_SECONDS = 0.05
MAX_INT_BITS = 4096  # any count, pid or byte size fits easily; str() of it stays legal
MAX_BUILT = 1_000_000  # characters / list items an evaluation may build in all
_CLOCK_EVERY = 32  # reading the CPU clock costs about one node evaluation


class ConditionError(ValueError):
    """A condition or template that does not parse or uses something not allowed."""


class EvalError(ValueError):
    """A condition that parsed but could not be evaluated on this result."""


class TooExpensive(EvalError):
    """An evaluation that went over its budget (operations, CPU time or size)."""


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _len(value: Any) -> int:
    return 0 if value is None else len(value)


def _round(value: Any, ndigits: Any = None) -> Any:
    # round(5, -10**7) computes 10**10**7: seconds of CPU for one call.
    if ndigits is not None and (isinstance(ndigits, bool) or not isinstance(ndigits, int) or abs(ndigits) > 20):
        raise EvalError(f"round: digits must be an integer from -20 to 20, got {_shown(ndigits)}")
    return round(value) if ndigits is None else round(value, ndigits)


def _sum(values: Any, start: Any = 0) -> Any:
    # sum(lists, []) copies quadratically; only numbers are summed.
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise EvalError(f"sum: the start must be a number, got {_shown(start)}")
    return sum(values, start)


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    # Python's own "max() arg is an empty sequence" would reach the operator as it is.
    def call(*args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and not args[0]:
            raise EvalError(f"{pick.__name__}: nothing to choose from (no item matched)")
        return pick(*args)

    return call


def _unit(name: str, show: Callable[[float | None], str], scale: float = 1.0) -> Callable[[Any], str]:
    # Report templates show values the way panes do (probes.units): `64 s`, `33.6 MiB`.
    def call(value: Any) -> str:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise EvalError(f"{name}: expected a number, got {_shown(value)}")
        try:
            return show(None if value is None else float(value) * scale)
        except OverflowError:
            raise EvalError(f"{name}: {_shown(value)} is too large") from None

    return call


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len, "any": any, "all": all, "min": _extreme(min), "max": _extreme(max), "sum": _sum, "abs": abs,
    "round": _round, "int": int, "float": float, "str": str, "lower": _lower,
    "duration": _unit("duration", units.duration), "duration_ms": _unit("duration_ms", units.duration, 0.001),
    "size": _unit("size", units.size),
}
CONSTANTS = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}


def _lookup(container: Any, key: Any) -> Any:
    """Mapping/list lookup where anything missing is None (`data.chains[0]` on no chains)."""
    if isinstance(container, Mapping):
        if key in container:
            return container[key]
        if isinstance(key, str) and key.replace("_", "-") in container:
            return container[key.replace("_", "-")]
        return None
    if isinstance(container, (list, tuple)) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else None
    return None


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed, checked expression; `evaluate(names)` returns its value."""

    text: str
    tree: ast.Expression

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The expression's value; EvalError (TooExpensive over budget), never anything else."""
        try:
            return _Evaluator(names).eval(self.tree.body)
        except TooExpensive as exc:
            raise TooExpensive(f"{self.text!r}: {exc}") from None
        except EvalError:
            raise
        except (RecursionError, MemoryError):
            raise TooExpensive(f"{self.text!r}: condition too expensive (too deep or too big)") from None
        except Exception as exc:  # noqa: BLE001 - whatever the data, a condition never crashes a run
            raise EvalError(f"{self.text!r}: {str(exc)[:300] or type(exc).__name__}") from None

    def test(self, names: Mapping[str, Any]) -> bool:
        return bool(self.evaluate(names))


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


def _size(value: Any) -> int:
    """What building `value` cost, in characters / items / bytes."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise TooExpensive(f"condition too expensive (a number over {MAX_INT_BITS} bits)")
        return value.bit_length() // 8
    return len(value) if isinstance(value, (str, list)) else 0


class _Evaluator:
    def __init__(self, names: Mapping[str, Any]) -> None:
        self.scopes: list[Mapping[str, Any]] = [names]
        self.ops = 0
        self.built = 0
        self.deadline = time.thread_time() + MAX_SECONDS  # CPU time: preemption is not the condition's fault

    def spend(self) -> None:
        """Count one operation; TooExpensive past the budget."""
        self.ops += 1
        if self.ops > MAX_OPS:
            raise TooExpensive(f"condition too expensive (over {MAX_OPS} operations)")
        if self.ops % _CLOCK_EVERY == 0 and time.thread_time() > self.deadline:
            raise TooExpensive(f"condition too expensive (over {MAX_SECONDS * 1000:.0f} ms of CPU)")

    def build(self, size: int) -> None:
        """Count what an operation built; TooExpensive past the budget."""
        self.built += size
        if self.built > MAX_BUILT:
            raise TooExpensive(f"condition too expensive (builds over {MAX_BUILT:,} items)")

    def name(self, ident: str) -> Any:
        for scope in reversed(self.scopes):
            if ident in scope:
                return scope[ident]
        if ident in CONSTANTS:
            return CONSTANTS[ident]
        return None

    def eval(self, node: ast.AST) -> Any:
        self.spend()
        value = self.node(node)
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call, ast.List, ast.Tuple)):
            self.build(_size(value))
        return value

    def node(self, node: ast.AST) -> Any:  # noqa: C901 - one branch per whitelisted node type
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Attribute):
            return _lookup(self.eval(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return _lookup(self.eval(node.value), self.eval(node.slice))
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(e) for e in node.elts]
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: Any = True
                for value in node.values:
                    result = self.eval(value)
                    if not result:
                        return result
                return result
            for value in node.values:
                result = self.eval(value)
                if result:
                    return result
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return self.number(operand) * (-1 if isinstance(node.op, ast.USub) else 1)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.eval(right_node)
                if not self.compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            args = [self.iterate(a) if isinstance(a, ast.GeneratorExp) else self.eval(a) for a in node.args]
            if node.func.id in CONTEXT_FUNCTIONS:  # metric(): reads the probe data it is graded on
                kwargs = {str(k.arg): self.eval(k.value) for k in node.keywords}
                return CONTEXT_FUNCTIONS[node.func.id](self.scopes[0], *args, **kwargs)
            return FUNCTIONS[node.func.id](*args)
        if isinstance(node, ast.GeneratorExp):
            return self.iterate(node)
        raise EvalError(f"unsupported expression {type(node).__name__}")

    @staticmethod
    def number(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvalError(f"expected a number, got {_shown(value)}")
        return value

    def binop(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right
        left, right = self.number(left), self.number(right)
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
            ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
        }
        return ops[type(node.op)](left, right)

    @staticmethod
    def compare(op: ast.cmpop, left: Any, right: Any) -> bool:
        if isinstance(op, ast.Eq):
            return bool(left == right)
        if isinstance(op, ast.NotEq):
            return bool(left != right)
        if isinstance(op, (ast.In, ast.NotIn)):
            found = right is not None and left in right
            return found if isinstance(op, ast.In) else not found
        if left is None or right is None:
            return False  # an unknown reading is neither above nor below a threshold
        if isinstance(op, ast.Lt):
            return bool(left < right)
        if isinstance(op, ast.LtE):
            return bool(left <= right)
        if isinstance(op, ast.Gt):
            return bool(left > right)
        return bool(left >= right)

    def iterate(self, node: ast.GeneratorExp) -> list[Any]:
        values: list[Any] = []

        def walk(index: int) -> None:
            if index == len(node.generators):
                values.append(self.eval(node.elt))
                self.build(1)
                return
            gen = node.generators[index]
            source = self.eval(gen.iter)
            items: Iterable[Any] = source.values() if isinstance(source, Mapping) else (source or [])
            assert isinstance(gen.target, ast.Name)
            for item in items:
                self.spend()  # every item walked counts, kept or not
                self.scopes.append({gen.target.id: item})
                try:
                    if all(self.eval(cond) for cond in gen.ifs):
                        walk(index + 1)
                finally:
                    self.scopes.pop()

        walk(0)
        return values


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


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # repr() of an int of over 4300 digits
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 80 else f"{text[:77]}..."


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
