import pytest

from r1lab.tasks import get_task
from r1lab.tasks.countdown import check_equation, extract_equation


@pytest.mark.parametrize("eq,nums,target,ok", [
    ("(76-47)+55-60", [47, 76, 55, 60], 24, True),
    ("76-47+55-60", [47, 76, 55, 60], 25, False),          # wrong value
    ("(76-47)+55", [47, 76, 55, 60], 84, False),           # a number unused
    ("(76-47)+55-60+60", [47, 76, 55, 60], 84, False),     # a number used twice
    ("6/(1-3/4)", [6, 1, 3, 4], 24, True),                 # exact fractions, not floats
    ("8/(3-8/3)", [8, 3, 8, 3], 24, True),
    ("1/0+3", [1, 0, 3], 3, False),                        # division by zero
    ("__import__('os').system('true')", [1], 1, False),    # not arithmetic: never evaluated
    ("2**3", [2, 3], 8, False),                            # power is not allowed
    ("-2+5", [2, 5], 3, False),                            # unary minus is not an operation on the numbers
    ("12", [1, 2], 12, False),                             # digits cannot be concatenated
    (None, [1], 1, False),
    ("(" * 5000 + "1" + ")" * 5000, [1], 1, False),         # too long / too deep
])
def test_check_equation(eq, nums, target, ok):
    assert check_equation(eq, nums, target)[0] is ok


def test_extract_equation():
    assert extract_equation("<think>..</think> <answer> (1+2)*3 = 9 </answer>") == "(1+2)*3"
    assert extract_equation("<answer>9 = 3*(1+2)</answer>") == "3*(1+2)"
    assert extract_equation("so the equation is\n$3 \\times (1+2)$") == "3 * (1+2)"
    assert extract_equation("no equation here") is None


def test_generated_instances_are_solvable_and_split():
    task = get_task("countdown_gen")
    train = task.examples("train", n=100, seed=0)
    test = task.examples("test", n=30, seed=0)
    assert not {e.id for e in train} & {e.id for e in test}
    for ex in train + test:
        assert task.verify(f"<answer>{ex.meta['solution']}</answer>", ex).correct
        assert 3 <= len(ex.meta["nums"]) <= 4 and 1 <= ex.reference <= 100


def test_benchmark_file_reference_solutions_verify():
    from r1lab.errors import UserError

    try:
        task = get_task("countdown")
    except UserError:
        pytest.skip("benchmark data not available")
    exs = task.examples("test")
    assert len(exs) == 1024
    assert all(task.verify(f"<answer>{e.meta['solution']}</answer>", e).correct for e in exs)
    assert not task.verify("<answer>1+1</answer>", exs[0]).correct
