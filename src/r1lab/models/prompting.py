"""Prompts for any model: r1lab's plain templates, or the tokenizer's own chat template.

``chat`` follows DeepSeek-R1's usage recommendations (R1 README): no system prompt, every instruction in
the user turn, for math the instruction "Please reason step by step, and put your final answer within
\\boxed{}." (``BOXED_INSTRUCTION``), and optionally the response forced to start with "<think>\\n".

"No system prompt" means r1lab passes none. Some chat templates then insert a default one of their own
(SmolLM2's adds "You are a helpful AI assistant named SmolLM, trained by Hugging Face"; Qwen2.5's adds
"You are Qwen, created by Alibaba Cloud..."). r1lab keeps it: it is what the model saw in fine-tuning
whenever no system prompt was given, so it is the model's own "no system prompt" behaviour.
``default_system_prompt`` finds such an insertion so that callers can report it.
"""

from __future__ import annotations

from r1lab.errors import UserError
from r1lab.tasks.templates import BOXED_INSTRUCTION, CHAT, TEMPLATES, render_prompt, with_instruction

THINK_PREFIX = "<think>\n"
# Probe strings for reading a chat template's layout; no template treats them specially.
_PROBE_USER = "r1lab-probe-user-5e1f"
_PROBE_SYSTEM = "r1lab-probe-system-9c2d"


def template_names() -> list[str]:
    return [*TEMPLATES, CHAT]


def check_template(template: str) -> None:
    """UserError for a name that is neither a plain template nor ``chat`` (call before loading a model)."""
    if template != CHAT:
        render_prompt(template, "")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def default_template(tokenizer) -> str:
    """``chat`` for a tokenizer that has a chat template (instruct/chat models), else ``r1zero``."""
    return CHAT if has_chat_template(tokenizer) else "r1zero"


def chat_prompt(tokenizer, content: str) -> str:
    """One user turn with ``content`` and the assistant's generation prompt, as text (special tokens
    included, so it must be encoded without adding special tokens again)."""
    messages = [{"role": "user", "content": content}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def default_system_prompt(tokenizer) -> str | None:
    """The system text the chat template inserts when none is given, or None if it inserts none.

    Found by layout, not by name: render [user: U] and [system: S, user: U]; when the second reads
    ``head + S + tail + U ...`` and the first reads ``head + X + tail + U ...``, X is the default.
    """
    if not has_chat_template(tokenizer):
        return None
    alone = chat_prompt(tokenizer, _PROBE_USER)
    try:
        both = tokenizer.apply_chat_template(
            [{"role": "system", "content": _PROBE_SYSTEM}, {"role": "user", "content": _PROBE_USER}],
            tokenize=False, add_generation_prompt=True)
    except Exception:  # templates without a system role raise (e.g. Gemma's): they cannot insert one
        return None
    if _PROBE_SYSTEM not in both or _PROBE_USER not in both or _PROBE_USER not in alone:
        return None
    head, rest = both.split(_PROBE_SYSTEM, 1)
    tail = rest.split(_PROBE_USER, 1)[0]
    before_user = alone.split(_PROBE_USER, 1)[0]
    if not (before_user.startswith(head) and before_user.endswith(tail)) or len(before_user) < len(head) + len(tail):
        return None
    inserted = before_user[len(head): len(before_user) - len(tail)]
    return inserted or None


def build_prompts(tokenizer, problems: list[str], template: str, *, instruction: str | None = None,
                  think_prefix: bool = False) -> list[str]:
    """One prompt string per problem.

    ``template``: a plain r1lab template (``r1zero``, ``qa``, ``bare``: the tokenizer is not used) or
    ``chat`` (the tokenizer's chat template, one user message, generation prompt added, no system prompt).
    ``instruction`` is appended to each problem on its own line; None means the template's default:
    ``BOXED_INSTRUCTION`` for ``chat``, nothing for the plain templates (r1zero states its own format);
    "" means none. ``think_prefix`` ends every prompt with "<think>\\n", so the response starts inside
    the reasoning block (R1 README); the response text then lacks the opening tag.
    """
    if template == CHAT:
        if not has_chat_template(tokenizer):
            raise UserError("template 'chat' needs a tokenizer with a chat template, and this one has none; "
                            f"use one of {', '.join(TEMPLATES)}")
        text = BOXED_INSTRUCTION if instruction is None else instruction
        prompts = [chat_prompt(tokenizer, with_instruction(p, text)) for p in problems]
    else:
        check_template(template)
        prompts = [render_prompt(template, with_instruction(p, instruction)) for p in problems]
    if think_prefix:
        # Plain templates end with "Assistant:" or "Answer:": keep a space before the tag, as the R1-Zero
        # layout has it. Chat templates end where the assistant's text begins: nothing may go in between.
        sep = "" if template == CHAT else " "
        prompts = [(p if not p or p[-1].isspace() else p + sep) + THINK_PREFIX for p in prompts]
    return prompts
