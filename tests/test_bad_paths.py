"""Every path argument of every command x every way it can be wrong.

Each case must stop with exactly one ``error:`` line that names the path and what is wrong, exit code 2,
no traceback, and write nothing: the whole tree (an earlier run directory, the inputs, the model) hashes
the same before and after. The command runs in-process (``r1lab.cli.main``), so an uncaught exception
fails the test with its traceback; ``test_known_tracebacks_end_cleanly_in_a_subprocess`` checks the
real command line for the three that used to crash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from r1lab.cli import main



def _permissions_bind() -> bool:
    """False for root (with its usual capabilities): it reads a chmod 000 file, so those cases cannot happen."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "locked"
        f.write_text("x")
        f.chmod(0)
        try:
            f.read_text()
        except PermissionError:
            return True
        return False


PERMISSIONS_BIND = _permissions_bind()
as_user = pytest.mark.skipif(not PERMISSIONS_BIND, reason="this process can read and write any file (root): "
                             "test_permission_cases_run_without_root_override runs these")

SFT_ROWS = [{"prompt": "1+1", "response": "2"}, {"prompt": "2+2", "response": "4"}]
EVAL_ROWS = [{"id": "a", "problem": "1+1", "answer": "2"}, {"id": "b", "problem": "2+2", "answer": "4"}]


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# ---------------------------------------------------------------------------------------------------------
# faults: fn(workspace, good path) -> the bad path; the good path is a file or directory of the right kind
# ---------------------------------------------------------------------------------------------------------

def _write(ws: Path, name: str, data: bytes | str) -> Path:
    p = ws / "bad" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def _unreadable(p: Path) -> Path:
    p.chmod(0)
    return p


def missing(ws, good):
    return ws / "bad" / ("no_such" + good.suffix)


def empty_file(ws, good):
    return _write(ws, "empty" + good.suffix, b"")


def directory(ws, good):
    (ws / "bad" / "a_folder").mkdir(parents=True)
    return ws / "bad" / "a_folder"


def binary(ws, good):
    return _write(ws, "binary" + good.suffix, bytes(range(256)) * 8)


def latin1(ws, good):
    return _write(ws, "latin1" + good.suffix, good.read_text().replace("1", "\u00e9").encode("latin-1"))


def truncated(ws, good):
    return _write(ws, "cut" + good.suffix, good.read_text()[:-6])  # inside the last line: a copy cut short


def other_kind(ws, good):
    """A file of the right format written for something else: another command's config, another data set."""
    other = {".yaml": "epochs: 2\nshots: 3\n",  # sft's key, eval's key: no command has both
             ".jsonl": jsonl(EVAL_ROWS if "sft" in good.name else SFT_ROWS)}[good.suffix]
    return _write(ws, "other" + good.suffix, other)


def _parquet(ws, rows, name: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = ws / "bad" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), p)
    return p


def parquet_cut(ws, good):
    p = _parquet(ws, EVAL_ROWS, "cut.parquet")
    p.write_bytes(p.read_bytes()[:-10])
    return p


def parquet_no_rows(ws, good):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = ws / "bad" / "none.parquet"
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"problem": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), p)
    return p


def parquet_other_columns(ws, good):
    return _parquet(ws, [{"text": "1+1", "label": "2"}], "other.parquet")


def model_config_json(ws, good):
    return _write(ws, "config.json", json.dumps({"model_type": "llama", "hidden_size": 64}))


def unreadable_file(ws, good):
    return _unreadable(_write(ws, "locked" + good.suffix, good.read_bytes()))


def a_file(ws, good):
    return _write(ws, "a_file", "not a directory\n")


def empty_dir(ws, good):
    return directory(ws, good)


def under_a_file(ws, good):
    return a_file(ws, good) / "sub"


def unreadable_dir(ws, good):
    d = ws / "bad" / "locked"
    if good.is_dir():
        shutil.copytree(good, d)
    else:
        d.mkdir(parents=True)
    return _unreadable(d)


def model_variant(change):
    """A copy of the good model directory with one thing changed."""
    def fault(ws, good):
        d = ws / "bad" / f"model_{change.__name__}"
        shutil.copytree(good, d)
        change(d)
        return d
    fault.__name__ = change.__name__
    return fault


def _cut(f: Path, keep: int | None = None):
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2 if keep is None else keep])


@model_variant
def no_config_json(d):
    (d / "config.json").unlink()


@model_variant
def config_json_cut(d):
    _cut(d / "config.json")


