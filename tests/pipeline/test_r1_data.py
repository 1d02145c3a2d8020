"""The R1 recipe's data plumbing: language balancing of SFT sets, and preference pairs."""

from collections import Counter

from r1lab.pipeline.r1 import balance_kinds, balance_languages
from r1lab.tasks.readable import world_solution
from r1lab.rewards.behaviour import language_consistency
from r1lab.rewards.format import is_r1_format, reasoning_of
from r1lab.tasks import get_task
from r1lab.tasks.general import GeneralTask, normalise, preference_pairs


def test_balance_languages_tops_up_the_missing_language_to_its_share():
    examples = get_task("arith", question_langs={"en": 0.7, "es": 0.3}).examples("train", n=200, seed=3)
    share_es = sum(e.meta["lang"] == "es" for e in examples) / len(examples)
    # a drifted model: only English questions survived the language filter
    rows = [{"id": e.id, "question": e.prompt, "response": "x", "source": "sampled", "lang": "en"}
            for e in examples if e.meta["lang"] == "en"][:100]
    out = balance_languages(list(rows), examples, get_task("arith"))
    counts = Counter(r["lang"] for r in out)
    assert counts["en"] == 100
    assert abs(counts["es"] - share_es * len(out)) <= 1         # its share of the prompts, to one example
    world = [r for r in out if r["source"] == "world"]
    assert world and all(r["lang"] == "es" for r in world)
    assert len({r["id"] for r in out}) == len(out)              # never the same question twice
    by_id = {e.id: e for e in examples}
    task = get_task("arith")
    for r in world:  # world-written solutions are correct, readable, and in the question's language
        assert task.verify(r["response"], by_id[r["id"]]).correct
        assert is_r1_format(r["response"])
        assert language_consistency(reasoning_of(r["response"]), "es") == 1.0


def test_balance_languages_leaves_a_balanced_set_alone():
    examples = get_task("arith").examples("train", n=50, seed=4)
    rows = [{"id": e.id, "question": e.prompt, "response": world_solution(e), "source": "sampled",
             "lang": e.meta["lang"]} for e in examples]
    assert balance_languages(list(rows), examples, get_task("arith")) == rows


def test_balance_kinds_tops_up_a_kind_drifted_away_within_a_language():
    """A model that answers one kind of English question in another language leaves none of that kind in
    the filtered set: world-written solutions bring it to its share of the English rows, in English."""
    task = get_task("mixture", components={"arith": 0.5, "target": 0.5})
    examples = task.examples("train", n=300, seed=5)
    english = [e for e in examples if e.meta["lang"] == "en"]
    share = sum(e.meta["task"] == "arith" for e in english) / len(english)
    rows = [{"id": e.id, "question": e.prompt, "response": "x", "source": "sampled", "lang": e.meta["lang"]}
            for e in examples if not (e.meta["lang"] == "en" and e.meta["task"] == "arith")]
    out = balance_kinds(list(rows), examples, task)
    assert out[:len(rows)] == rows                              # what was sampled stays, in order
    by_id = {e.id: e for e in examples}
    added = out[len(rows):]
    assert added and all(r["source"] == "world" and r["lang"] == "en" for r in added)
    assert all(by_id[r["id"]].meta["task"] == "arith" for r in added)
    n_en = sum(r["lang"] == "en" for r in rows)
    assert abs(len(added) - round(share * n_en)) <= 1             # its share of the English rows
    assert len({r["id"] for r in out}) == len(out)
    for r in added:  # correct, readable, in the question's language
        ex = by_id[r["id"]]
        assert task.verify(r["response"], ex).correct and is_r1_format(r["response"])
        assert language_consistency(reasoning_of(r["response"]), "en") == 1.0
    # every kind at its share already: nothing added
    full = [{"id": e.id, "question": e.prompt, "response": "x", "source": "sampled", "lang": e.meta["lang"]}
            for e in examples]
    assert balance_kinds(list(full), examples, task) == full


def test_preference_pairs_cover_off_topic_and_far_wrong_answers():
    pairs = preference_pairs(600, "train", seed=0)
    kinds = Counter(p["why"] for p in pairs)
    assert set(kinds) == {"wrong", "off_topic", "repetitive", "refusal", "rambling"}
    assert all(normalise(p["chosen"]) != normalise(p["rejected"]) for p in pairs)
    task = GeneralTask()
    by_prompt = {e.prompt: e for e in task.examples("train", n=600, seed=0)}
    for p in pairs:
        ex = by_prompt[p["prompt"]]
        assert task.verify(p["chosen"], ex).correct and not task.verify(p["rejected"], ex).correct
    far = [p for p in pairs if p["why"] == "wrong" and p["rejected"].split()[-1].isdigit()
           and abs(int(p["rejected"].split()[-1]) - int(by_prompt[p["prompt"]].reference)) > 10]
    assert far, "wrong numeric answers include far misses"


def test_every_general_family_but_translation_has_hundreds_of_prompts():
    """Distinct examples are drawn: a family with few prompts is used up and the others fill the set.
    Greetings and repetitions each keep at least a sixth of 1256 training and 300 held-out examples."""
    task = GeneralTask()
    for split, n in (("train", 1256), ("test", 300)):
        fams = Counter(e.meta["family"] for e in task.examples(split, n=n, seed=12))
        for fam in ("greet", "repeat", "next", "larger"):
            assert fams[fam] >= n / 7, (split, fams)
    greet = [e for e in task.examples("train", n=400, seed=0) if e.meta["family"] == "greet"]
    assert all(task.verify(f"<think> </think> Hello, {e.prompt.split()[-1][:-1]}!", e).correct for e in greet)
