"""Code reward: run a program against ``assert`` tests in the sandbox; the harness, not the program, scores.

How a test is scored, and why a program cannot fake a pass:

1. ``compile_test`` parses ``assert <expr>`` and splits ``<expr>`` into the parts the harness evaluates
   itself - literals, comparisons, ``and/or/not``, arithmetic, indexing and a few pure builtins
   (``abs``, ``len``, ``sorted``, ``isinstance`` ...) - and *probes*: the maximal subexpressions that need
   the program, e.g. ``add(2, 3)`` in ``assert add(2, 3) == 5``. Only probes go into the sandbox;
   the expected ``5`` never does, so the program cannot read it, whatever it inspects.
2. The sandbox (``r1lab.rewards.sandbox``) runs the program once, evaluates every probe and sends back
   each value as plain data of exact builtin types. Anything else - an object whose ``__eq__`` always
   returns True, an ``int`` subclass, a numpy scalar - is "not plain data" and fails its test.
3. The harness decodes the values and evaluates the rest of the assert in its own process, on values
   it built itself. Patching builtins or ``AssertionError``, ``sys.exit(0)`` / ``os._exit(0)``, printing
   pass markers, writing files, or forging records on the result pipe all leave the program with one
   power only: choosing the value each probe reports, which is the same as answering.

A test whose comparison sits inside something the harness does not evaluate (a generator, a lambda, a
method call) still runs, but then the probe is the whole comparison, and the sandbox's True is trusted
the way a function's return value is. Tests should compare a call to a literal, as generated tests do.
Builtin names in tests (``len``, ``sorted`` ...) mean the builtins even if the program redefines them.
"""

from __future__ import annotations

import ast
import operator
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

from r1lab.rewards.extract import answer_tag
from r1lab.rewards.sandbox import Limits, run_sandboxed

MAX_PROGRAM_CHARS = 100_000
MAX_INT_BITS = 1 << 16   # harness-side arithmetic on returned ints stays cheap

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_BARE_FENCE = re.compile(r"```[ \t]*\n(.*?)```", re.DOTALL)


def _sum(items, start=0):
    """``sum`` of numbers only: summing lists is quadratic, and the lists come from the program."""
    items = list(items)
    if not all(isinstance(x, (int, float, complex)) for x in [start, *items]):
        raise TypeError("sum() of non-numbers is not evaluated by the harness")
    return sum(items, start)


# Pure builtins the harness evaluates on plain data (no ``bytes``: ``bytes(10**12)`` would allocate).
_HARNESS_NAMES = {f.__name__: f for f in (abs, len, sorted, min, max, round, any, all, repr, set, frozenset,
                                          list, tuple, dict, str, int, float, complex, bool, isinstance, type)}
_HARNESS_NAMES["sum"] = _sum
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_PROBE_PREFIX = "@probe"   # not an identifier: cannot clash with a name in a test


@dataclass(frozen=True)
class CompiledTest:
    """One test: ``expr`` is the assert's condition with probes replaced by placeholder names."""

    source: str
    expr: ast.expr
    probes: tuple[str, ...]


@dataclass(frozen=True)
class TestOutcome:
    """How one test went; ``reason`` says why it failed ("" when it passed)."""

    __test__ = False  # not a pytest test class

    test: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class CodeResult:
    """``status``: "ok" (all passed), "failed", "timeout", "memory", "error" (the program raised at top
    level or could not run), "sandbox_error" (the sandbox could not start; the program never ran)."""

    passed: int
    total: int
    status: str
    outcomes: tuple[TestOutcome, ...] = ()
    isolation: str = ""
    layers: tuple[str, ...] = ()
    program_error: str | None = None
    output_tail: str = ""
    elapsed_s: float = 0.0


# ---------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------

