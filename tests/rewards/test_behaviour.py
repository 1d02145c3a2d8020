"""Reflection statistics: words, flag-and-replace corrections, and whether reflecting paid."""

import pytest

from r1lab.rewards.behaviour import corrections, has_effective_correction, reflection_stats


def test_effective_correction_replaces_a_wrong_value_with_the_right_one():
    text = ("68/4=18. check 18*4: units 8*4=32, carry 3. tens 1*4=4, 4+3=7. so 18*4=72, not 68. "
            "wait, 68/4 is 17, not 18. check 17*4=68, ok.")
    (c,) = corrections(text)
    assert c == {"op": "68/4", "old": 18, "new": 17, "true": 17, "effective": True}
    assert has_effective_correction(text)


@pytest.mark.parametrize("text", [
    "wait, 68/4 is 16, not 18.",        # the replacement is wrong too
    "wait, 68/4 is 17, not 17.",        # nothing changed (superficial)
    "wait, 47+38 is 86, not 85.",       # a right value replaced by a wrong one
    "wait, 69/4 is 17, not 18.",        # not an exact division: no right value to reach
    "check 17*4=68, ok.",               # a check that flags nothing
])
def test_corrections_that_do_not_fix_a_wrong_value_are_not_effective(text):
    assert not has_effective_correction(text)


def test_spanish_and_other_operations():
    assert has_effective_correction("espera, 47+38 es 85, no 86.")
    assert has_effective_correction("Wait, 90-38 is 52, not 62.")
    assert has_effective_correction("wait, 12*7 is 84, not 74.")


def test_reflection_stats_split_accuracy_by_reflection():
    texts = ["wait, 8/2 is 4, not 5. The answer is 4.", "check 4*2=8, ok. The answer is 4.",
             "The answer is 5.", "8/2=4. The answer is 4."]
    stats = reflection_stats(texts, [True, False, False, True])
    assert stats == {"reflection_rate": 0.5, "effective_reflection_rate": 0.25,
                     "reflection_accuracy": 0.5, "no_reflection_accuracy": 0.5}
    assert reflection_stats(["1+1=2"], [True])["reflection_accuracy"] is None
