"""Few-shot prompts: K solved training examples before the question (``r1lab eval --shots K``).

The paper evaluates R1 zero-shot and reports that "few-shot prompting consistently degrades its
performance" (R1-v1 §5, "Prompting Engineering"; the seed's "prompt sensitivity"). This module builds the
prompts that let that be measured: the shots are drawn from the task's *train* split (never the problems
being evaluated), deterministically by seed, and answered in the layout the model was trained to write.
"""

from __future__ import annotations

import random

from r1lab.errors import UserError
from r1lab.models.prompting import CHAT, THINK_PREFIX, build_prompts, has_chat_template, with_instruction
from r1lab.tasks.templates import BOXED_INSTRUCTION, join_text, render_prompt


def demonstration(task, example, layout: str) -> str:
    """A solved answer to ``example``: the task's own worked solution when it has one (``solution``),
    else the reference answer, in the ``layout`` the model writes ("r1" readable, or "r1zero")."""
    solve = getattr(task, "solution", None)
    if solve is not None:
        return solve(example, layout)
    if layout == "r1zero":
        return f"<think> </think> <answer> {example.reference} </answer>"
    return f"<think> </think> The answer is {example.reference}."


def shot_examples(task, k: int, seed: int) -> list:
    """``k`` distinct training examples for the shots, deterministic for ``seed``."""
    try:
        pool = task.examples("train", n=k, seed=seed + 7_919)
    except ValueError:  # a finite data set: all of its training examples, shuffled
        pool = task.examples("train", seed=seed + 7_919)
        random.Random(seed).shuffle(pool)
    if len(pool) < k:
        raise UserError(f"--shots {k}: the task has only {len(pool)} training examples to show")
    return pool[:k]


def fewshot_prompts(tokenizer, task, problems: list[str], template: str, shots: int, seed: int,
                    layout: str = "r1", instruction: str | None = None, think_prefix: bool = False) -> list[str]:
    """One prompt per problem with the same ``shots`` solved examples in front of it.

    Plain templates repeat the template for each shot ("Question: q1\\nAnswer: a1\\n\\nQuestion: q\\nAnswer:");
    ``chat`` puts them in as earlier user/assistant turns. ``shots=0`` is ``build_prompts`` unchanged.
    """
    if shots <= 0:
        return build_prompts(tokenizer, problems, template, instruction=instruction, think_prefix=think_prefix)
    demos = [(e.prompt, demonstration(task, e, layout)) for e in shot_examples(task, shots, seed)]
    if template != CHAT:
        prefix = "".join(f"{render_prompt(template, q)}{join_text(render_prompt(template, q))}{a}\n\n" for q, a in demos)
        return [prefix + p for p in build_prompts(tokenizer, problems, template, instruction=instruction,
                                                  think_prefix=think_prefix)]
    if not has_chat_template(tokenizer):
        raise UserError("template 'chat' needs a tokenizer with a chat template, and this one has none")
    text = BOXED_INSTRUCTION if instruction is None else instruction
    turns = []
    for q, a in demos:
        turns += [{"role": "user", "content": with_instruction(q, text)}, {"role": "assistant", "content": a}]
    prompts = [tokenizer.apply_chat_template(turns + [{"role": "user", "content": with_instruction(p, text)}],
                                             tokenize=False, add_generation_prompt=True) for p in problems]
    return [p + THINK_PREFIX for p in prompts] if think_prefix else prompts
