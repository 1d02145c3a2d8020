"""Benchmark tasks (math500, aime24, amc23, gsm8k), data-folder resolution, and the generic jsonl task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1lab.errors import UserError
from r1lab.rewards.extract import last_boxed
from r1lab.tasks import benchmarks
from r1lab.tasks.base import Example, TASKS, get_task
from r1lab.tasks.benchmarks import FILE_NAMES, candidate_dirs, convert_row, resolve_data_dir

SHARED = Path("/work/shared/data/benchmarks")
COUNTS = {"math500": 500, "aime24": 30, "amc23": 40, "gsm8k": 1319}


@pytest.fixture
def shared_dir():
    if not all((SHARED / f).is_file() for f in FILE_NAMES.values()):
        pytest.skip(f"benchmark data not present at {SHARED}")
    return SHARED


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("R1LAB_DATA", raising=False)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# the real benchmark files
# ---------------------------------------------------------------------------------------------------------

def test_all_four_benchmarks_are_registered():
    assert {"math500", "aime24", "amc23", "gsm8k", "jsonl"} <= set(TASKS)


@pytest.mark.parametrize("name", list(COUNTS))
def test_benchmark_loads_with_expected_rows(name, shared_dir):
    task = get_task(name, data_dir=str(shared_dir))
    exs = task.examples("test")
    assert len(exs) == COUNTS[name]
    assert len({e.id for e in exs}) == len(exs)
    assert all(isinstance(e, Example) and e.prompt.strip() and isinstance(e.reference, str) and e.reference
               for e in exs)
    assert "problem" not in exs[0].meta and "answer" not in exs[0].meta
    assert [e.id for e in task.examples("test", n=5)] == [e.id for e in exs[:5]]
    assert task.examples("test", n=0) == []


def test_math500_fields(shared_dir):
    ex = get_task("math500", data_dir=shared_dir).examples("test", n=1)[0]
    assert ex.id == "test/precalculus/807.json"
    assert ex.reference == r"\left( 3, \frac{\pi}{2} \right)"
    assert {"solution", "subject", "level"} <= set(ex.meta)


def test_reference_solutions_grade_correct(shared_dir):
    """Every MATH-500 solution's last \\boxed{} and every GSM8K '#### N' grades as its own answer."""
    math500 = get_task("math500", data_dir=shared_dir)
    assert all(math500.verify(e.meta["solution"], e).correct for e in math500.examples("test"))
    gsm8k = get_task("gsm8k", data_dir=shared_dir)
    assert all(gsm8k.verify(e.meta["solution"].rsplit("####", 1)[1], e).correct for e in gsm8k.examples("test"))


def test_verify_returns_a_verdict(shared_dir):
    task = get_task("aime24", data_dir=shared_dir)
    ex = task.examples("test", n=1)[0]
    right = task.verify(rf"<think>...</think> So the walk takes \boxed{{{ex.reference}}} minutes.", ex)
    assert right.correct and right.answer == ex.reference and right.info["from"] == "boxed"
    wrong = task.verify(r"\boxed{1}", ex)
    assert not wrong.correct and wrong.answer == "1"
    none = task.verify("I give up.", ex)
    assert not none.correct and none.answer is None


def test_math500_verify_uses_normalisation(shared_dir):
    task = get_task("math500", data_dir=shared_dir)
    ex = task.examples("test", n=1)[0]
    assert task.verify(r"The answer is $\boxed{(3, \dfrac{\pi}{2})}$.", ex).correct
    assert not task.verify(r"\boxed{[3, \frac{\pi}{2}]}", ex).correct


def test_only_the_test_split_exists(shared_dir):
    task = get_task("gsm8k", data_dir=shared_dir)
    with pytest.raises(UserError, match="only a 'test' split"):
        task.examples("train")


def test_bad_n_is_a_user_error(shared_dir):
    with pytest.raises(UserError):
        get_task("amc23", data_dir=shared_dir).examples("test", n=-1)


# ---------------------------------------------------------------------------------------------------------
# locating the data folder
# ---------------------------------------------------------------------------------------------------------

def test_missing_data_dir_names_the_path_and_the_fix(tmp_path, no_env):
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError) as e:
        get_task("math500", data_dir=str(missing))
    msg = str(e.value)
    assert str(missing) in msg and "math500.jsonl" in msg and "download(" in msg and "R1LAB_DATA" in msg


