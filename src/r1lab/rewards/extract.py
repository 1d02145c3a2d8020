"""Final-answer extraction from free-form responses.

Order of preference: the last ``<answer>…</answer>`` block, the last ``\\boxed{…}`` (braces matched),
"the answer is …", a final "A: …" line, and the last number as a fallback.
Never raises; returns None when nothing answer-like is found.
"""

from __future__ import annotations

import re

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_ANSWER_IS = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s+is\s*[:：]?\s*(.+)", re.IGNORECASE)
_A_LINE = re.compile(r"^\s*A\s*[:：]\s*(.+?)\s*$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` with balanced braces; None if absent/unbalanced."""
    best = None
    for key in ("\\boxed", "\\fbox"):
        idx = text.rfind(key)
        if idx > (best[0] if best else -1):
            best = (idx, key)
    if best is None:
        return None
    i = best[0] + len(best[1])
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":  # "\boxed 5" form
        m = re.match(r"[^\s$]+", text[i:])
        return m.group(0) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def answer_tag(text: str) -> str | None:
    """Content of the last complete ``<answer>…</answer>`` block, stripped."""
    found = _ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def extract_answer(text: str) -> tuple[str | None, str]:
    """Return (answer, where) with ``where`` in {"answer_tag", "boxed", "answer_is", "a_line", "last_number", "none"}."""
    if not isinstance(text, str) or not text:
        return None, "none"
    tagged = answer_tag(text)
    if tagged is not None:
        inner = last_boxed(tagged)
        return (inner if inner is not None else tagged), "answer_tag"
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip(), "boxed"
    is_matches = list(_ANSWER_IS.finditer(text))
    if is_matches:
        ans = is_matches[-1].group(1).strip().split("\n")[0]
        return ans.rstrip(" ."), "answer_is"
    a_lines = _A_LINE.findall(text)
    if a_lines:
        return a_lines[-1].rstrip(" ."), "a_line"
    num = last_number(text)
    if num is not None:
        return num, "last_number"
    return None, "none"