def run_tests(program: str, tests: Sequence[str], *, timeout_s: float = 5.0, memory_mb: int = 512,
              isolation: str = "auto", audit_hook: bool = True, seccomp: bool = True) -> CodeResult:
    """Run ``program`` once in the sandbox and score each ``assert`` test in the harness.

    ``timeout_s`` bounds the whole run (program and all tests); ``isolation``, ``audit_hook`` and
    ``seccomp`` are passed to ``run_sandboxed``. Raises ``ValueError`` only for bad tests (not a single
    assert, or not calling the program); never for anything the program does.
    """
    compiled = [compile_test(t) for t in tests]
    if not compiled:
        raise ValueError("run_tests: no tests")
    if not isinstance(program, str) or len(program) > MAX_PROGRAM_CHARS:
        reason = "program missing or too long"
        return CodeResult(0, len(compiled), "error", tuple(TestOutcome(t.source, False, reason) for t in compiled))
    probes = [p for t in compiled for p in t.probes]
    res = run_sandboxed(program, probes, limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb),
                        isolation=isolation, audit_hook=audit_hook, seccomp=seccomp)
    outcomes, at = [], 0
    for test in compiled:
        values = res.values[at:at + len(test.probes)]
        at += len(test.probes)
        outcomes.append(judge(test, values) if res.status != "sandbox_error"
                        else TestOutcome(test.source, False, f"sandbox error: {res.detail}"))
    passed = sum(o.passed for o in outcomes)
    return CodeResult(passed, len(compiled), _status(res.status, passed, len(compiled)), tuple(outcomes),
                      res.isolation, res.layers, res.program_error, res.output_tail, res.elapsed_s)


def extract_program(response: Any) -> str | None:
    """The program in a response: the last ```python fenced block; else the last ``<answer>`` block
    (its fenced block if it holds one, else its text); else None."""
    if not isinstance(response, str):
        return None
    blocks = _FENCE.findall(response)
    if blocks:
        return blocks[-1]
    inner = answer_tag(response)
    if not inner:
        return None
    fenced = _BARE_FENCE.findall(inner)
    return fenced[-1] if fenced else inner


def tests_of(example: Any) -> list[str]:
    """The assert tests of an example: ``example.reference["tests"]``, else ``example.meta["tests"]``."""
    ref, meta = getattr(example, "reference", None), getattr(example, "meta", None) or {}
    tests = ref.get("tests") if isinstance(ref, dict) else None
    tests = tests if tests is not None else meta.get("tests")
    if not tests:
        raise ValueError(f"example {getattr(example, 'id', '?')!r} has no tests "
                         "(expected reference['tests'] or meta['tests'])")
    return list(tests)


