"""R1's math benchmarks (MATH-500, AIME 2024, AMC 2023, GSM8K); user data is ``tasks/data.py``.

All of them are graded by ``r1lab.rewards.math.grade``: the final answer is taken from the response
(last \\boxed{}, <answer> tags, "the answer is", ...) and compared with the gold answer by math-verify
plus r1lab's own normalisation.

Benchmark files are JSONL with ``id``, ``problem``, ``answer`` (see ``FILE_NAMES``). They are looked up in:
the ``data_dir`` option; else ``$R1LAB_DATA`` (the folder holding the files, or its ``benchmarks/``);
else ``./data/benchmarks``; else ``shared/data/benchmarks`` or ``../shared/data/benchmarks`` in the
working directory or any folder above it. ``download(name, dest_dir)`` fetches them from their public
sources when online.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Callable

from r1lab.errors import UserError
from r1lab.rewards.math import grade_detail
from r1lab.runtime.io import read_jsonl_numbered, write_jsonl_atomic
from r1lab.tasks.base import Example, Verdict, register_task

FILE_NAMES: dict[str, str] = {
    "math500": "math500.jsonl",
    "aime24": "aime24.jsonl",
    "amc23": "amc23.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
}

# Original public files (see the data folder's SOURCES.md for provenance and licenses).
SOURCE_URLS: dict[str, str] = {
    "math500": "https://huggingface.co/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl",
    "aime24": "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/main/evaluation/data/aime24/test.jsonl",
    "amc23": "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/main/evaluation/data/amc23/test.jsonl",
    "gsm8k": "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl",
}

_HOW_TO_GET = ("get the files with `python -c \"from r1lab.tasks.benchmarks import download; "
               "download('{name}', 'data/benchmarks')\"` (needs internet), or point the data_dir option "
               "or $R1LAB_DATA at a folder holding {file}")


# ---------------------------------------------------------------------------------------------------------
# locating and reading data
# ---------------------------------------------------------------------------------------------------------

def candidate_dirs(data_dir: str | os.PathLike | None = None, cwd: Path | None = None) -> list[Path]:
    """Folders searched for benchmark files, in order; an explicit ``data_dir`` or ``$R1LAB_DATA`` is the only one."""
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get("R1LAB_DATA"):
        root = Path(os.environ["R1LAB_DATA"])
        return [root, root / "benchmarks"]
    cwd = Path.cwd() if cwd is None else cwd
    dirs = [cwd / "data" / "benchmarks"]
    for up in [cwd, *cwd.parents]:
        dirs += [up / "shared" / "data" / "benchmarks", up.parent / "shared" / "data" / "benchmarks"]
    return list(dict.fromkeys(dirs))


def resolve_data_dir(file_name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The first candidate folder holding ``file_name``; UserError naming where it looked otherwise."""
    if data_dir is not None:
        d = Path(data_dir)
        if d.exists() and not d.is_dir():
            raise UserError(f"data directory {d} is a file, not a directory (it should hold {file_name})")
        if d.exists() and not os.access(d, os.R_OK | os.X_OK):
            raise UserError(f"data directory {d} is not readable (permission denied)")
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        if (d / file_name).exists():  # a folder or an unreadable file by that name is reported when read
            return d
    name = next((k for k, v in FILE_NAMES.items() if v == file_name), file_name)
    where = " or ".join(map(str, dirs)) if len(dirs) <= 2 else f"{dirs[0]} or shared/data/benchmarks above {Path.cwd()}"
    if data_dir is not None and not Path(data_dir).exists():
        where += " (no such directory)"
    how = _HOW_TO_GET.format(name=name, file=file_name)
    raise UserError(f"benchmark file {file_name} not found in {where}; {how}")


read_rows = read_jsonl_numbered  # (line number, object) per line; errors name file:line


def to_example(row: dict, path: Path, lineno: int, default_id: str) -> Example:
    """An Example from a row with ``problem`` (or ``prompt``) and ``answer``; other fields go to ``meta``."""
    problem = row.get("problem", row.get("prompt"))
    if not isinstance(problem, str) or not problem.strip():
        raise UserError(f"{path}:{lineno}: needs a non-empty 'problem' (or 'prompt') string")
    answer = row.get("answer")
    if answer is None or isinstance(answer, (dict, list, bool)) or not str(answer).strip():
        raise UserError(f"{path}:{lineno}: needs an 'answer' (a string or a number)")
    meta = {k: v for k, v in row.items() if k not in ("id", "problem", "prompt", "answer")}
    return Example(id=str(row.get("id", default_id)), prompt=problem, reference=str(answer), meta=meta)