@model_variant
def config_json_binary(d):
    (d / "config.json").write_bytes(bytes(range(256)))


@model_variant
def config_json_not_object(d):
    (d / "config.json").write_text("[1, 2]")


@model_variant
def config_other_architecture(d):
    """A BERT config (its default size) where a Llama's was: the Llama's tensors are not what BERT needs."""
    head = "ForSequenceClassification" if "ForSequenceClassification" in (d / "config.json").read_text() else "LMHeadModel"
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": [f"Bert{head}"], "vocab_size": 600}))


@model_variant
def config_other_size(d):
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "intermediate_size": cfg["intermediate_size"] + 32}))


@model_variant
def tokenizer_json_cut(d):
    _cut(d / "tokenizer.json")


@model_variant
def tokenizer_json_binary(d):
    (d / "tokenizer.json").write_bytes(bytes(range(256)) * 4)


@model_variant
def tokenizer_other_vocabulary(d):
    from r1lab.models.tokenizer import train_tokenizer

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(4000)]
    tok = train_tokenizer([" ".join(words[i:i + 20]) for i in range(0, 4000, 20)] * 3, vocab_size=1024)
    assert len(tok) > json.loads((d / "config.json").read_text())["vocab_size"]  # more ids than the embedding has
    tok.save_pretrained(str(d))


def _weights(d: Path) -> Path:
    return next(d.glob("*.safetensors"))


@model_variant
def weights_cut_in_half(d):
    _cut(_weights(d))


@model_variant
def weights_cut_in_header(d):
    _cut(_weights(d), 20)


@model_variant
def weights_last_bytes_missing(d):
    _cut(_weights(d), _weights(d).stat().st_size - 8)


@model_variant
def weights_empty(d):
    _cut(_weights(d), 0)


@model_variant
def weights_missing(d):
    _weights(d).unlink()


@model_variant
def weights_unreadable(d):
    _unreadable(_weights(d))


# ---------------------------------------------------------------------------------------------------------
# the table: (command, argument, fault, words the error line must hold besides the path)
# ---------------------------------------------------------------------------------------------------------

FILE_FAULTS = [  # a file argument: --config YAML, --data JSONL (None: the words depend on the format)
    (missing, "not found"), (empty_file, "empty"), (directory, "is a directory"),
    (binary, "not UTF-8 text"), (latin1, "not UTF-8 text"), (truncated, None), (other_kind, None),
    pytest.param(unreadable_file, "permission denied", marks=as_user),
]
FORMAT_WORDS = {("--config", truncated): "malformed YAML", ("--config", other_kind): "unknown config key",
                ("--data", truncated): ":2: not valid JSON", ("--data", other_kind): ":1: needs"}
MODEL_FAULTS = [  # a model directory: --model, base_model=, a reward model
    (missing, "not found"), (empty_dir, "empty directory"), (a_file, "not a directory"),
    pytest.param(unreadable_dir, "permission denied", marks=as_user),
    (no_config_json, "no config.json"), (config_json_cut, "damaged"), (config_json_binary, "not UTF-8 text"),
    (config_json_not_object, "not a model config"), (config_other_architecture, "do not fit its config.json"),
    (config_other_size, "do not fit its config.json"), (tokenizer_json_cut, "damaged"),
    (tokenizer_json_binary, "not UTF-8 text"), (tokenizer_other_vocabulary, "do not belong together"),
    (weights_cut_in_half, "damaged"), (weights_cut_in_header, "damaged"), (weights_last_bytes_missing, "damaged"),
    (weights_empty, "empty"), (weights_missing, "no weights"),
    pytest.param(weights_unreadable, "permission denied", marks=as_user),
]
OUT_DIR_FAULTS = [  # --out of a command that writes a run directory
    (a_file, "is a file, not a directory"), (under_a_file, "is a file, not a directory"),
    pytest.param(unreadable_dir, "not writable", marks=as_user),
]
RUN_COMMANDS = ["pretrain", "zero", "pipeline", "demo", "grpo", "sft"]
CONFIG_COMMANDS = RUN_COMMANDS + ["eval"]
MODEL_ARGS = [("grpo", "--model"), ("sft", "--model"), ("eval", "--model"), ("zero", "base_model"),
              ("pipeline", "base_model"), ("demo", "base_model"), ("grpo", "reward model"), ("zero", "reward model"),
              ("chat", "--model"), ("generate", "--model")]


