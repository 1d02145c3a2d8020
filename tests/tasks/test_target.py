"""Reach-a-target problems and the writers of their solutions."""

import random
import re

import pytest

from r1lab.rewards.behaviour import has_effective_correction, search_corrections
from r1lab.tasks import get_task
from r1lab.tasks.languages import LEXICON
from r1lab.tasks.search import attempt_line, write_search
from r1lab.tasks.target import TargetTask, answer_text, evaluate, expression


def test_problems_are_solvable_by_construction_and_split_by_hash():
    task = TargetTask()
    train = task.examples("train", n=300, seed=1)
    test = task.examples("test", n=100, seed=1)
    assert not {e.id.split("/", 2)[2] for e in train} & {e.id.split("/", 2)[2] for e in test}
    for e in train + test:
        nums, target = e.meta["nums"], e.reference
        assert len(nums) == 3 and all(2 <= n <= 9 for n in nums) and 10 <= target <= 99 and target not in nums
        assert evaluate(nums, e.meta["ops"])[-1] == target
        assert task.verify(f"<answer> {e.meta['solution']} </answer>", e).correct
        assert e.prompt == (f"Make {target} with " if e.meta["lang"] == "en" else f"Forma {target} con ") + \
            " ".join(map(str, nums))
    assert TargetTask(n_numbers=4).examples("test", n=5)[0].meta["nums"].__len__() == 4


@pytest.mark.parametrize("response,ok", [
    ("<think> x </think> <answer> (3*5)+9 </answer>", True),
    ("<think> x </think> The answer is (3*5)+9.", True),
    ("Vamos a resolverlo. La respuesta es 9+(5*3).", True),     # any order and any bracketing that is right
    ("<answer> (3+5)*9 </answer>", False),                       # wrong value
    ("<answer> 3*5+9+1 </answer>", False),                       # a number that is not given
    ("<answer> 3*8 </answer>", False),                           # not every number used
    ("The answer is 24.", False),                                # the value, not an expression
    ("", False),
])
def test_verifier(response, ok):
    task = TargetTask()
    ex = task.examples("test", n=1)[0]
    ex = type(ex)(id=ex.id, prompt=ex.prompt, reference=24, meta={**ex.meta, "nums": [3, 5, 9]})
    assert task.verify(response, ex).correct is ok


def test_expressions_and_answers():
    assert expression([3, 5, 9, 2], ["*", "+", "-"]) == "((3*5)+9)-2"
    assert evaluate([3, 5, 9], ["-", "*"]) == [-2, -18]
    assert answer_text("<answer> (3*5)+9 </answer>") == "(3*5)+9"
    assert answer_text("The answer is (3*5)+9.") == "(3*5)+9"


def test_search_writers_check_each_try_and_stop_at_the_first_that_reaches_the_target():
    task = TargetTask()
    rng = random.Random(0)
    lengths = []
    for e in task.examples("train", n=200, seed=2):
        text, answer = write_search(e.meta["nums"], e.meta["ops"], e.reference, "search", ["en"], rng)
        tries = re.findall(r"try (\S+): ", text)
        assert len(tries) == len(set(tries)) <= 10               # nothing tried twice
        assert text.endswith(f"{e.reference} vs {e.reference}: yes.") and text.count("yes") == 1
        assert text.count("wait,") == len(tries) - 1             # every miss is flagged before the next try
        assert task.verify(f"<answer> {answer} </answer>", e).correct
        lengths.append(len(tries))
        if len(tries) > 1:
            assert has_effective_correction(text)
    assert 2 < sum(lengths) / len(lengths) < 6                   # first guesses are mostly wrong


def test_guessers_answer_their_one_try_and_direct_writers_know():
    task = TargetTask()
    rng = random.Random(1)
    exs = task.examples("train", n=300, seed=3)
    right = 0
    for e in exs:
        text, answer = write_search(e.meta["nums"], e.meta["ops"], e.reference, "guess", ["es"], rng)
        assert text.startswith("pruebo ") and "espera" not in text and "compruebo" not in text and answer in text
        right += task.verify(f"<answer> {answer} </answer>", e).correct
        direct, guess = write_search(e.meta["nums"], e.meta["ops"], e.reference, "direct", ["en"], rng)
        assert direct == "" and re.fullmatch(r"\(\d[-+*]\d\)[-+*]\d", guess)  # an unchecked guess
    assert 0.3 < right / len(exs) < 0.55                        # intuition 0.3, plus lucky guesses


def test_attempt_line_and_search_corrections():
    L = LEXICON["en"]
    assert attempt_line([3, 5, 9], ["+", "*"], 24, L) == "try (3+5)*9: 3+5=8, 8*9=72. check 72 vs 24: not."
    text = attempt_line([3, 5, 9], ["+", "*"], 24, L) + " wait, " + attempt_line([3, 5, 9], ["*", "+"], 24, L)
    (c,) = search_corrections(text)
    assert c["effective"] and c["old"] == 72 and c["true"] == 24
    # a retry that claims success wrongly is not an effective correction
    assert not has_effective_correction("try (3+5)*9: 3+5=8, 8*9=72. check 72 vs 24: not. wait, try (3+5)+9: 3+5=8, "
                                        "8+9=24. check 24 vs 24: yes.")


def test_world_solutions_through_the_mixture():
    mix = get_task("mixture", components={"arith": 0.5, "target": 0.5})
    for e in mix.examples("test", n=20, seed=0):
        for layout in ("r1", "r1zero"):
            assert mix.verify(mix.solution(e, layout), e).correct
