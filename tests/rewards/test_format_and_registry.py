import time

import pytest

from r1lab.errors import UserError
from r1lab.rewards import RewardFailures, build_rewards, format_reward, is_r1zero_format, score_all
from r1lab.rewards.behaviour import language_consistency, reflection_count
from r1lab.rewards.format import reasoning_of
from r1lab.tasks.arithmetic import ArithmeticTask


@pytest.mark.parametrize("text,ok", [
    ("<think> a </think> <answer> 5 </answer>", True),
    ("  <think>a\nb</think>\n<answer>5</answer>\n", True),
    ("<think> a </think>", False),
    ("<answer> 5 </answer>", False),
    ("<think> a </think> <answer> 5 </answer> extra", False),
    ("text <think> a </think> <answer> 5 </answer>", False),
    ("<think> a <think> b </think> <answer> 5 </answer>", False),
    ("<think> a </think> <answer> 5 </answer> <answer> 6 </answer>", False),
    ("<answer> 5 </answer> <think> a </think>", False),
    ("", False),
])
def test_r1zero_format(text, ok):
    assert is_r1zero_format(text) is ok
    assert format_reward([text]) == [1.0 if ok else 0.0]


def test_reasoning_of():
    assert reasoning_of("<think> abc </think> <answer>1</answer>").strip() == "abc"
    assert reasoning_of("<think> unfinished").strip() == "unfinished"
    assert reasoning_of("plain text <answer>1</answer>") == "plain text "


def test_reflection_and_language():
    assert reflection_count("Wait, check this. wait") == 3
    assert reflection_count("waiter checks") == 0  # whole words only
    assert language_consistency("units 7+8=15, carry 1. so") == 1.0
    assert language_consistency("unidades 7+8=15, llevo 1. so") == pytest.approx(1 / 3)
    assert language_consistency("unidades 7+8=15, llevo 1.", target="es") == 1.0
    assert language_consistency("The answer 是 四") == pytest.approx(2 / 4)
    assert language_consistency("12 + 3 = 15") == 1.0  # nothing to judge


def _examples(n):
    ex = ArithmeticTask().examples("test", n=1)[0]
    return [ex] * n


def test_weighted_total_and_terms():
    ex = _examples(1)[0]
    rewards = build_rewards({"accuracy": 1.0, "format": 0.5}, ArithmeticTask())
    right = f"<think> x </think> <answer> {ex.reference} </answer>"
    plain = f"The answer is {ex.reference}."
    total, per = score_all(rewards, [right, plain, "junk"], [ex] * 3, 1.0, RewardFailures())
    assert total == [1.5, 1.0, 0.0]
    assert per == {"accuracy": [1.0, 1.0, 0.0], "format": [1.0, 0.0, 0.0]}


def test_unknown_reward_lists_valid():
    with pytest.raises(UserError, match="did you mean 'accuracy'"):
        build_rewards({"acuracy": 1.0}, ArithmeticTask())


def _score_with(fn, responses, timeout=0.5):
    from r1lab.rewards.registry import safe_scores

    failures = RewardFailures()
    scores = safe_scores("custom", fn, responses, _examples(len(responses)), timeout, failures)
    return scores, failures


def test_raising_reward_scores_only_failing_samples_zero():
    def fn(rs, es):
        return [1.0 / (0 if "boom" in r else 1) for r in rs]

    scores, failures = _score_with(fn, ["a", "boom", "c"])
    assert scores == [1.0, 0.0, 1.0]
    assert failures.errors == {"custom": 1} and "custom" in failures.reported


def test_hanging_reward_times_out_and_step_goes_on():
    def fn(rs, es):
        if any("hang" in r for r in rs):
            time.sleep(30)
        return [0.5] * len(rs)

    t0 = time.time()
    scores, failures = _score_with(fn, ["a", "hang", "c"], timeout=0.3)
    assert time.time() - t0 < 5
    assert scores == [0.5, 0.0, 0.5]
    assert failures.timeouts == {"custom": 1}


def test_non_numbers_and_wrong_lengths_are_invalid():
    scores, failures = _score_with(lambda rs, es: [1.0, "x", float("nan"), None, True], list("abcde"))
    assert scores == [1.0, 0.0, 0.0, 0.0, 1.0]
    # None is TRL's "no score for this sample": 0, counted apart from values that are not numbers
    assert failures.invalid == {"custom": 2} and failures.none == {"custom": 1}
    scores, failures = _score_with(lambda rs, es: [1.0], ["a", "b"])  # wrong length: per-sample retry
    assert scores == [1.0, 1.0]