def _param(cmd, arg, fault):
    marks = ()
    if hasattr(fault, "values"):  # a pytest.param
        marks, fault = fault.marks, fault.values
    fn, words = fault
    words = words or FORMAT_WORDS[(arg, fn)]
    return pytest.param(cmd, arg, fn, words, marks=marks, id=f"{cmd}-{arg.strip('-')}-{fn.__name__}".replace(" ", "_"))


def _cases():
    for cmd in CONFIG_COMMANDS:
        for fault in FILE_FAULTS + [(model_config_json, "looks like a model's config.json")]:
            yield _param(cmd, "--config", fault)
    for cmd in ("sft", "eval", "grpo"):
        for fault in FILE_FAULTS + [(parquet_cut, "cannot be read as PARQUET"), (parquet_no_rows, "is empty"),
                                    (parquet_other_columns, "row 1: needs")]:
            yield _param(cmd, "--data", fault)
    for cmd, arg in MODEL_ARGS:
        for fault in MODEL_FAULTS:
            yield _param(cmd, arg, fault)
    for cmd in ("grpo", "zero"):
        yield _param(cmd, "reward model", (a_language_model, "not a reward model"))
    for cmd in RUN_COMMANDS:
        for fault in OUT_DIR_FAULTS + [(a_language_model, "is a model directory"), (run_config_cut, "is damaged (not valid YAML"),
                                       (run_config_binary, "not UTF-8 text")]:
            yield _param(cmd, "--out", fault)
    for cmd in ("grpo", "sft"):
        yield _param(cmd, "--out", (run_done_damaged, "DONE is damaged"))
        yield _param(cmd, "--out", (other_commands_run, "was started with a different config"))
    for fault in [(directory, "is a directory, not a file"), (under_a_file, "is a file, not a directory"),
                  pytest.param(in_a_locked_dir, "not writable", marks=as_user)]:
        yield _param("eval", "--out FILE", fault)
    for fault in [(missing, "(no such directory)"), (a_file, "is a file, not a directory"),
                  (empty_dir, "math500.jsonl not found"), pytest.param(unreadable_dir, "permission denied", marks=as_user),
                  (bench_binary, "not UTF-8 text"), (bench_cut, ":2: not valid JSON"), (bench_folder, "is a directory"),
                  (bench_other_rows, "needs an 'answer'")]:
        yield _param("eval", "--data-dir", fault)
    for fault in [(a_file, "cannot create the model cache"), (under_a_file, "cannot create the model cache")]:
        yield _param("models fetch", "--cache", fault)
    yield _param("models list", "--cache", (a_file, "is a file, not a directory"))


# run-directory and data-directory faults (the good path is the directory)

def a_language_model(ws, good):
    return ws / "model"


def in_a_locked_dir(ws, good):
    d = ws / "bad" / "locked"
    d.mkdir(parents=True)
    return _unreadable(d) / good.name


def _run_with_config(ws, text: bytes, stage: str, done: bytes | None = None) -> Path:
    out = ws / "bad" / "run"
    d = out / stage if stage else out
    d.mkdir(parents=True)
    (d / "config.yaml").write_bytes(text)
    if done is not None:
        (d / "DONE").write_bytes(done)
    return out


def _stage(good: Path) -> str:
    return "base" if good.name == "base" else ""  # zero, pipeline, demo: the first stage of the run


def run_config_cut(ws, good):
    return _run_with_config(ws, b"steps: 3\nlr: [0.1, 0.", _stage(good))


def run_config_binary(ws, good):
    return _run_with_config(ws, bytes(range(256)), _stage(good))


def run_done_damaged(ws, good):
    from dataclasses import asdict

    import yaml

    from r1lab.train.grpo import GRPOConfig
    from r1lab.train.sft import SFTConfig

    from r1lab.config import DataConfig

    # the config the command line builds (sft records its --data path), so that only DONE is wrong
    cfg = GRPOConfig() if good.name == "grpo" else SFTConfig(data=DataConfig(path=str(ws / "sft.jsonl")))
    return _run_with_config(ws, yaml.safe_dump(asdict(cfg), sort_keys=False).encode(), "", done=b'{"model": "x')


def other_commands_run(ws, good):
    from dataclasses import asdict

    import yaml

    from r1lab.train.pretrain import PretrainConfig

    return _run_with_config(ws, yaml.safe_dump(asdict(PretrainConfig())).encode(), "")


def bench_binary(ws, good):
    return _bench(ws, bytes(range(256)) * 4)


