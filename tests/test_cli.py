"""Bad input: one clear message naming the key/file/line, exit code 2, no traceback."""

import json
import os
import subprocess
import sys

import pytest


def r1lab(*args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "r1lab", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def _assert_user_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, proc.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_unknown_config_key(tmp_path):
    _assert_user_error(r1lab("zero", "--out", str(tmp_path / "run"), "zero.stepz=3"), "zero.stepz", "did you mean")
    assert not (tmp_path / "run").exists()


def test_mistyped_config_key_in_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("steps: lots\n")
    _assert_user_error(r1lab("pretrain", "--config", str(cfg), "--out", str(tmp_path / "run")), "steps")


def test_missing_model_path(tmp_path):
    _assert_user_error(r1lab("eval", "--model", str(tmp_path / "nope"), "--task", "arith"), "model path not found")


def test_model_dir_without_config(tmp_path):
    (tmp_path / "m").mkdir()
    _assert_user_error(r1lab("eval", "--model", str(tmp_path / "m"), "--task", "arith"), "config.json")


def test_malformed_jsonl_line(tmp_path, tiny_model_dir):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n{not json\n")
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--data", str(data)), f"{data}:2")


def test_jsonl_line_without_answer(tmp_path, tiny_model_dir):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n" + json.dumps({"problem": "2+2"}) + "\n")
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--data", str(data)), f"{data}:2", "answer")


def test_unknown_task(tiny_model_dir):
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--task", "arithmetic"), "unknown task", "arith")


def test_eval_writes_results(tmp_path, tiny_model_dir):
    out = tmp_path / "res.json"
    p = r1lab("eval", "--model", str(tiny_model_dir), "--task", "arith", "--examples", "3", "--samples", "2",
              "--max-new-tokens", "8", "--out", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    for key in ("pass@1", "pass@1_stderr", "cons@2", "pass@2", "mean_response_tokens", "format_rate"):
        assert key in res
    assert len(res["per_example"]) == 3 and len(res["per_example"][0]["responses"]) == 2


def test_eval_template_choices(tmp_path, tiny_model_dir):
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--task", "arith", "--template", "bogus"),
                       "unknown prompt template 'bogus'", "chat")
    # The tiny tokenizer has no chat template: asking for one is a user error, not a crash.
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--task", "arith", "--template", "chat",
                             "--examples", "1", "--samples", "1"), "chat template")
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--task", "arith", "--precision", "fp16"),
                       "precision")
    out = tmp_path / "res.json"
    p = r1lab("eval", "--model", str(tiny_model_dir), "--task", "arith", "--examples", "2", "--samples", "2",
              "--max-new-tokens", "6", "--template", "qa", "--think-prefix", "--precision", "bf16", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["template"] == "qa"


def test_models_list_and_unknown_model(tmp_path):
    p = r1lab("models", "list", "--cache", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("smollm2-135m-instruct\tApache-2.0\tnot fetched")
    _assert_user_error(r1lab("models", "fetch", "gpt-9", "--cache", str(tmp_path)), "gpt-9", "smollm2-135m-instruct")


def test_resume_with_nothing_to_resume(tmp_path):
    _assert_user_error(r1lab("zero", "--resume", "--out", str(tmp_path / "none")), "nothing to resume")


def test_tokenizer_that_does_not_match_the_model(tmp_path, tiny_model_dir, tiny_tokenizer):
    import shutil

    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path / "mismatch"
    shutil.copytree(tiny_model_dir, d)
    small = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    small.save_pretrained(str(d))
    _assert_user_error(r1lab("eval", "--model", str(d), "--task", "arith"), "do not belong together")


def test_empty_data_file(tmp_path, tiny_model_dir):
    data = tmp_path / "empty.jsonl"
    data.write_text("\n")
    _assert_user_error(r1lab("eval", "--model", str(tiny_model_dir), "--data", str(data)), "empty")


def test_group_size_and_batch_division(tmp_path):
    _assert_user_error(r1lab("zero", "--out", str(tmp_path / "r"), "zero.group_size=1"), "group_size")
    _assert_user_error(r1lab("zero", "--out", str(tmp_path / "r"), "zero.minibatches=3"), "minibatches", "divide")
    assert not (tmp_path / "r").exists()


def test_overrides_may_follow_the_flags():
    from r1lab.cli import build_parser, parse_args

    args = parse_args(build_parser(), ["demo", "seed=1", "--out", "runs/s1", "pretrain.steps=2000"])
    assert args.out == "runs/s1" and args.overrides == ["seed=1", "pretrain.steps=2000"]
    args = parse_args(build_parser(), ["zero", "--out", "runs/z", "zero.steps=5"])
    assert args.overrides == ["zero.steps=5"]
    # anything else after the flags is still refused, with argparse's one line and exit 2
    with pytest.raises(SystemExit) as e:
        parse_args(build_parser(), ["demo", "--out", "runs/s1", "--no-such-flag"])
    assert e.value.code == 2