def code_reward(responses: Sequence[str], examples: Sequence[Any], *, timeout_s: float = 5.0,
                memory_mb: int = 512, workers: int = 1) -> list[float]:
    """Fraction of an example's tests the response's program passes (0.0 when it has no program).

    ``workers`` > 1 runs that many sandboxes at once (threads waiting on child processes).
    """
    if len(responses) != len(examples):
        raise ValueError(f"code_reward: {len(responses)} responses for {len(examples)} examples")

    def score(pair) -> float:
        response, example = pair
        tests, program = tests_of(example), extract_program(response)
        if program is None:
            return 0.0
        res = run_tests(program, tests, timeout_s=timeout_s, memory_mb=memory_mb)
        return res.passed / res.total

    pairs = list(zip(responses, examples))
    if workers <= 1:
        return [score(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(score, pairs))


# ---------------------------------------------------------------------------------------------------------
# splitting a test into harness-side expression and probes
# ---------------------------------------------------------------------------------------------------------

def compile_test(test: str) -> CompiledTest:
    """Parse one ``assert`` test and split it into the harness expression and its probes."""
    try:
        tree = ast.parse(test.strip())
    except SyntaxError as e:
        raise ValueError(f"test is not valid Python: {test!r} ({e.msg})") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        raise ValueError(f"a test must be a single assert statement: {test!r}")
    splitter = _Splitter()
    expr = splitter.visit(tree.body[0].test)
    if not splitter.probes:
        raise ValueError(f"test does not call the program: {test!r}")
    return CompiledTest(test.strip(), expr, tuple(splitter.probes))


def _harness_evaluates(node: ast.AST) -> bool:
    """Whether the harness evaluates this node itself (its children are decided separately)."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return not any(isinstance(e, ast.Starred) for e in node.elts)
    if isinstance(node, ast.Dict):
        return None not in node.keys
    if isinstance(node, (ast.Constant, ast.Compare, ast.BoolOp, ast.IfExp, ast.Subscript, ast.Slice)):
        return True
    if isinstance(node, ast.UnaryOp):
        return type(node.op) in _UNARY
    if isinstance(node, ast.BinOp):
        return type(node.op) in _BINOPS
    if isinstance(node, ast.Name):
        return node.id in _HARNESS_NAMES
    if isinstance(node, ast.Call):  # a lambda or generator argument would reach the harness as a non-value
        args = node.args + [k.value for k in node.keywords]
        return (isinstance(node.func, ast.Name) and node.func.id in _HARNESS_NAMES
                and not any(isinstance(a, (ast.Starred, ast.Lambda, ast.GeneratorExp)) for a in args)
                and all(k.arg is not None for k in node.keywords))
    return False


class _Splitter(ast.NodeTransformer):
    """Replace each maximal subexpression the harness cannot evaluate by a probe placeholder."""

    def __init__(self):
        self.probes: list[str] = []

    def visit(self, node):
        if isinstance(node, ast.expr) and not _harness_evaluates(node):
            self.probes.append(ast.unparse(node))
            return ast.Name(id=f"{_PROBE_PREFIX}{len(self.probes) - 1}", ctx=ast.Load())
        return self.generic_visit(node)


# ---------------------------------------------------------------------------------------------------------
# harness-side evaluation
# ---------------------------------------------------------------------------------------------------------

class _Fail(Exception):
    """A test that fails for a stated reason (a probe raised, returned non-plain data, was never run)."""


def judge(test: CompiledTest, values: Sequence) -> TestOutcome:
    """Evaluate a compiled test on its probes' sandbox results (see ``SandboxResult.values``)."""
    try:
        ok = bool(_eval(test.expr, test.probes, values))
        return TestOutcome(test.source, ok, "" if ok else "assertion is false")
    except _Fail as e:
        return TestOutcome(test.source, False, str(e))
    except Exception as e:  # e.g. comparing str < int: the assert would have raised
        return TestOutcome(test.source, False, f"{type(e).__name__}: {e}"[:300])


def _probe(name: str, probes: Sequence[str], values: Sequence):
    k = int(name[len(_PROBE_PREFIX):])
    got = values[k] if k < len(values) else None
    if got is None:
        raise _Fail(f"no result for {probes[k]} (timeout or crash)")
    kind, payload = got
    if kind == "value":
        return payload
    if kind == "raised":
        raise _Fail(f"{probes[k]} raised {payload}"[:300])
    raise _Fail(f"{probes[k]} returned {payload}"[:300])


def _eval(node: ast.AST, probes: Sequence[str], values: Sequence):
    ev = lambda n: _eval(n, probes, values)  # noqa: E731 - short recursive helper
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _probe(node.id, probes, values) if node.id.startswith(_PROBE_PREFIX) else _HARNESS_NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [ev(e) for e in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        return {ev(k): ev(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BoolOp):
        result = ev(node.values[0])
        for v in node.values[1:]:
            if bool(result) != isinstance(node.op, ast.And):
                return result
            result = ev(v)
        return result
    if isinstance(node, ast.Compare):
        left = ev(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = ev(right_node)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_guard_number(ev(node.operand), node.op))
    if isinstance(node, ast.BinOp):
        return _binop(node.op, ev(node.left), ev(node.right))
    if isinstance(node, ast.IfExp):
        return ev(node.body) if ev(node.test) else ev(node.orelse)
    if isinstance(node, ast.Subscript):
        return ev(node.value)[ev(node.slice)]
    if isinstance(node, ast.Slice):
        return slice(*(None if n is None else ev(n) for n in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Call):
        return _HARNESS_NAMES[node.func.id](*[ev(a) for a in node.args], **{k.arg: ev(k.value) for k in node.keywords})
    raise _Fail(f"cannot evaluate {type(node).__name__}")


def _guard_number(x, op):
    if not isinstance(op, ast.Not) and not isinstance(x, (int, float, complex)):
        raise _Fail(f"unary {type(op).__name__} on {type(x).__name__}")
    return x


def _binop(op: ast.operator, a, b):
    """Python's binary operator, refused where plain data could make it huge (``[0] * 10**12``, ``2 ** n``)."""
    numbers = isinstance(a, (int, float, complex)) and isinstance(b, (int, float, complex))
    if isinstance(op, (ast.Add, ast.Sub)) and (numbers or type(a) is type(b)):
        return _BINOPS[type(op)](a, b)
    if not numbers:
        raise _Fail(f"{type(op).__name__} on {type(a).__name__} and {type(b).__name__}")
    bits = [abs(x).bit_length() if isinstance(x, int) else 0 for x in (a, b)]
    if isinstance(op, ast.Mult) and sum(bits) > MAX_INT_BITS:
        raise _Fail("product too large")
    if isinstance(op, ast.Pow) and isinstance(a, int) and isinstance(b, int) and b * max(bits[0], 1) > MAX_INT_BITS:
        raise _Fail("power too large")
    return _BINOPS[type(op)](a, b)


def _status(sandbox_status: str, passed: int, total: int) -> str:
    if sandbox_status == "sandbox_error":
        return "sandbox_error"
    if passed == total:
        return "ok"
    if sandbox_status in ("timeout", "memory"):
        return sandbox_status
    return "error" if sandbox_status in ("error", "crashed") else "failed"