def bench_cut(ws, good):
    text = jsonl(EVAL_ROWS)
    return _bench(ws, text[: len(text) - 12].encode())


def bench_folder(ws, good):
    d = ws / "bad" / "bench"
    (d / "math500.jsonl").mkdir(parents=True)
    return d


def bench_other_rows(ws, good):
    return _bench(ws, jsonl(SFT_ROWS).encode())


def _bench(ws, data: bytes) -> Path:
    _write(ws, "bench/math500.jsonl", data)
    return ws / "bad" / "bench"


# ---------------------------------------------------------------------------------------------------------
# the workspace and the command lines
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, tiny_tokenizer):
    import torch
    from transformers import LlamaForSequenceClassification

    from r1lab.models.tiny import tiny_config

    torch.manual_seed(0)
    cfg = tiny_config("1m", len(tiny_tokenizer))
    cfg.num_labels, cfg.pad_token_id = 1, tiny_tokenizer.eos_token_id
    d = tmp_path_factory.mktemp("rm") / "rm"
    LlamaForSequenceClassification(cfg).save_pretrained(str(d))
    tiny_tokenizer.save_pretrained(str(d))
    return d


@pytest.fixture
def ws(tmp_path, tiny_model_dir, reward_model_dir):
    """A workspace: good inputs, a copy of the model, and an earlier run directory that must stay as it is."""
    shutil.copytree(tiny_model_dir, tmp_path / "model", copy_function=os.link)  # links: no copying, same bytes
    shutil.copytree(reward_model_dir, tmp_path / "rm", copy_function=os.link)
    (tmp_path / "sft.jsonl").write_text(jsonl(SFT_ROWS))
    (tmp_path / "eval.jsonl").write_text(jsonl(EVAL_ROWS))
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "math500.jsonl").write_text(jsonl(EVAL_ROWS))
    (tmp_path / "config.yaml").write_text("seed: 1\nsteps: [1, 2]\n")
    prev = tmp_path / "runs" / "previous" / "base"
    prev.mkdir(parents=True)
    (prev / "config.yaml").write_text("steps: 2\n")
    (prev / "metrics.jsonl").write_text('{"step": 0, "loss": 1.5}\n')
    (prev / "DONE").write_text('{"model": "m"}\n')
    yield tmp_path
    for p in (tmp_path / "bad").rglob("*"):  # let pytest clean up what a fault locked
        p.chmod(0o700)


def tree_hash(*roots: Path) -> str:
    h = hashlib.sha256()
    for root in roots:
        for p in sorted(root.rglob("*")):
            h.update(str(p.relative_to(root)).encode())
            if p.is_file() and os.access(p, os.R_OK):
                h.update(p.read_bytes())
    return h.hexdigest()


def command_line(cmd: str, arg: str, bad: Path, ws: Path) -> list[str]:
    out = str(ws / "runs" / "new")
    rm = "rewards={accuracy: 1.0, preference: 0.5}"
    base = {
        "pretrain": ["pretrain", "--out", out], "zero": ["zero", "--out", out],
        "pipeline": ["pipeline", "--out", out], "demo": ["demo", "--quick", "--out", out],
        "grpo": ["grpo", "--model", str(ws / "model"), "--out", out],
        "sft": ["sft", "--model", str(ws / "model"), "--data", str(ws / "sft.jsonl"), "--out", out],
        "eval": ["eval", "--model", str(ws / "model"), "--data", str(ws / "eval.jsonl")],
        "models fetch": ["models", "fetch", "smollm2-135m-instruct"], "models list": ["models", "list"],
        "chat": ["chat", "--model", str(ws / "model")], "generate": ["generate", "--model", str(ws / "model"), "1+1?"],
    }[cmd]
    if arg in ("--config", "--model", "--data", "--out", "--cache"):
        if arg in base:
            i = base.index(arg)
            return base[: i + 1] + [str(bad)] + base[i + 2:]
        return base + [arg, str(bad)]
    if arg == "base_model":
        return base + [f"base_model={bad}"]
    if arg == "reward model":
        key = "zero." if cmd == "zero" else ""
        return base + [key + rm, f"{key}reward_options={{preference: {{model: '{bad}'}}}}"]
    if arg == "--out FILE":
        return base + ["--out", str(bad)]
    if arg == "--data-dir":
        i = base.index("--data")
        return base[:i] + ["--task", "math500", "--data-dir", str(bad)]
    raise AssertionError(arg)


