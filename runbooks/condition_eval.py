"""The evaluating half of runbooks.conditions: a checked Condition and the budgeted walker that
evaluates it. It holds the budget of one evaluation (operations, CPU time, sizes built), the
errors an evaluation raises (EvalError, TooExpensive), the functions and constants an expression
may call or name, and the evaluator that walks a tree runbooks.conditions has already parsed and
checked; import these names from runbooks.conditions, which re-exports them."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from probes import units
from runbooks.condition_metrics import CONTEXT_FUNCTIONS

# The budget of one evaluation (a pass, a trigger's `when`, one template field). Conditions
# run on the cockpit's event loop, so none may take long: 20,000 node evaluations (generator
# iterations included) take 15-30 ms on a small VM; the CPU-time limit is the backstop for a
# slow machine. Sizes are capped so that no single operation can allocate or run for long either.
MAX_OPS = 20_000
MAX_SECONDS = 0.05
MAX_INT_BITS = 4096  # any count, pid or byte size fits easily; str() of it stays legal
MAX_BUILT = 1_000_000  # characters / list items an evaluation may build in all
_CLOCK_EVERY = 32  # reading the CPU clock costs about one node evaluation


class EvalError(ValueError):
    """A condition that parsed but could not be evaluated on this result."""


class TooExpensive(EvalError):
    """An evaluation that went over its budget (operations, CPU time or size)."""


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # repr() of an int of over 4300 digits
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 80 else f"{text[:77]}..."


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
