from r1lab.rewards.format import is_r1_format
from r1lab.tasks.arithmetic import ArithmeticTask
from r1lab.tasks.base import Example
from r1lab.tasks.readable import is_repetitive, keep_sample, rewrite_readable, split_steps

EX_EN = Example(id="arith/en/(47+38)*3", prompt="Compute (47+38)*3", reference=255,
                meta={"expr": "(47+38)*3", "lang": "en", "steps": [(47, "+", 38, 85), (85, "*", 3, 255)]})
EX_ES = Example(id="arith/es/(47+38)*3", prompt="Calcula (47+38)*3", reference=255, meta={**EX_EN.meta, "lang": "es"})
CAREFUL_EN = ("<think> 47+38: units 7+8=15, carry 1. tens 4+3+1=8. so 47+38=85. 85*3: units 5*3=15, carry 1. "
              "tens 8*3+1=25, carry 2. hundreds 0*3+2=2. so 85*3=255. </think> <answer> 255 </answer>")
MIXED = ("<think> 47+38: units 7+8=15, carry 1. tens 4+3+1=8. so 47+38=85. 85*3: unidades 5*3=15, llevo 1. "
         "decenas 8*3+1=25, llevo 2. centenas 0*3+2=2. entonces 85*3=255. </think> <answer> 255 </answer>")
TASK = ArithmeticTask()


def _keep(resp, ex, layout="r1zero"):
    return keep_sample(resp, ex, TASK.verify(resp, ex), layout)


def test_filters_on_hand_made_samples():
    assert _keep(CAREFUL_EN, EX_EN) == (True, "kept")
    assert _keep(CAREFUL_EN.replace("<answer> 255", "<answer> 256"), EX_EN) == (False, "incorrect")
    assert _keep(CAREFUL_EN.replace("</think>", ""), EX_EN)[1] == "malformed"
    assert _keep("<think> </think> <answer> 255 </answer>", EX_EN)[1] == "malformed"  # no reasoning
    assert _keep(MIXED, EX_EN) == (False, "language")                       # switches language midway
    assert _keep(CAREFUL_EN, EX_ES) == (False, "language")                  # English reasoning, Spanish question
    step = "47+38: units 7+8=15, carry 1. tens 4+3+1=8. so 47+38=85. "
    looping = CAREFUL_EN.replace(step, step * 3)  # the same step written three times
    assert _keep(looping, EX_EN) == (False, "repetition")


def test_repetition_detector():
    assert is_repetitive("a b c d e f " * 3)
    assert not is_repetitive(CAREFUL_EN)
    assert not is_repetitive("short")


def test_readable_rewrite():
    out = rewrite_readable(CAREFUL_EN, EX_EN, 255)
    assert out == ("<think> 47+38: units 7+8=15, carry 1. tens 4+3+1=8. so 47+38=85. "
                   "85*3: units 5*3=15, carry 1. tens 8*3+1=25, carry 2. hundreds 0*3+2=2. so 85*3=255. "
                   "</think> The answer is 255.")
    assert is_r1_format(out) and TASK.verify(out, EX_EN).correct
    es = rewrite_readable(CAREFUL_EN, EX_ES, 255)  # the summary speaks the question's language
    assert es.endswith("</think> La respuesta es 255.") and TASK.verify(es, EX_ES).correct


def test_split_steps_without_careful_markers():
    assert split_steps("47+38=85. 85*3=255.") == ["47+38=85.", "85*3=255."]


def test_readable_layout_filter():
    readable = rewrite_readable(CAREFUL_EN, EX_EN, 255)
    assert _keep(readable, EX_EN, "r1") == (True, "kept")
    assert _keep(CAREFUL_EN, EX_EN, "r1")[1] == "malformed"  # the R1-Zero layout is not the readable one
    no_summary = readable.split("</think>")[0] + "</think> "
    assert _keep(no_summary, EX_EN, "r1")[1] in ("malformed", "incorrect")
    assert not keep_sample(no_summary, EX_EN, type("V", (), {"correct": True})(), "r1")[0]
