"""Talking to a model: a conversation's prompt in the layout the model knows, streamed text with the
``<think>`` block shown apart from the answer, and the one-shot ``generate``.

The prompt layout: the tokenizer's chat template when it has one (instruct models), else one of r1lab's
plain templates (``qa`` by default: the layout R1's stages after R1-Zero are trained on). Earlier turns
are kept without their reasoning, as R1's chat template drops ``<think>`` content from the history.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from r1lab.rewards.format import reasoning_of
from r1lab.rollout.engine import NativeEngine, SamplingParams
from r1lab.tasks.templates import join_text, render_prompt

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
DIM, RESET = "\x1b[2m", "\x1b[0m"  # ANSI: faint text for the reasoning, then back to normal


def answer_of(text: str) -> str:
    """The part of a response after its reasoning block (the whole text when there is none), without
    R1-Zero's ``<answer>`` tags."""
    rest = text.split(THINK_CLOSE, 1)[1] if THINK_CLOSE in text else text
    m = re.search(r"<answer>(.*?)(?:</answer>|$)", rest, re.DOTALL)
    return (m.group(1) if m else rest).strip()


@dataclass
class Conversation:
    """The turns so far and how to lay them out as one prompt."""

    tokenizer: object
    template: str = "qa"            # "chat" (the tokenizer's chat template) or a plain template name
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant answer without reasoning)

    def prompt(self, user: str) -> str:
        if self.template == "chat":
            messages = []
            for q, a in self.turns:
                messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            messages.append({"role": "user", "content": user})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        history = ""
        for q, a in self.turns:
            p = render_prompt(self.template, q)
            history += f"{p}{join_text(p)}{a}\n\n"
        return history + render_prompt(self.template, user)

    def add(self, user: str, response: str) -> None:
        self.turns.append((user, answer_of(response)))

    def reset(self) -> None:
        self.turns.clear()


class ThinkPrinter:
    """Writes streamed text, the ``<think>`` block faint on a terminal (or between the tags, as sampled,
    elsewhere), the answer in normal text. Holds back a partial tag until it is complete."""

    def __init__(self, out=None, color: bool | None = None):
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self.thinking = False
        self.pending = ""

    def write(self, piece: str) -> None:
        self.pending += piece
        while self.pending:
            tag = THINK_CLOSE if self.thinking else THINK_OPEN
            i = self.pending.find(tag)
            if i < 0:
                # keep a tail that could still grow into the tag; write the rest
                keep = next((k for k in range(min(len(tag) - 1, len(self.pending)), 0, -1)
                             if tag.startswith(self.pending[-k:])), 0)
                self._emit(self.pending[: len(self.pending) - keep])
                self.pending = self.pending[len(self.pending) - keep:]
                return
            self._emit(self.pending[:i])
            self.pending = self.pending[i + len(tag):]
            self._switch(not self.thinking)

    def _switch(self, thinking: bool) -> None:
        self.thinking = thinking
        if self.color:
            self.out.write(DIM + "thinking: " if thinking else RESET + "\n")
        else:
            self.out.write(THINK_OPEN if thinking else THINK_CLOSE)

    def _emit(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    def close(self) -> None:
        self._emit(self.pending)
        self.pending = ""
        if self.thinking and self.color:
            self.out.write(RESET)
        self.thinking = False
        self.out.write("\n")
        self.out.flush()


class TextStream:
    """Token ids of row 0 in, new text out: decodes the ids so far and hands on what was added (multi-byte
    characters appear once their last byte is sampled)."""

    def __init__(self, tokenizer, write):
        self.tokenizer, self.write = tokenizer, write
        self.ids: list[int] = []
        self.text = ""

    def __call__(self, rows: list[int], tokens: list[int]) -> None:
        if 0 not in rows:  # row 0 is the one response being streamed
            return
        self.ids.append(tokens[rows.index(0)])
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # half a character: wait for the rest
            return
        self.write(text[len(self.text):])
        self.text = text


def stream_reply(engine: NativeEngine, prompt: str, sampling: SamplingParams, out=None, color=None) -> str:
    """Sample one response to ``prompt``, writing it as it is sampled; returns its text."""
    printer = ThinkPrinter(out, color)
    (rollout,) = engine.generate([prompt], 1, sampling, on_tokens=TextStream(engine.tokenizer, printer.write))
    printer.close()
    return rollout.text


def sample_replies(engine: NativeEngine, prompt: str, samples: int, sampling: SamplingParams) -> list[dict]:
    """``samples`` responses to ``prompt``, each split into reasoning and answer."""
    rollouts = engine.generate([prompt], samples, sampling)
    return [{"text": r.text, "reasoning": reasoning_of(r.text).strip() if THINK_OPEN in r.text else "",
             "answer": answer_of(r.text), "finish_reason": r.finish_reason, "tokens": len(r.token_ids)}
            for r in rollouts]


HELP = "/reset clears the conversation, /temperature T sets the sampling temperature, /help, Ctrl-D quits"


@dataclass
class ChatSettings:
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 512
    seed: int | None = None   # None: fresh randomness every reply


def command(line: str, conv: Conversation, settings: ChatSettings) -> str:
    """Apply a /command; returns the line to show."""
    name, _, arg = line[1:].partition(" ")
    if name == "reset":
        conv.reset()
        return "(conversation reset)"
    if name == "temperature":
        try:
            value = float(arg)
        except ValueError:
            return f"(/temperature needs a number, e.g. /temperature 0.6; it is {settings.temperature})"
        if value < 0:
            return "(the temperature must be >= 0; 0 is greedy)"
        settings.temperature = value
        return f"(temperature {value})"
    if name == "help":
        return f"({HELP})"
    return f"(unknown command /{name}; {HELP})"


def chat_loop(engine: NativeEngine, conv: Conversation, settings: ChatSettings, read=input, out=None,
              color: bool | None = None) -> int:
    """Read a line, stream the reply, until end of input (Ctrl-D). Ctrl-C stops the reply being written."""
    out = out or sys.stdout
    turn = 0
    while True:
        try:
            line = read(">>> ").strip()
        except EOFError:
            out.write("\n")
            return 0
        except KeyboardInterrupt:
            out.write("\n")
            continue
        if not line:
            continue
        if line.startswith("/"):
            out.write(command(line, conv, settings) + "\n")
            continue
        seed = None if settings.seed is None else settings.seed + turn
        sampling = SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                                  max_new_tokens=settings.max_new_tokens, seed=seed)
        turn += 1
        try:
            reply = stream_reply(engine, conv.prompt(line), sampling, out, color)
        except KeyboardInterrupt:
            out.write("\n(reply stopped)\n")
            continue
        conv.add(line, reply)