def test_env_var_is_used(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "aime24.jsonl", [{"id": "a/1", "problem": "p", "answer": "7"}])
    monkeypatch.setenv("R1LAB_DATA", str(tmp_path))
    assert [e.id for e in get_task("aime24").examples("test")] == ["a/1"]
    monkeypatch.setenv("R1LAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="empty"):
        get_task("aime24")


def test_env_var_may_point_at_the_data_root(tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    write_jsonl(tmp_path / "benchmarks" / "amc23.jsonl", [{"id": "c/1", "problem": "p", "answer": 3}])
    monkeypatch.setenv("R1LAB_DATA", str(tmp_path))
    ex = get_task("amc23").examples("test")[0]
    assert ex.reference == "3"


def test_cwd_data_benchmarks_then_shared_walking_up(tmp_path, monkeypatch, no_env):
    shared = tmp_path / "shared" / "data" / "benchmarks"
    shared.mkdir(parents=True)
    write_jsonl(shared / "gsm8k_test.jsonl", [{"id": "g/shared", "problem": "p", "answer": "1"}])
    work = tmp_path / "main" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert resolve_data_dir("gsm8k_test.jsonl") == shared
    local = work / "data" / "benchmarks"
    local.mkdir(parents=True)
    write_jsonl(local / "gsm8k_test.jsonl", [{"id": "g/local", "problem": "p", "answer": "1"}])
    assert resolve_data_dir("gsm8k_test.jsonl") == local
    assert candidate_dirs()[0] == local


def test_sibling_shared_folder_is_found(tmp_path, monkeypatch, no_env):
    shared = tmp_path / "shared" / "data" / "benchmarks"
    shared.mkdir(parents=True)
    write_jsonl(shared / "math500.jsonl", [{"id": "m/1", "problem": "p", "answer": "1"}])
    (tmp_path / "main").mkdir()
    monkeypatch.chdir(tmp_path / "main")
    assert get_task("math500").path == shared / "math500.jsonl"


# ---------------------------------------------------------------------------------------------------------
# the generic jsonl task
# ---------------------------------------------------------------------------------------------------------

def test_jsonl_task_reads_problem_or_prompt(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [
        {"problem": "1+1?", "answer": "2", "source": "me"},
        "",
        {"id": "q7", "prompt": "Half of 1?", "answer": 0.5},
    ])
    task = get_task("jsonl", path=str(path))
    exs = task.examples("train")
    assert [e.id for e in exs] == ["mine/0", "q7"]
    assert [e.reference for e in exs] == ["2", "0.5"]
    # every column but the prompt stays in meta (user reward functions receive them all)
    assert exs[0].meta == {"answer": "2", "source": "me"} and exs[1].prompt == "Half of 1?"
    assert exs[1].meta == {"id": "q7", "answer": 0.5}
    assert task.verify(r"\boxed{\frac12}", exs[1]).correct
    assert not task.verify(r"\boxed{3}", exs[0]).correct
    assert len(task.examples("test", n=1)) == 1


@pytest.mark.parametrize("bad_line,match", [
    ({"problem": "no answer here"}, "answer"),
    ({"problem": "empty answer", "answer": "  "}, "answer"),
    ({"problem": "null answer", "answer": None}, "answer"),
    ({"answer": "5"}, "problem"),
    ({"prompt": "", "answer": "5"}, "problem"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_jsonl_task_errors_name_file_and_line(tmp_path, bad_line, match):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"problem": "ok", "answer": "1"}, "", bad_line])
    with pytest.raises(UserError, match=match) as e:
        get_task("jsonl", path=str(path))
    assert f"{path}:3" in str(e.value)


def test_jsonl_task_missing_or_empty_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        get_task("jsonl", path=str(tmp_path / "absent.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="empty"):
        get_task("jsonl", path=str(tmp_path / "empty.jsonl"))
    with pytest.raises(UserError, match="bad options"):
        get_task("jsonl")


# ---------------------------------------------------------------------------------------------------------
# download: only the offline half (URL table, row conversion) is tested
# ---------------------------------------------------------------------------------------------------------

def test_download_table_covers_every_benchmark():
    assert set(benchmarks.SOURCE_URLS) == set(FILE_NAMES)
    assert all(url.startswith("https://") for url in benchmarks.SOURCE_URLS.values())
    with pytest.raises(UserError, match="unknown benchmark"):
        benchmarks.download("mmlu", "/nonexistent")  # fails before any network access


def test_convert_row_follows_the_field_mapping():
    gsm = convert_row("gsm8k", {"question": "Q?", "answer": "5*5=<<5*5=25>>25\n#### 2,125"}, 3)
    assert gsm == {"id": "gsm8k/test/3", "problem": "Q?", "answer": "2125", "answer_raw": "2,125",
                   "solution": "5*5=<<5*5=25>>25\n#### 2,125"}
    aime = convert_row("aime24", {"id": 60, "problem": "P", "answer": "025", "solution": "S", "url": "u"}, 0)
    assert (aime["id"], aime["answer"], aime["answer_raw"], aime["solution"]) == ("aime24/60", "25", "025", "S")
    amc = convert_row("amc23", {"id": 0, "question": "P", "answer": -1.0, "url": "u"}, 0)
    assert (amc["id"], amc["problem"], amc["answer"]) == ("amc23/0", "P", "-1")
    m = convert_row("math500", {"unique_id": "test/x/1.json", "problem": "P", "answer": "1", "solution": "S"}, 0)
    assert m["id"] == "test/x/1.json" and m["answer"] == "1"


def test_reference_data_answers_match_their_boxed_solution(shared_dir):
    rows = [json.loads(line) for line in open(shared_dir / "math500.jsonl", encoding="utf-8")]
    assert all(last_boxed(r["solution"]) is not None for r in rows)
