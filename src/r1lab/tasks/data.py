"""User data where users keep it: JSONL, JSON, CSV, Parquet or a ``datasets.save_to_disk`` folder.

JSONL is read by r1lab itself (errors name ``file:line``); the other formats go through the Hugging Face
``datasets`` library (``pip install "r1lab[data]"``). Columns are mapped by ``DataConfig``: the prompt is
``problem_key`` (default: the first of problem, prompt, question), the gold answer ``answer_key``, the SFT
target ``response_key`` (default: response, then completion). TRL's conversational format, a column of
``{role, content}`` turns, is kept as turns for the model's chat template (``messages_prompt`` in the
example's meta). Every column stays in ``Example.meta``, so user reward functions receive all of them.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from r1lab.config import DataConfig
from r1lab.errors import UserError
from r1lab.runtime.io import read_jsonl_numbered, read_user_text
from r1lab.tasks.base import Example, Verdict, register_task

PROMPT_KEYS = ("problem", "prompt", "question")
RESPONSE_KEYS = ("response", "completion")
DATASETS_FORMATS = {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_INSTALL = 'pip install "r1lab[data]"'


def _datasets():
    try:
        import datasets
    except ImportError:
        raise UserError(f"reading this data needs the datasets library: {_INSTALL}") from None
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # its own error lines would come before ours
    return datasets


def _one_line(e: BaseException) -> str:
    """The innermost cause (datasets wraps pyarrow's message in a generic one), on one line."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:300]


def _parquet_rows(p: Path) -> int:
    """Rows in a Parquet file's footer (datasets fails on a file with none with an unhelpful message)."""
    _datasets()
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(p).metadata.num_rows
    except Exception as e:  # noqa: BLE001 - a damaged file: not Parquet, cut short
        raise UserError(f"data file {p} cannot be read as PARQUET ({_one_line(e)})") from None


def _from_disk(p: Path, split: str | None) -> list[dict]:
    datasets = _datasets()
    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as e:  # noqa: BLE001 - a damaged folder, whatever the library raises
        raise UserError(f"data folder {p} cannot be read as a datasets.save_to_disk folder ({_one_line(e)})") from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        name = split or ("train" if "train" in ds else names[0] if len(names) == 1 else None)
        if name not in ds:
            raise UserError(f"data folder {p} has splits {', '.join(names)}; choose one with data.split="
                            + (f" (no split {split!r})" if split else ""))
        ds = ds[name]
    return ds.to_list()


def _with_datasets(p: Path, fmt: str) -> list[dict]:
    datasets = _datasets()
    with tempfile.TemporaryDirectory(prefix="r1lab-data-") as cache:  # nothing left in ~/.cache
        try:
            ds = datasets.load_dataset(fmt, data_files=str(p), split="train", cache_dir=cache)
        except Exception as e:  # noqa: BLE001 - pyarrow and datasets raise many kinds for a bad file
            raise UserError(f"data file {p} cannot be read as {fmt.upper()} ({_one_line(e)})") from None
        return ds.to_list()


def read_records(path: str | os.PathLike, split: str | None = None) -> list[tuple[str, dict]]:
    """(where, row) for every row of a data file or folder; ``where`` is ``file:line`` or ``file row N``."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"data file not found: {p}")
    if p.is_dir():
        if not any((p / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            raise UserError(f"data file {p} is a directory, not a data file or a datasets.save_to_disk folder "
                            "(no dataset_info.json or dataset_dict.json in it)")
        rows = _from_disk(p, split)
    elif p.suffix.lower() in DATASETS_FORMATS:
        fmt = DATASETS_FORMATS[p.suffix.lower()]
        if fmt != "parquet":
            read_user_text(p, "data file")  # missing, unreadable, binary: the same messages as for JSONL
        elif p.stat().st_size == 0 or _parquet_rows(p) == 0:
            raise UserError(f"data file is empty: {p}")
        rows = _with_datasets(p, fmt)
    else:  # .jsonl and anything else: JSON lines, read here with file:line errors
        return [(f"{p}:{n}", row) for n, row in read_jsonl_numbered(p)]
    if not rows:
        raise UserError(f"data file is empty: {p} (no rows)")
    return [(f"{p} row {i + 1}", row) for i, row in enumerate(rows)]


def is_conversation(value) -> bool:
    """TRL's conversational format: a non-empty list of ``{role, content}`` turns."""
    return (isinstance(value, list) and len(value) > 0
            and all(isinstance(t, dict) and "role" in t and "content" in t for t in value))


def _pick(row: dict, key: str | None, defaults: tuple[str, ...]) -> str | None:
    if key is not None:
        return key
    return next((k for k in defaults if k in row), None)


def prompt_of(row: dict, where: str, cfg: DataConfig) -> tuple[str, str | list]:
    """(column name, value) of the prompt: a non-empty string or a conversation."""
    key = _pick(row, cfg.problem_key, PROMPT_KEYS)
    value = row.get(key) if key else None
    if isinstance(value, str) and value.strip():
        return key, value
    if is_conversation(value):
        return key, value
    named = f"'{cfg.problem_key}'" if cfg.problem_key else "'problem' (or 'prompt'/'question')"
    have = ", ".join(map(str, row)) or "none"
    raise UserError(f"{where}: needs a non-empty {named} string or list of {{role, content}} turns "
                    f"(columns: {have}; map yours with data.problem_key=NAME)")


def to_example(row: dict, where: str, cfg: DataConfig, default_id: str, need_answer: bool = True) -> Example:
    """An Example; ``prompt`` is the text (the last user turn of a conversation), every column in ``meta``."""
    key, prompt = prompt_of(row, where, cfg)
    answer = row.get(cfg.answer_key)
    if need_answer and (answer is None or isinstance(answer, (dict, list, bool)) or not str(answer).strip()):
        raise UserError(f"{where}: needs an '{cfg.answer_key}' (a string or a number; columns: "
                        f"{', '.join(map(str, row))}; map yours with data.answer_key=NAME)")
    meta = {k: v for k, v in row.items() if k != key}
    if isinstance(prompt, list):
        meta.update(conversational=True, messages_prompt=prompt)
        users = [t["content"] for t in prompt if t["role"] == "user"]
        prompt = str(users[-1] if users else prompt[-1]["content"])
    return Example(id=str(row.get("id", default_id)), prompt=prompt,
                   reference=None if answer is None else str(answer), meta=meta)


def read_examples(cfg: DataConfig, need_answer: bool = True) -> list[Example]:
    stem = Path(cfg.path).stem
    return [to_example(row, where, cfg, f"{stem}/{i}", need_answer)
            for i, (where, row) in enumerate(read_records(cfg.path, cfg.split))]


def sft_pair(row: dict, where: str, cfg: DataConfig) -> tuple[str | list, str]:
    """(prompt text or turns, response) of one SFT row: prompt + response columns, or TRL's ``messages``
    (every turn before the last assistant turn is the prompt)."""
    if cfg.problem_key is None and is_conversation(row.get("messages")):
        turns = row["messages"]
        if turns[-1]["role"] != "assistant" or len(turns) < 2:
            raise UserError(f"{where}: 'messages' must end with an assistant turn after at least one other turn")
        return turns[:-1], str(turns[-1]["content"])
    _, prompt = prompt_of(row, where, cfg)
    rkey = _pick(row, cfg.response_key, RESPONSE_KEYS)
    response = row.get(rkey) if rkey else None
    if is_conversation(response):  # TRL's conversational prompt-completion: one assistant turn
        response = "".join(str(t["content"]) for t in response)
    if not isinstance(response, str):
        named = f"'{cfg.response_key}'" if cfg.response_key else "'response' (or 'completion')"
        raise UserError(f"{where}: needs a {named} string (columns: {', '.join(map(str, row))}; map yours with "
                        "data.response_key=NAME)")
    return prompt, response


@register_task("data")
class DataTask:
    """A user data set as a task, graded by the math grader. The file is one split: "test" returns its rows
    in order; "train" draws ``n`` rows by ``seed`` (each training step a different, reproducible draw)."""

    name = "data"

    def __init__(self, path: str, problem_key: str | None = None, answer_key: str = "answer",
                 split: str | None = None, need_answer: bool = True):
        self.cfg = DataConfig(path=path, problem_key=problem_key, answer_key=answer_key, split=split)
        self.path = Path(path)
        self._examples = read_examples(self.cfg, need_answer)  # validate up front, before any training

    def examples(self, split: str = "test", n: int | None = None, seed: int = 0) -> list[Example]:
        if n is None:
            return list(self._examples)
        if split == "train":
            order = list(range(len(self._examples)))
            random.Random(seed).shuffle(order)
            return [self._examples[order[i % len(order)]] for i in range(n)]
        return self._examples[:n]

    def verify(self, response: str, example: Example) -> Verdict:
        from r1lab.tasks.benchmarks import verify_math

        return verify_math(response, example)


register_task("jsonl")(DataTask)  # the name `r1lab eval --data` used before other formats were read
