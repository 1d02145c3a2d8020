"""Talking to a model: token streaming from the native sampler, the <think> display, the conversation's
prompt, `r1lab generate` by its output and `r1lab chat` through a pseudo-terminal."""

from __future__ import annotations

import copy
import io
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest
import torch

from r1lab.rollout import NativeEngine, SamplingParams
from r1lab.rollout.chat import (DIM, RESET, ChatSettings, Conversation, TextStream, ThinkPrinter, answer_of,
                                chat_loop)

from conftest import make_model


def test_streamed_tokens_are_the_rollouts_tokens(tiny_tokenizer):
    engine = NativeEngine(make_model(tiny_tokenizer), tiny_tokenizer)
    seen: dict[int, list[int]] = {}

    def on_tokens(rows, tokens):
        assert len(rows) == len(set(rows))
        for r, t in zip(rows, tokens):
            seen.setdefault(r, []).append(t)

    prompts = ["Question: 1+1?\nAnswer:", "Question: 2+5?\nAnswer:", "hi"]
    # an eos that some rows sample early: finished rows leave the batch and stop streaming
    eos = NativeEngine(make_model(tiny_tokenizer), tiny_tokenizer)
    for eng in (engine, eos):
        seen.clear()
        out = eng.generate(prompts, 2, SamplingParams(temperature=1.0, max_new_tokens=20, seed=3), on_tokens=on_tokens)
        assert sorted(seen) == list(range(6))
        assert [seen[i] for i in range(6)] == [r.token_ids for r in out]
        eos.eos_ids = {int(out[0].token_ids[2]), *eos.eos_ids}  # the second pass has rows that end early
    assert any(r.finish_reason == "eos" for r in out) and any(len(seen[i]) < 20 for i in range(6))


def test_text_stream_writes_each_character_once(tiny_tokenizer):
    text = "wait, 7+8 is 15 — ¿no? ✓ done"
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = []
    stream = TextStream(tiny_tokenizer, pieces.append)
    for t in ids:
        stream([0, 1], [t, 0])  # row 1 is not streamed
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


@pytest.mark.parametrize("cuts", [(), (3,), (5, 9), (1, 2, 3, 4, 5, 6, 7, 20, 21, 22)])
def test_think_block_is_shown_apart_wherever_the_stream_is_cut(cuts):
    text = "<think> 2+3=5, check: yes </think> The answer is 5."
    bounds = [0, *cuts, len(text)]
    plain, color = io.StringIO(), io.StringIO()
    for out, c in ((plain, False), (color, True)):
        printer = ThinkPrinter(out, color=c)
        for a, b in zip(bounds, bounds[1:]):
            printer.write(text[a:b])
        printer.close()
    assert plain.getvalue() == text + "\n"
    assert color.getvalue() == f"{DIM}thinking:  2+3=5, check: yes {RESET}\n The answer is 5.\n"


def test_answer_of():
    assert answer_of("<think> r </think> The answer is 5.") == "The answer is 5."
    assert answer_of("<think> r </think> <answer> 5 </answer>") == "5"
    assert answer_of("just text") == "just text"


def test_conversation_keeps_answers_without_reasoning(tiny_tokenizer):
    conv = Conversation(tiny_tokenizer, "qa")
    conv.add("1+1?", "<think> one and one </think> 2")
    assert conv.prompt("2+2?") == "Question: 1+1?\nAnswer: 2\n\nQuestion: 2+2?\nAnswer:"
    conv.reset()
    assert conv.prompt("2+2?") == "Question: 2+2?\nAnswer:"
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}[assistant]"
    chat = Conversation(tok, "chat")
    chat.add("hi", "<think> greet </think> hello")
    assert chat.prompt("bye") == "[user]hi[assistant]hello[user]bye[assistant]"