def good_path(arg: str, cmd: str, ws: Path) -> Path:
    """The right kind of thing for ``arg`` (the faults derive their bad versions from it)."""
    return {"--config": ws / "config.yaml", "--model": ws / "model", "base_model": ws / "model",
            "reward model": ws / "rm", "--data": ws / ("sft.jsonl" if cmd == "sft" else "eval.jsonl"),
            "--out": ws / "runs" / ("base" if cmd in ("zero", "pipeline", "demo") else cmd),
            "--out FILE": ws / "results.json", "--data-dir": ws / "bench", "--cache": ws / "cache"}[arg]


def run_cli(argv, capsys) -> tuple[int, list[str]]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("cmd,arg,fault,words", list(_cases()))
def test_bad_path_is_one_error_line_and_nothing_written(cmd, arg, fault, words, ws, tiny_model_dir, capsys):
    bad = fault(ws, good_path(arg, cmd, ws))
    before = tree_hash(ws, tiny_model_dir)
    code, err = run_cli(command_line(cmd, arg, bad, ws), capsys)
    errors = [ln for ln in err if ln.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1, err
    assert str(bad) in errors[0] and words in errors[0], errors[0]
    assert tree_hash(ws, tiny_model_dir) == before
    assert not (ws / "runs" / "new").exists()


NOT_PATHS = {"help", "resume", "overrides", "template", "task", "samples", "temperature", "top_p", "max_new_tokens",
             "examples", "instruction", "think_prefix", "shots", "precision", "seed", "quick", "json", "prompt"}


def _options(parser, command=""):
    """(command, option) for every option of every (sub)command; ``NOT_PATHS`` are the ones known not to be paths."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{command} {name}".strip())
        elif action.option_strings and action.dest not in NOT_PATHS:
            yield command, action.option_strings[0]


def test_every_path_argument_of_every_command_is_in_the_table():
    """A new option must be put in NOT_PATHS or in the table of faults above."""
    from r1lab.cli import build_parser

    covered = {(c, a.replace(" FILE", "")) for c, a, *_ in (p.values for p in _cases())}
    assert sorted(set(_options(build_parser())) - covered) == []
    assert {("zero", "base_model"), ("grpo", "reward model")} <= covered  # the paths given as key=value


@pytest.mark.parametrize("argv_of", [
    lambda ws: ["sft", "--model", str(ws / "model"), "--data", str(ws / "bin.jsonl"), "--out", str(ws / "o")],
    lambda ws: ["eval", "--model", str(ws / "cut"), "--task", "arith"],
    lambda ws: ["pretrain", "--out", str(ws / "sft.jsonl")],
], ids=["sft-binary-data", "damaged-safetensors", "out-is-a-file"])
def test_known_tracebacks_end_cleanly_in_a_subprocess(argv_of, ws):
    (ws / "bin.jsonl").write_bytes(bytes(range(256)) * 8)
    shutil.copytree(ws / "model", ws / "cut")
    _cut(_weights(ws / "cut"))
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "r1lab", *argv_of(ws)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert len([ln for ln in p.stderr.splitlines() if ln.startswith("error:")]) == 1, p.stderr


def _drop_file_override():
    """In the child before exec: take CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of the bounding set, so that
    root after exec is held to file modes like any user (prctl PR_CAPBSET_DROP; needs CAP_SETPCAP)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.skipif(PERMISSIONS_BIND, reason="the permission cases run directly in this process")
def test_permission_cases_run_without_root_override(tmp_path):
    """CI runs as root, which reads a chmod 000 file, so the unreadable/unwritable cases above skip. Run them
    again in a pytest child that is root without the file-permission override: they must all run and pass."""
    wanted = [case.id for case in _cases() if as_user in case.marks]
    assert len(wanted) >= 30  # every path argument has a permission case
    faults = sorted({case_id.split("-")[-1] for case_id in wanted})
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    try:
        child = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--basetemp",
                                str(tmp_path / "t"), __file__, "-k", " or ".join(faults)],
                               preexec_fn=_drop_file_override, env=env, capture_output=True, text=True, timeout=600,
                               cwd=Path(__file__).parent.parent)
    except subprocess.SubprocessError as e:  # the prctl in preexec_fn failed: no CAP_SETPCAP here
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE here: {e}")
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    passed = {ln.split("[", 1)[1].rstrip("]") for ln in child.stdout.splitlines()
              if ln.startswith("PASSED") and "[" in ln}
    assert set(wanted) <= passed, sorted(set(wanted) - passed)
