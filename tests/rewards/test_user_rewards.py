"""User reward functions with TRL's contract: loading, the arguments they get, fault isolation, and a whole
``r1lab grpo`` run on a Parquet file with TRL's documentation example unchanged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from r1lab.cli import main
from r1lab.errors import UserError
from r1lab.rewards import RewardFailures, build_rewards, score_all
from r1lab.rewards.user import load_reward_function
from r1lab.tasks.base import Example

DATA = Path(__file__).resolve().parent.parent / "data"
TRL_LEN = f"{DATA / 'trl_reward_len.py'}:reward_len"
USER = DATA / "user_rewards.py"


def _examples(n=2):
    return [Example(id=f"q{i}", prompt=f"what is {i}+1?", reference=str(i + 1),
                    meta={"answer": str(i + 1), "source": f"src{i}", "level": i}) for i in range(n)]


def _score(name, responses, examples, ids=None, timeout=2.0):
    rewards = build_rewards({name: 1.0}, task=None)
    failures = RewardFailures()
    total, per_name = score_all(rewards, responses, examples, timeout, failures, ids)
    return per_name[name], failures


def test_trl_documentation_example_scores_as_trl_would():
    responses = ["x" * 20, "x" * 5, "x" * 31]
    scores, failures = _score(TRL_LEN, responses, _examples(3))
    assert scores == [0.0, -15.0, -11.0]
    assert not failures.errors and not failures.invalid


def test_relative_path_and_module_names(tmp_path, monkeypatch):
    monkeypatch.chdir(DATA)
    assert _score("trl_reward_len.py:reward_len", ["abc"], _examples(1))[0] == [-17.0]
    monkeypatch.syspath_prepend(str(DATA))
    assert _score("user_rewards:async_len", ["abcd", "ab"], _examples(2))[0] == [4.0, 2.0]  # awaited


def test_module_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "r1lab_test_cwd_rewards.py").write_text("def short(completions, **kw):\n    return [-len(c) for c in completions]\n")
    monkeypatch.chdir(tmp_path)
    assert _score("r1lab_test_cwd_rewards:short", ["abc"], _examples(1))[0] == [-3.0]


def test_function_gets_prompts_completions_ids_and_every_column():
    load_reward_function(f"{USER}:record").__globals__["CALLS"].clear()
    scores, _ = _score(f"{USER}:record", ["aa", "bbb"], _examples(2), ids=[[5, 6], [7, 8, 9]])
    call = load_reward_function(f"{USER}:record").__globals__["CALLS"][0]
    assert scores == [2.0, 3.0]
    assert call["prompts"] == ["what is 0+1?", "what is 1+1?"]
    assert call["completions"] == ["aa", "bbb"]
    assert call["completion_ids"] == [[5, 6], [7, 8, 9]]
    assert call["answer"] == ["1", "2"] and call["source"] == ["src0", "src1"] and call["level"] == [0, 1]


def test_conversational_examples_get_turns_like_trl():
    turns = [{"role": "user", "content": "hi?"}]
    ex = Example(id="c", prompt="hi?", reference="1",
                 meta={"answer": "1", "conversational": True, "messages_prompt": turns})
    fn = load_reward_function(f"{USER}:record")
    fn.__globals__["CALLS"].clear()
    _score(f"{USER}:record", ["yo"], [ex])
    call = fn.__globals__["CALLS"][0]
    assert call["prompts"] == [turns]
    assert call["completions"] == [[{"role": "assistant", "content": "yo"}]]
    assert "conversational" not in call and "messages_prompt" not in call


def test_none_exception_hang_wrong_length_and_non_numbers_are_counted(caplog):
    scores, f = _score(f"{USER}:none_for_short", ["ab", "abcd"], _examples(2))
    assert scores == [0.0, 1.0] and f.none == {f"{USER}:none_for_short": 1}
    name = f"{USER}:fails_on_boom"
    scores, f = _score(name, ["ok", "boom", "fine"], _examples(3))
    assert scores == [1.0, 0.0, 1.0] and f.errors == {name: 1}
    assert "boom in a completion" in caplog.text  # the traceback, once
    name = f"{USER}:hangs_on_slow"
    scores, f = _score(name, ["ok", "slow"], _examples(2), timeout=0.3)
    assert scores == [1.0, 0.0] and f.timeouts == {name: 1}
    name = f"{USER}:wrong_length"
    scores, f = _score(name, ["a", "b"], _examples(2))
    assert scores == [0.0, 0.0] and f.invalid == {name: 2}
    name = f"{USER}:text_scores"
    scores, f = _score(name, ["a"], _examples(1))
    assert scores == [0.0] and f.invalid == {name: 1}


@pytest.mark.parametrize("name,words", [
    ("nowhere/rewards.py:fn", "no such file"),
    (f"{USER}", "':function' part is missing"),
    ("r1lab_no_such_module_xyz:fn", "cannot import 'r1lab_no_such_module_xyz'"),
    (f"{USER}:no_such_fn", "has no function 'no_such_fn'"),
    (f"{USER}:NOT_A_FUNCTION", "is not callable"),
])
def test_unloadable_reward_is_a_user_error_naming_it(name, words):
    with pytest.raises(UserError, match="reward") as e:
        build_rewards({name: 1.0}, task=None)
    assert name in str(e.value) and words in str(e.value)


def test_unknown_builtin_name_suggests_module_function():
    with pytest.raises(UserError, match="module:function"):
        build_rewards({"acuracy": 1.0}, task=None)


def test_grpo_command_refuses_an_unimportable_reward_before_any_work(tmp_path, tiny_model_dir, capsys):
    bad = tmp_path / "broken.py"
    bad.write_text("import r1lab_definitely_missing\n")
    out = tmp_path / "run"
    code = main(["grpo", "--model", str(tiny_model_dir), "--out", str(out), f"rewards={{'{bad}:fn': 1.0}}"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(err) == 1 and str(bad) in err[0] and "r1lab_definitely_missing" in err[0]
    assert not out.exists()


def test_trl_reward_file_and_parquet_data_train_with_r1lab_grpo(tmp_path, tiny_model_dir):
    """The issue's 'done when': TRL's documented reward function, unchanged, on a Parquet file."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = tmp_path / "prompts.parquet"
    pq.write_table(pa.table({"prompt": [f"Count to {i}" for i in range(6)], "answer": [str(i) for i in range(6)]}),
                   data)
    out = tmp_path / "run"
    code = main(["grpo", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out),
                 f"rewards={{'{TRL_LEN}': 1.0}}", "steps=2", "prompts_per_step=2", "group_size=4",
                 "max_new_tokens=12", "eval_every=0", "kl_coef=0.0"])
    assert code == 0
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]
    for r in rows:
        # the only reward, weight 1: the step's mean reward is the user function's mean score
        assert r[f"reward/{TRL_LEN}"] == pytest.approx(r["reward"])
        assert r["reward"] < 0.0  # -|20 - len| is never positive, and 0 only if every completion had 20 characters
        assert r["reward_errors"] == 0 and r["reward_invalid"] == 0
    # each sampled completion got exactly TRL's score for its text
    completions = [json.loads(ln) for ln in (out / "completions.jsonl").read_text().splitlines()]
    assert len(completions) == 8 and {c["step"] for c in completions} == {0}
    for c in completions:
        assert c[f"reward/{TRL_LEN}"] == -abs(20 - len(c["completion"]))
        assert c["prompt"].startswith("Count to")
    assert (out / "model" / "config.json").is_file()
    # and the run shows in TensorBoard (the default tracker when it is installed)
    if importlib.util.find_spec("tensorboard"):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(out / "tb"))
        acc.Reload()
        assert [e.value for e in acc.Scalars(f"reward/{TRL_LEN}")] == pytest.approx(
            [r[f"reward/{TRL_LEN}"] for r in rows])