def test_chat_loop_commands_and_turns(tiny_tokenizer):
    engine = NativeEngine(make_model(tiny_tokenizer), tiny_tokenizer)
    conv, settings = Conversation(tiny_tokenizer, "qa"), ChatSettings(max_new_tokens=4, seed=0)
    lines = iter(["/temperature 0.25", "/temperature hot", "1+1?", "/bogus", "/reset", "2+2?"])
    turns_seen = []

    def read(prompt):
        turns_seen.append(len(conv.turns))
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    assert chat_loop(engine, conv, settings, read=read, out=out, color=False) == 0
    text = out.getvalue()
    assert settings.temperature == 0.25
    assert "(temperature 0.25)" in text and "/temperature needs a number" in text and "unknown command /bogus" in text
    assert "(conversation reset)" in text
    assert turns_seen == [0, 0, 0, 1, 1, 0, 1]  # one turn after 1+1?, none after /reset, one after 2+2?


def r1lab(*args, timeout=120):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "r1lab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_generate_prints_k_samples_reproducibly(tiny_model_dir):
    args = ["generate", "--model", str(tiny_model_dir), "What is 2+3?", "--samples", "3", "--max-new-tokens", "8",
            "--json"]
    first, again = r1lab(*args), r1lab(*args)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["template"] == "qa" and out["prompt"] == "Question: What is 2+3?\nAnswer:"
    assert len(out["samples"]) == 3 and all(1 <= s["tokens"] <= 8 for s in out["samples"])
    assert json.loads(again.stdout) == out  # seed 0 by default
    assert len({s["text"] for s in out["samples"]}) > 1
    other = json.loads(r1lab(*args, "--seed", "1").stdout)
    assert other["samples"] != out["samples"]
    one = ["generate", "--model", str(tiny_model_dir), "What is 2+3?", "--max-new-tokens", "8"]
    plain, as_json = r1lab(*one), json.loads(r1lab(*one, "--json").stdout)
    assert plain.returncode == 0 and plain.stdout == as_json["samples"][0]["text"] + "\n"  # no terminal: as sampled


class Pty:
    """A command on a pseudo-terminal: what a user at a terminal sees and types."""

    def __init__(self, argv):
        self.master, slave = pty.openpty()
        env = dict(os.environ, PYTHONWARNINGS="ignore", TERM="dumb")
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.seen, self.pos = "", 0

    def read_until(self, needle: str, timeout: float = 300.0) -> str:  # generous: a loaded machine is slow
        """What the terminal shows from the end of the last needle found up to the end of this one (a read
        may bring two needles at once: the next search starts where the last one ended, not at the end of
        what was read)."""
        start, end = self.pos, time.time() + timeout
        while needle not in self.seen[start:]:
            ready, _, _ = select.select([self.master], [], [], max(0.0, end - time.time()))
            if not ready:
                raise AssertionError(f"no {needle!r} on the terminal; it shows:\n{self.seen[-2000:]}")
            try:
                self.seen += os.read(self.master, 4096).decode("utf-8", "replace").replace("\r\n", "\n")
            except OSError:  # the child closed the terminal
                raise AssertionError(f"the command ended before {needle!r}; it showed:\n{self.seen[-2000:]}")
        self.pos = self.seen.index(needle, start) + len(needle)
        return self.seen[start:self.pos]

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())


def test_chat_on_a_terminal(tiny_model_dir):
    expected = json.loads(r1lab("generate", "--model", str(tiny_model_dir), "hello there", "--max-new-tokens", "10",
                                "--seed", "5", "--json").stdout)["samples"][0]["text"]
    term = Pty([sys.executable, "-m", "r1lab", "chat", "--model", str(tiny_model_dir), "--max-new-tokens", "10",
                "--seed", "5"])
    try:
        term.read_until("Ctrl-D quits")
        term.read_until(">>> ")
        term.type("hello there\n")
        reply = term.read_until(">>> ")
        # the reply streamed on the terminal is the one `generate` samples with the same seed and prompt
        assert expected.strip() and expected in reply.replace(DIM, "").replace(RESET, "")
        term.type("/temperature 0.3\n")
        assert "(temperature 0.3)" in term.read_until(">>> ")
        term.type("/reset\n")
        assert "(conversation reset)" in term.read_until(">>> ")
        term.type("\x04")  # Ctrl-D
        assert term.proc.wait(timeout=60) == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
        os.close(term.master)


def test_chat_refuses_a_bad_model_before_reading_input(tmp_path):
    p = r1lab("chat", "--model", str(tmp_path / "absent"))
    assert p.returncode == 2 and p.stderr.count("error:") == 1 and "absent" in p.stderr
