import re
from collections import Counter

from r1lab.tasks.corpus import CorpusMix, documents
from r1lab.tasks.solutions import careful_step, write_reasoning
from r1lab.tasks.languages import LEXICON

EN = LEXICON["en"]


def test_careful_column_arithmetic_hand_checked():
    assert careful_step(47, "+", 38, EN) == "47+38: units 7+8=15, carry 1. tens 4+3+1=8. so 47+38=85."
    assert careful_step(255, "-", 29, EN) == (
        "255-29: units 5-9, borrow, 15-9=6. tens 5-1-2=2. hundreds 2-0=2. so 255-29=226.")
    assert careful_step(85, "*", 3, EN) == (
        "85*3: units 5*3=15, carry 1. tens 8*3=24, 24+1=25, carry 2. hundreds 0*3=0, 0+2=2. so 85*3=255.")
    assert careful_step(100, "-", 1, EN).endswith("so 100-1=99.")


def test_every_line_of_careful_solutions_is_true():
    mix = CorpusMix(styles={"careful": 1.0}, langs={"en": 1.0}, tasks={"arith": 1.0})
    for doc in documents(300, seed=4, mix=mix):
        assert doc["correct"], doc
        for a, op, b, c in re.findall(r"so (\d+)([-+*])(\d+)=(\d+)\.", doc["response"]):
            assert eval(f"{a}{op}{b}") == int(c)


def test_quick_solutions_slip_at_about_the_configured_rate():
    mix = CorpusMix(styles={"quick": 1.0}, langs={"en": 1.0}, slip_rate=0.25, tasks={"arith": 1.0})
    lines = wrong = 0
    for doc in documents(400, seed=1, mix=mix):
        for a, op, b, c in re.findall(r"(-?\d+)([-+*])(\d+)=(-?\d+)\.", doc["response"]):
            lines += 1
            wrong += eval(f"{a}{op}{b}") != int(c)
    assert 0.18 < wrong / lines < 0.32


def test_mix_proportions_and_determinism():
    docs = list(documents(2000, seed=0))
    assert docs[:20] == list(documents(20, seed=0))
    is_target = [("Make " in d["prompt"]) or ("Forma " in d["prompt"]) for d in docs]
    arith = Counter(d["style"] for d, t in zip(docs, is_target) if not t)
    target = Counter(d["style"] for d, t in zip(docs, is_target) if t)
    assert abs(sum(arith.values()) / 2000 - 0.5) < 0.04     # half arithmetic chains, half reach-a-target
    assert abs(arith["careful"] / sum(arith.values()) - 0.25) < 0.04 and set(arith) == {"careful", "quick", "direct"}
    assert abs(target["search"] / sum(target.values()) - 0.15) < 0.04 and set(target) == {"search", "guess", "direct"}
    assert abs(sum(d["tagged"] for d in docs) / 2000 - 0.5) < 0.05
    assert any("A conversation between User and Assistant" in d["prompt"] for d in docs)
    assert any(d["lang"] == "mixed" for d in docs) and any("unidades" in d["response"] for d in docs)


def test_mixed_language_switches_midway():
    import random

    steps = [(47, "+", 38, 85), (85, "*", 3, 255), (255, "-", 29, 226)]
    text, final = write_reasoning(steps, "careful", ["en", "es", "es"], random.Random(0), 0.0)
    assert final == 226 and "units" in text and "unidades" in text


def test_tokenizer_keeps_digits_and_operators_single(tiny_tokenizer):
    text = "User: Compute ((47+38)*3)-29. Assistant: <think> 47+38: units 7+8=15 </think>"
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [tiny_tokenizer.decode([i]) for i in ids]
    assert tiny_tokenizer.decode(ids) == text
    for ch in "4738()+*-=":
        assert ch in pieces
    assert all(not re.search(r"\d", p) or len(p) == 1 for p in pieces)


def test_general_documents_when_the_mix_asks_for_them():
    from r1lab.tasks.general import GeneralTask

    default = list(documents(300, seed=4))
    assert all(d["style"] != "general" for d in default)
    mix = CorpusMix(tasks={"arith": 0.4, "target": 0.4, "general": 0.2})
    docs = list(documents(400, seed=4, mix=mix))
    general = [d for d in docs if d["style"] == "general"]
    assert 40 <= len(general) <= 120  # ~20% of 400
    task = GeneralTask()
    test_prompts = {e.prompt for e in task.examples("test", 5000)}
    for d in general:
        assert "<think>" not in d["prompt"]  # plain prompts only, never the R1-Zero one
        question = d["prompt"].removeprefix("Question: ").removesuffix("\nAnswer:").strip()
        assert question not in test_prompts  # drawn from the train split
        assert d["correct"] and d["response"].startswith(" ") and "<" not in d["response"]
    greet = [d for d in general if "Say hello to" in d["prompt"]]
    assert greet and all(d["response"].strip() == "Hello, " + d["prompt"].split("Say hello to ")[1].split(".")[0] + "!"
                         for d in greet)
