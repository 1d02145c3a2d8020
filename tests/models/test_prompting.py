"""build_prompts: chat layout, R1's boxed instruction, the <think> prefix, plain templates, errors."""

from __future__ import annotations

import copy

import pytest

from r1lab.errors import UserError
from r1lab.models.prompting import (CHAT, build_prompts, check_template, default_system_prompt, default_template,
                                    template_names)
from r1lab.tasks.templates import BOXED_INSTRUCTION, TEMPLATES, render_prompt

# ChatML, and a default system turn when the conversation has none (the layout of SmolLM2's and Qwen2.5's).
CHATML_DEFAULT_SYSTEM = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a tiny helper.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# No system turn unless given (the layout of DeepSeek-R1's distilled models).
PLAIN_CHAT = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}{% else %}"
              "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Rejects a system role (the layout of Gemma's).
NO_SYSTEM_ROLE = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
                  "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

PROBLEM = "Compute (47+38)*3"


def with_template(tokenizer, template: str | None):
    tok = copy.deepcopy(tokenizer)  # the session tokenizer is shared: never mutate it
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = template
    return tok


@pytest.fixture(scope="module")
def chat_tok(tiny_tokenizer):
    return with_template(tiny_tokenizer, CHATML_DEFAULT_SYSTEM)


def test_chat_layout_with_the_boxed_instruction(chat_tok):
    [prompt] = build_prompts(chat_tok, [PROBLEM], CHAT)
    assert prompt == ("<|im_start|>system\nYou are a tiny helper.<|im_end|>\n"
                      f"<|im_start|>user\n{PROBLEM}\n{BOXED_INSTRUCTION}<|im_end|>\n"
                      "<|im_start|>assistant\n")
    assert BOXED_INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."


def test_chat_prompt_encodes_its_turn_markers_as_single_tokens(chat_tok):
    [prompt] = build_prompts(chat_tok, [PROBLEM], CHAT)
    ids = chat_tok(prompt, add_special_tokens=False)["input_ids"]  # how the rollout engine encodes prompts
    start = chat_tok.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(start) == 3 and ids[-1] != start
    assert chat_tok.decode(ids) == prompt


def test_instruction_override_and_none(chat_tok):
    [custom] = build_prompts(chat_tok, [PROBLEM], CHAT, instruction="Answer with a number.")
    assert f"user\n{PROBLEM}\nAnswer with a number.<|im_end|>" in custom
    [bare] = build_prompts(chat_tok, [PROBLEM], CHAT, instruction="")
    assert f"user\n{PROBLEM}<|im_end|>" in bare and "boxed" not in bare


def test_think_prefix_starts_the_response_inside_the_reasoning(chat_tok):
    [prompt] = build_prompts(chat_tok, [PROBLEM], CHAT, think_prefix=True)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    [r1zero] = build_prompts(chat_tok, [PROBLEM], "r1zero", think_prefix=True)
    assert r1zero == render_prompt("r1zero", PROBLEM) + " <think>\n"
    [bare] = build_prompts(chat_tok, [PROBLEM], "bare", think_prefix=True)
    assert bare == f"{PROBLEM}\n<think>\n"


def test_plain_templates_match_render_prompt(tiny_tokenizer):
    problems = [PROBLEM, "Compute 12+5"]
    for name in TEMPLATES:
        assert build_prompts(tiny_tokenizer, problems, name) == [render_prompt(name, p) for p in problems]
    [qa] = build_prompts(tiny_tokenizer, [PROBLEM], "qa", instruction=BOXED_INSTRUCTION)
    assert qa == f"Question: {PROBLEM}\n{BOXED_INSTRUCTION}\nAnswer:"


def test_one_prompt_per_problem_in_order(chat_tok):
    problems = [f"Compute {i}+1" for i in range(5)]
    prompts = build_prompts(chat_tok, problems, CHAT)
    assert len(prompts) == 5 and all(f"Compute {i}+1\n" in p for i, p in enumerate(prompts))
    assert build_prompts(chat_tok, [], CHAT) == []


def test_chat_without_a_chat_template_is_a_user_error(tiny_tokenizer):
    assert not getattr(tiny_tokenizer, "chat_template", None)
    with pytest.raises(UserError, match="template 'chat' needs a tokenizer with a chat template.*r1zero"):
        build_prompts(tiny_tokenizer, [PROBLEM], CHAT)


def test_unknown_template_is_a_user_error(chat_tok):
    with pytest.raises(UserError, match="unknown prompt template 'chatml'.*chat"):
        build_prompts(chat_tok, [PROBLEM], "chatml")
    with pytest.raises(UserError):
        check_template("nope")
    check_template(CHAT)
    assert template_names() == [*TEMPLATES, "chat"]


def test_default_template(tiny_tokenizer, chat_tok):
    assert default_template(chat_tok) == CHAT
    assert default_template(tiny_tokenizer) == "r1zero"


def test_default_system_prompt_is_detected(tiny_tokenizer, chat_tok):
    assert default_system_prompt(chat_tok) == "You are a tiny helper."
    assert default_system_prompt(with_template(tiny_tokenizer, PLAIN_CHAT)) is None
    assert default_system_prompt(with_template(tiny_tokenizer, NO_SYSTEM_ROLE)) is None
    assert default_system_prompt(tiny_tokenizer) is None
    # no system prompt is passed: a template without a default has none in the prompt
    [prompt] = build_prompts(with_template(tiny_tokenizer, PLAIN_CHAT), [PROBLEM], CHAT)
    assert prompt.startswith("<|im_start|>user\n")
