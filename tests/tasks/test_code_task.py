import ast
import random

import pytest

import r1lab.tasks.code  # noqa: F401  (registers "code")
from r1lab.rewards.code import run_tests
from r1lab.tasks import get_task
from r1lab.tasks.base import split_of
from r1lab.tasks.code import TEMPLATES, CodeTask, make_problem


def fenced(source: str) -> str:
    return f"<think>easy</think>\n```python\n{source}```"


def test_registered_and_deterministic():
    task = get_task("code")
    a = [e.id for e in task.examples("train", n=40, seed=1)]
    assert a == [e.id for e in task.examples("train", n=40, seed=1)]
    assert a != [e.id for e in task.examples("train", n=40, seed=2)]
    assert len(set(a)) == 40


def test_splits_are_disjoint():
    task = CodeTask(test_fraction=0.2)
    train = task.examples("train", n=300, seed=0)
    test = task.examples("test", n=60, seed=0)
    assert not {e.id for e in train} & {e.id for e in test}
    assert {e.meta["split"] for e in train} == {"train"} and {e.meta["split"] for e in test} == {"test"}
    for e in test[:10]:
        key = e.prompt.split("`")[1] + ": " + e.prompt.split(" that ", 1)[1].split(".\n")[0]
        assert split_of(key, 0.2) == "test"


def test_problem_shape():
    for ex in CodeTask().examples("train", n=100, seed=5):
        tests = ex.reference["tests"]
        assert 3 <= len(tests) <= 5 and tests == ex.meta["tests"]
        assert f"`{ex.reference['entry_point']}(" in ex.prompt and "```python" in ex.prompt
        for t in tests:
            (stmt,) = ast.parse(t).body
            assert isinstance(stmt, ast.Assert) and isinstance(stmt.test.ops[0], ast.Eq)
            ast.literal_eval(stmt.test.comparators[0])  # expected values are literals, kept in the harness
    seen = {ex.meta["template"] for ex in CodeTask().examples("train", n=300, seed=0)}
    assert seen == {t.name for t in TEMPLATES} and len(TEMPLATES) >= 15


def test_reference_solutions_pass_their_tests():
    rng = random.Random(7)
    for _ in range(2):  # one sandbox run per round: every template once, distinct function names
        problems = [make_problem(t, t.params(rng), 0.1) for t in TEMPLATES]
        program = "\n".join(p.meta["solution"] for p in problems)
        res = run_tests(program, [t for p in problems for t in p.meta["tests"]], timeout_s=10.0)
        assert res.passed == res.total, [o for o in res.outcomes if not o.passed]


def test_verify():
    task = CodeTask(timeout_s=5.0)
    ex = task.examples("test", n=1, seed=3)[0]
    good = task.verify(fenced(ex.meta["solution"]), ex)
    assert good.correct and good.info["passed"] == good.info["total"] == len(ex.meta["tests"])
    name = ex.reference["entry_point"]
    wrong = task.verify(fenced(f"def {name}(*args):\n    return None\n"), ex)
    assert not wrong.correct and wrong.info["passed"] == 0 and wrong.info["status"] == "failed"
    none = task.verify("I would write a loop.", ex)
    assert not none.correct and none.answer is None and none.info["status"] == "no_program"


def test_partial_credit_in_info():
    task = CodeTask(templates=("clamp",))
    ex = next(e for e in task.examples("train", n=30, seed=0)
              if any(int(t.split("(")[1].split(")")[0]) < e.meta["params"]["lo"] for t in e.meta["tests"]))
    verdict = task.verify(fenced(f"def clamp(x):\n    return min({ex.meta['params']['hi']}, x)\n"), ex)
    assert not verdict.correct and 0 < verdict.info["passed"] < verdict.info["total"]  # forgot the lower bound


def test_bad_options():
    with pytest.raises(ValueError):
        CodeTask(templates=("nope",))
    with pytest.raises(ValueError):
        CodeTask().examples("train")
    with pytest.raises(ValueError):
        CodeTask(templates=("repeat_chars",)).examples("train", n=50)  # only 4 such problems exist