def take(examples: list[Example], n: int | None) -> list[Example]:
    if n is None:
        return list(examples)
    if not isinstance(n, int) or n < 0:
        raise UserError(f"n must be a non-negative integer or None, got {n!r}")
    return examples[:n]


def verify_math(response: str, example: Example) -> Verdict:
    """The shared verifier: the RL accuracy reward and the benchmark score both call it."""
    g = grade_detail(response, str(example.reference))
    return Verdict(correct=g.correct, answer=g.answer, info={"from": g.where, "how": g.how})


# ---------------------------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------------------------

class BenchmarkTask:
    """A fixed test set read from ``FILE_NAMES[name]``; ``examples`` returns the first ``n`` in file order."""

    def __init__(self, name: str, data_dir: str | os.PathLike | None = None):
        self.name = name
        self.path = resolve_data_dir(FILE_NAMES[name], data_dir) / FILE_NAMES[name]
        self._examples: list[Example] | None = None

    def examples(self, split: str = "test", n: int | None = None, seed: int = 0) -> list[Example]:
        if split != "test":
            raise UserError(f"task {self.name!r} has only a 'test' split, not {split!r}")
        if self._examples is None:
            self._examples = [to_example(row, self.path, ln, f"{self.name}/{i}")
                              for i, (ln, row) in enumerate(read_rows(self.path))]
        return take(self._examples, n)

    def verify(self, response: str, example: Example) -> Verdict:
        return verify_math(response, example)


def _benchmark(name: str) -> Callable[..., BenchmarkTask]:
    def factory(data_dir: str | None = None) -> BenchmarkTask:
        return BenchmarkTask(name, data_dir)
    factory.__doc__ = f"The {name} benchmark ({FILE_NAMES[name]})."
    return factory


for _name in FILE_NAMES:
    register_task(_name)(_benchmark(_name))


# ---------------------------------------------------------------------------------------------------------
# download (online users only; never called by the tests)
# ---------------------------------------------------------------------------------------------------------

def convert_row(name: str, row: dict, index: int) -> dict:
    """Map one row of the original public file to r1lab's fields (the mapping in SOURCES.md)."""
    if name == "math500":
        return {"id": row["unique_id"], **row}
    if name in ("aime24", "amc23"):
        out = {"id": f"{name}/{row['id']}", "problem": row.get("problem", row.get("question")),
               "answer": str(int(float(row["answer"]))), "answer_raw": row["answer"], "source_id": row["id"]}
        return {**out, **{k: row[k] for k in ("solution", "url") if k in row}}
    if name == "gsm8k":
        raw = row["answer"].rsplit("####", 1)[-1].strip()
        return {"id": f"gsm8k/test/{index}", "problem": row["question"], "answer": raw.replace(",", ""),
                "answer_raw": raw, "solution": row["answer"]}
    raise UserError(f"unknown benchmark {name!r}; valid: {', '.join(FILE_NAMES)}")


def download(name: str, dest_dir: str | os.PathLike = "data/benchmarks") -> Path:
    """Fetch benchmark ``name`` from ``SOURCE_URLS`` and write ``dest_dir/FILE_NAMES[name]``.

    NOT TESTED HERE (needs internet; the tests never call it). The result follows SOURCES.md's field
    mapping except the contest/problem_number fields parsed from AoPS URLs.
    """
    if name not in SOURCE_URLS:
        raise UserError(f"unknown benchmark {name!r}; valid: {', '.join(SOURCE_URLS)}")
    with urllib.request.urlopen(SOURCE_URLS[name], timeout=60) as resp:
        lines = resp.read().decode("utf-8").splitlines()
    rows = [convert_row(name, json.loads(line), i) for i, line in enumerate(l for l in lines if l.strip())]
    dest = Path(dest_dir) / FILE_NAMES[name]
    write_jsonl_atomic(dest, rows)
    return dest
