"""The pretraining corpus of the tiny reasoning world: documents of prompt + worked response.

Every document draws, independently: a prompt layout (the R1-Zero template, "Question:/Answer:", or the
bare problem), a response layout (``<think>…</think> <answer>…</answer>`` or plain prose ending in
"The answer is N."), a solution style (see ``solutions.py``) and a surface language (English, Spanish,
or a switch midway). The base model therefore starts RL with every behaviour R1-Zero is known for
(correct and sloppy reasoning, reflection, reasoning in a language other than the question's, a switch
of language midway, well- and ill-formatted answers) present
but rare, and RL has to find and amplify the ones that pay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from r1lab.tasks.arithmetic import ArithmeticTask
from r1lab.tasks.general import GeneralTask
from r1lab.tasks.languages import LEXICON
from r1lab.tasks.search import write_search
from r1lab.tasks.solutions import write_reasoning
from r1lab.tasks.target import TargetTask
from r1lab.tasks.templates import render_prompt


@dataclass
class CorpusMix:
    """Probabilities of each choice a document makes (each dict is normalised when drawn)."""

    styles: dict[str, float] = field(default_factory=lambda: {"direct": 0.3, "quick": 0.45, "careful": 0.25})
    # reasoning language relative to the question's: the same, the other one, or a switch midway
    langs: dict[str, float] = field(default_factory=lambda: {"same": 0.7, "other": 0.15, "mixed": 0.15})
    prompts: dict[str, float] = field(default_factory=lambda: {"r1zero": 0.4, "qa": 0.3, "bare": 0.3})
    tagged: float = 0.5          # share of responses in the <think>/<answer> layout
    slip_rate: float = 0.25      # per-operation slip probability in quick solutions
    # share of documents of each problem family: arithmetic chains, reach-a-target (target.py), and
    # optionally "general" (short instructions answered in plain text, general.py's train split). Without
    # general text the base never learns to copy a name or a word from the question, and rejection SFT's
    # few hundred examples do not teach it (0% held-out on greetings after rejection SFT); with 10% general
    # documents a base reached 35.2% general pass@1 on its own (greetings 10.9%, pass@8 34.6%). Not in the
    # default recipe yet: the stages after it have not been re-measured on such a base.
    tasks: dict[str, float] = field(default_factory=lambda: {"arith": 0.5, "target": 0.5})
    # reach-a-target writers (search.py): the answer alone, one combination, or a search that checks each
    search_styles: dict[str, float] = field(default_factory=lambda: {"direct": 0.3, "guess": 0.55, "search": 0.15})
    intuition: float = 0.3       # how often a writer's first combination is the right one
    task_options: dict = field(default_factory=dict)  # {"arith": {...}, "target": {...}}: the problems' knobs


def _draw(rng: random.Random, probs: dict[str, float]) -> str:
    keys = list(probs)
    return rng.choices(keys, weights=[probs[k] for k in keys])[0]


def _step_langs(rng: random.Random, choice: str, question_lang: str, n_steps: int) -> list[str]:
    """Surface language of each reasoning step; ``choice`` is "same", "other" or "mixed" (or a language)."""
    other = "es" if question_lang == "en" else "en"
    if choice in LEXICON:
        return [choice] * n_steps
    if choice == "same":
        return [question_lang] * n_steps
    if choice == "other":
        return [other] * n_steps
    first, second = rng.sample([question_lang, other], 2)
    switch = rng.randint(1, max(1, n_steps - 1))
    return [first if i < switch else second for i in range(n_steps)]


def format_response(reasoning: str, answer, tagged: bool, first_lang: str, last_lang: str) -> str:
    """Wrap reasoning and the final answer in the R1-Zero layout or in plain prose (opening phrase in the
    reasoning's first language, closing phrase in its last)."""
    if tagged:
        return f"<think> {reasoning} </think> <answer> {answer} </answer>" if reasoning else f"<think> </think> <answer> {answer} </answer>"
    body = f"{LEXICON[first_lang]['lets']} {reasoning} " if reasoning else ""
    return f"{body}{LEXICON[last_lang]['answer_is']} {answer}."


def arithmetic_document(task: ArithmeticTask, rng: random.Random, mix: CorpusMix) -> dict:
    """One training document drawn from the train split: {"prompt", "response", "style", "lang", "tagged", "correct"}."""
    while True:
        ex = task.sample(rng)
        if ex.meta["split"] == "train":
            break
    steps = ex.meta["steps"]
    style = _draw(rng, mix.styles)
    lang = _draw(rng, mix.langs)
    step_langs = _step_langs(rng, lang, ex.meta["lang"], len(steps))
    reasoning, final = write_reasoning(steps, style, step_langs, rng, mix.slip_rate)
    tagged = rng.random() < mix.tagged
    if style == "direct" and not tagged:
        reasoning = ""
    response = format_response(reasoning, final, tagged, step_langs[0], step_langs[-1])
    prompt = render_prompt(_draw(rng, mix.prompts), ex.prompt)
    return {"prompt": prompt, "response": response, "style": style, "lang": lang, "tagged": tagged,
            "question_lang": ex.meta["lang"], "correct": final == ex.reference}


def general_document(task: GeneralTask, rng: random.Random, mix: CorpusMix) -> dict:
    """One short instruction and its answer, from the general task's train split, as plain text (no
    reasoning block): the everyday text a base model reads, where copying a name or a word from the
    question, or picking the larger of two numbers, is learnt (same keys as ``arithmetic_document``)."""
    while True:
        ex = task.sample(rng)
        if ex.meta["split"] == "train":
            break
    # plain prompts only: an R1-Zero prompt asks for <think>/<answer> tags, which a plain answer lacks
    plain = {k: w for k, w in mix.prompts.items() if k != "r1zero"} or {"qa": 1.0}
    prompt = render_prompt(_draw(rng, plain), ex.prompt)
    return {"prompt": prompt, "response": " " + str(ex.reference), "style": "general", "lang": "same",
            "tagged": False, "question_lang": "en", "correct": True}


def target_document(task: TargetTask, rng: random.Random, mix: CorpusMix) -> dict:
    """One reach-a-target document from the train split (same keys as ``arithmetic_document``)."""
    while True:
        ex = task.sample(rng)
        if ex.meta["split"] == "train":
            break
    style = _draw(rng, mix.search_styles)
    lang = _draw(rng, mix.langs)
    step_langs = _step_langs(rng, lang, ex.meta["lang"], 4)
    reasoning, answer = write_search(ex.meta["nums"], ex.meta["ops"], ex.reference, style, step_langs, rng,
                                     mix.intuition)
    tagged = rng.random() < mix.tagged
    response = format_response(reasoning, answer, tagged, step_langs[0], step_langs[-1])
    prompt = render_prompt(_draw(rng, mix.prompts), ex.prompt)
    return {"prompt": prompt, "response": response, "style": style, "lang": lang, "tagged": tagged,
            "question_lang": ex.meta["lang"], "correct": task.verify(response, ex).correct}


def documents(n: int, seed: int, mix: CorpusMix | None = None, task: ArithmeticTask | None = None,
              target_task: TargetTask | None = None):
    """Yield ``n`` documents, deterministic for ``seed``."""
    mix = mix or CorpusMix()
    task = task or ArithmeticTask(**mix.task_options.get("arith", {}))
    target_task = target_task or TargetTask(**mix.task_options.get("target", {}))
    rng = random.Random(f"corpus:{seed}")
    general = GeneralTask()
    for _ in range(n):
        kind = _draw(rng, mix.tasks)
        if kind == "target":
            yield target_document(target_task, rng, mix)
        elif kind == "general":
            yield general_document(general, rng, mix)
        else:
            yield arithmetic_document(task, rng, mix)
