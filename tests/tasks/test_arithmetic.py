import ast
import operator

import pytest

from r1lab.tasks import get_task
from r1lab.tasks.arithmetic import ArithmeticTask, parse_int
from r1lab.tasks.base import split_of

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    return _OPS[type(node.op)](_eval(node.left), _eval(node.right))


def test_reference_is_the_value_of_the_expression():
    task = ArithmeticTask()
    for ex in task.examples("train", n=300, seed=3):
        assert _eval(ast.parse(ex.meta["expr"], mode="eval")) == ex.reference
        a = int(ex.meta["expr"].lstrip("(").split("+")[0].split("-")[0].split("*")[0])
        assert 10 <= a <= 99
        for (x, op, y, z) in ex.meta["steps"]:
            assert 0 <= z <= 999 and z == _OPS[{"+": ast.Add, "-": ast.Sub, "*": ast.Mult}[op]](x, y)
        assert 2 <= ex.meta["n_ops"] <= 3


def test_deterministic_by_seed_and_different_across_seeds():
    task = ArithmeticTask()
    a = [e.id for e in task.examples("train", n=50, seed=1)]
    assert a == [e.id for e in task.examples("train", n=50, seed=1)]
    assert a != [e.id for e in task.examples("train", n=50, seed=2)]


def test_splits_are_disjoint():
    task = ArithmeticTask()
    train = {e.meta["expr"] for s in range(3) for e in task.examples("train", n=400, seed=s)}
    test = {e.meta["expr"] for s in range(3) for e in task.examples("test", n=200, seed=s)}
    assert not train & test  # the same expression never appears in both, in either language
    assert all(split_of(x, 0.1) == "test" for x in test)


def test_questions_in_both_languages():
    exs = ArithmeticTask().examples("train", n=400)
    share_es = sum(e.meta["lang"] == "es" for e in exs) / len(exs)
    assert 0.22 < share_es < 0.38
    assert all(e.prompt.startswith("Calcula " if e.meta["lang"] == "es" else "Compute ") for e in exs)
    only_en = ArithmeticTask(question_langs={"en": 1.0}).examples("train", n=50)
    assert all(e.meta["lang"] == "en" for e in only_en)


def test_difficulty_knobs():
    easy = ArithmeticTask(min_ops=1, max_ops=1, max_operand=9, max_value=99)
    for ex in easy.examples("train", n=100):
        assert ex.meta["n_ops"] == 1 and ex.reference <= 99
    hard = ArithmeticTask(min_ops=4, max_ops=4)
    assert all(e.meta["n_ops"] == 4 for e in hard.examples("test", n=20))


@pytest.mark.parametrize("response,ok", [
    ("<think> 47+38=85 </think> <answer> 226 </answer>", True),
    ("<think> x </think> <answer>226</answer>", True),
    ("Let me work it out. ... The answer is 226.", True),
    ("La respuesta es 226.", True),  # falls back to the last number
    ("<answer> 2,26 </answer>", True),  # thousands-comma tolerance
    ("<answer> 225 </answer>", False),
    ("<answer> 226 </answer> <answer> 7 </answer>", False),  # the last answer block counts
    ("<think> 226 </think> <answer> abc </answer>", False),
    ("", False),
    ("<answer>" * 1000, False),
])
def test_verifier_edge_cases(response, ok):
    task = ArithmeticTask()
    ex = task.examples("test", n=1)[0]
    ex = type(ex)(id=ex.id, prompt=ex.prompt, reference=226, meta=ex.meta)
    assert task.verify(response, ex).correct is ok


def test_parse_int():
    assert parse_int(" 1,234. ") == 1234
    assert parse_int("\\boxed{42}") == 42
    assert parse_int("+7") == 7
    assert parse_int("-3") == -3
    assert parse_int("4.0") == 4
    assert parse_int("4.5") is None
    assert parse_int("x") is None
    assert parse_int(None) is None


def test_registry_unknown_task_lists_valid():
    from r1lab.errors import UserError

    with pytest.raises(UserError, match="valid tasks:.*arith"):
        get_task("arithm")
