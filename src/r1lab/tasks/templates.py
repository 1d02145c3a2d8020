"""Prompt templates. ``r1zero`` is the R1-Zero training template, verbatim from R1-v1 Table 1."""

from __future__ import annotations

from r1lab.errors import UserError

R1ZERO = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {prompt}. Assistant:"
)

# The paper's evaluation instruction for math with chat models (R1 README, "Usage Recommendations").
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

TEMPLATES: dict[str, str] = {
    "r1zero": R1ZERO,
    "qa": "Question: {prompt}\nAnswer:",
    # a plain user/assistant turn (the default of `r1lab sft`; the R1 stages use "qa", see pipeline/r1.py)
    "user": "User: {prompt}\nAssistant:",
    "bare": "{prompt}\n",
}
CHAT = "chat"  # not a text template: the tokenizer's own chat template (models/prompting.py)


def with_instruction(problem: str, instruction: str | None) -> str:
    """The problem followed by the instruction on its own line (nothing added for None or "")."""
    return f"{problem}\n{instruction}" if instruction else problem


def join_text(prompt: str) -> str:
    """Separator between a prompt and its response: a space after a colon ("Assistant:", "Answer:")."""
    return " " if prompt.endswith(":") else ""


def render_prompt(template: str, prompt: str) -> str:
    """Fill a plain-text template. (Chat templates of HF tokenizers are applied in ``r1lab.models``.)"""
    if template not in TEMPLATES:
        raise UserError(f"unknown prompt template {template!r}; valid: {', '.join(TEMPLATES)}, chat")
    return TEMPLATES[template].format(prompt=prompt)


def render_example(template: str, example, tokenizer=None, instruction: str | None = None) -> str:
    """The prompt text of an example: conversational data (TRL's list of ``{role, content}`` turns, kept in
    ``meta["messages_prompt"]``) through the tokenizer's chat template; else the problem (followed by
    ``instruction`` on its own line, when given) in one user turn of the tokenizer's chat template for
    ``template="chat"``, or inside the plain ``template``."""
    meta = getattr(example, "meta", None) or {}
    if meta.get("conversational"):
        return render_turns(tokenizer, meta["messages_prompt"])
    problem = with_instruction(example.prompt, instruction)
    if template == CHAT:
        return render_turns(tokenizer, [{"role": "user", "content": problem}])
    return render_prompt(template, problem)


def render_turns(tokenizer, turns: list[dict]) -> str:
    """Conversation turns up to the assistant's reply, through the tokenizer's chat template."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise UserError("the data's prompts are conversations (lists of {role, content} turns) but the model's "
                        "tokenizer has no chat template; give plain-text prompts or a model with a chat template")
    return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
