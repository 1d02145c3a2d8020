"""User data in every format ``--data`` reads: the same rows whatever the format, column mapping,
TRL's conversational format, and one-line errors naming the file and the column."""

from __future__ import annotations

import copy
import json

import pytest

from r1lab.config import DataConfig, build
from r1lab.errors import UserError
from r1lab.tasks import get_task
from r1lab.tasks.data import read_records, sft_pair
from r1lab.tasks.templates import render_example

pa = pytest.importorskip("pyarrow")
datasets = pytest.importorskip("datasets")

ROWS = [{"problem": "1+1?", "answer": "2", "source": "a"}, {"problem": "2+3?", "answer": "5", "source": "b"},
        {"problem": "7-4?", "answer": "3", "source": "c"}]


def write(tmp_path, fmt, rows=ROWS):
    import pyarrow.parquet as pq

    if fmt == "jsonl":
        p = tmp_path / "d.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        p = tmp_path / "d.json"
        p.write_text(json.dumps(rows))
    elif fmt == "csv":
        p = tmp_path / "d.csv"
        keys = list(rows[0])
        p.write_text(",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows))
    elif fmt == "parquet":
        p = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pylist(rows), p)
    elif fmt == "disk":
        p = tmp_path / "saved"
        datasets.Dataset.from_list(rows).save_to_disk(str(p))
    elif fmt == "diskdict":
        p = tmp_path / "saved_dict"
        datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                              "test": datasets.Dataset.from_list(rows[:1])}).save_to_disk(str(p))
    return p


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "disk", "diskdict"])
def test_every_format_gives_the_same_examples(tmp_path, fmt):
    task = get_task("data", path=str(write(tmp_path, fmt)))
    exs = task.examples("test")
    assert [e.prompt for e in exs] == ["1+1?", "2+3?", "7-4?"]
    assert [e.reference for e in exs] == ["2", "5", "3"]
    assert [e.meta["source"] for e in exs] == ["a", "b", "c"]  # every column reaches user rewards
    assert task.verify(r"\boxed{5}", exs[1]).correct and not task.verify(r"\boxed{4}", exs[1]).correct


def test_datasetdict_split_is_chosen(tmp_path):
    p = write(tmp_path, "diskdict")
    assert len(get_task("data", path=str(p), split="test").examples("test")) == 1
    with pytest.raises(UserError, match="no split 'dev'") as e:
        get_task("data", path=str(p), split="dev")
    assert str(p) in str(e.value)


def test_column_mapping(tmp_path):
    rows = [{"question_text": "1+1?", "gold": 2}, {"question_text": "2+2?", "gold": 4}]
    p = write(tmp_path, "parquet", rows)
    exs = get_task("data", path=str(p), problem_key="question_text", answer_key="gold").examples("test")
    assert [(e.prompt, e.reference) for e in exs] == [("1+1?", "2"), ("2+2?", "4")]
    assert exs[0].meta["gold"] == 2


def test_train_draws_are_reproducible_and_vary_by_seed(tmp_path):
    rows = [{"problem": f"{i}+0?", "answer": str(i)} for i in range(20)]
    task = get_task("data", path=str(write(tmp_path, "parquet", rows)))
    a = [e.id for e in task.examples("train", n=5, seed=1)]
    assert a == [e.id for e in task.examples("train", n=5, seed=1)]
    assert a != [e.id for e in task.examples("train", n=5, seed=2)]
    assert len(set(a)) == 5
    assert len(task.examples("train", n=45, seed=0)) == 45  # more than the file holds: it wraps around
    assert [e.id for e in task.examples("test", n=3)] == ["d/0", "d/1", "d/2"]


def test_conversational_prompts_use_the_chat_template(tmp_path, tiny_tokenizer):
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}]
    p = write(tmp_path, "parquet", [{"prompt": turns, "answer": "2"}])
    (ex,) = get_task("data", path=str(p)).examples("test")
    assert ex.prompt == "1+1?" and ex.meta["messages_prompt"] == turns
    with pytest.raises(UserError, match="no chat template"):
        render_example("r1zero", ex, tiny_tokenizer)
    tok = copy.deepcopy(tiny_tokenizer)  # the session's tokenizer keeps having no chat template
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
    assert render_example("r1zero", ex, tok) == "<system>Be brief.\n<user>1+1?\n<assistant>"


def test_sft_pairs_from_messages_and_prompt_completion(tmp_path):
    cfg = DataConfig()
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert sft_pair({"messages": msgs}, "f:1", cfg) == (msgs[:1], "hello")
    assert sft_pair({"prompt": "a", "completion": "b"}, "f:1", cfg) == ("a", "b")
    assert sft_pair({"q": "a", "r": "b"}, "f:1", DataConfig(problem_key="q", response_key="r")) == ("a", "b")
    with pytest.raises(UserError, match="f:1: needs a 'response'"):
        sft_pair({"prompt": "a"}, "f:1", cfg)


def test_data_shorthand_in_configs():
    from r1lab.train.grpo import GRPOConfig

    assert build(GRPOConfig, {"data": "x.parquet"}).data == DataConfig(path="x.parquet")
    cfg = build(GRPOConfig, {"data": {"path": "x.csv", "answer_key": "gold"}})
    assert cfg.data.answer_key == "gold" and cfg.data.path == "x.csv"


@pytest.mark.parametrize("fmt", ["parquet", "csv", "disk"])
def test_missing_column_names_file_and_column(tmp_path, fmt):
    p = write(tmp_path, fmt, [{"problem": "1+1?", "solution": "2"}])
    with pytest.raises(UserError) as e:
        get_task("data", path=str(p))
    msg = str(e.value)
    assert str(p) in msg and "'answer'" in msg and "solution" in msg and "\n" not in msg
    with pytest.raises(UserError, match="'text'") as e:
        get_task("data", path=str(p), problem_key="text", answer_key="solution")


def test_bad_files_are_one_line_errors(tmp_path):
    import pyarrow.parquet as pq

    cut = tmp_path / "cut.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), cut)
    cut.write_bytes(cut.read_bytes()[:40])
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS).slice(0, 0), empty)
    zero = tmp_path / "zero.parquet"
    zero.write_bytes(b"")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    for path, words in [(cut, "cannot be read as PARQUET"), (empty, "is empty"), (zero, "is empty"),
                        (folder, "is a directory"), (tmp_path / "absent.csv", "not found")]:
        with pytest.raises(UserError, match=words) as e:
            read_records(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)
