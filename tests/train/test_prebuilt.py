"""The shipped pretrained bases (r1lab/train/prebuilt.py): still the ones the default configs make, used
only for those configs, refused when damaged, and installed as a pretraining stage would have left them."""

import dataclasses
import json
import shutil

import pytest

from r1lab.pipeline import r1 as r1mod
from r1lab.pipeline import zero as zeromod
from r1lab.pipeline.r1 import R1Recipe, demo_work
from r1lab.pipeline.stage import read_done, reseeded
from r1lab.pipeline.zero import ZeroRecipe, base_stage
from r1lab.train import prebuilt
from r1lab.train.prebuilt import corpus_digest, file_digest, find_prebuilt, weight_key
from r1lab.train.pretrain import PretrainConfig, build_tokenizer

BASE = prebuilt.ASSETS / "base_1m"
TEACHER_TOK = BASE / "model" / "tokenizer.json"


def _student(size):
    return dataclasses.replace(R1Recipe().distill.student_pretrain, size=size)


def test_shipped_bases_are_the_default_configs_on_todays_corpus():
    """A change to the defaults or to the world's corpus generator must come with rebuilt bases
    (`python -m r1lab.train.prebuilt RUN_DIR` on a finished default demo)."""
    shipped = {d.name: m for d, m in prebuilt.manifests()}
    assert set(shipped) == {"base_1m", *(f"student_{s}" for s in R1Recipe().distill.student_sizes)}
    cfgs = {"base_1m": PretrainConfig(), **{f"student_{s}": _student(s) for s in R1Recipe().distill.student_sizes}}
    for name, cfg in cfgs.items():
        m = shipped[name]
        assert m["config"] == weight_key(cfg), name
        assert m["corpus_sha256"] == corpus_digest(cfg), name
        assert m["model_sha256"] == file_digest(prebuilt.ASSETS / name / "model" / "model.safetensors"), name
        assert m["teacher_tokenizer_sha256"] == (None if name == "base_1m" else file_digest(TEACHER_TOK))
        assert m["done"]["tokens"] == cfg.steps * cfg.batch_size * cfg.seq_len
        assert json.loads((prebuilt.ASSETS / name / "model" / "config.json").read_text())["vocab_size"] >= m["done"]["vocab"]


def test_shipped_tokenizer_is_the_one_pretraining_builds(tmp_path):
    build_tokenizer(PretrainConfig()).save_pretrained(str(tmp_path))
    built = json.loads((tmp_path / "tokenizer.json").read_text())["model"]
    assert built == json.loads(TEACHER_TOK.read_text())["model"]


def test_found_only_for_the_config_that_made_it(tmp_path):
    cfg = PretrainConfig()
    assert find_prebuilt(cfg) == BASE
    assert find_prebuilt(dataclasses.replace(cfg, precision="bf16")) == BASE
    for other in ({"seed": 1}, {"steps": 2999}, {"precision": "fp32"}, {"size": "0.5m"}, {"lr": 4e-3}):
        assert find_prebuilt(dataclasses.replace(cfg, **other)) is None, other
    mix = dataclasses.replace(cfg.mix, slip_rate=0.2)
    assert find_prebuilt(dataclasses.replace(cfg, mix=mix)) is None
    # logging and checkpointing do not change the weights
    assert find_prebuilt(dataclasses.replace(cfg, log_every=1, checkpoint_every=7, device="cpu")) == BASE
    # a student base only with the teacher's tokenizer it was trained with
    assert find_prebuilt(_student("0.5m"), TEACHER_TOK) == prebuilt.ASSETS / "student_0.5m"
    assert find_prebuilt(_student("0.5m")) is None
    other_tok = tmp_path / "tokenizer.json"
    other_tok.write_text(TEACHER_TOK.read_text().replace('"unk_token"', '"unk_token" ', 1))
    assert find_prebuilt(_student("0.5m"), other_tok) is None


def test_damaged_or_stale_assets_are_not_used(tmp_path, monkeypatch, capsys):
    assets = tmp_path / "bases"
    shutil.copytree(prebuilt.ASSETS, assets)
    monkeypatch.setattr(prebuilt, "ASSETS", assets)
    assert find_prebuilt(PretrainConfig()) == assets / "base_1m"
    weights = assets / "base_1m" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    assert find_prebuilt(PretrainConfig()) is None
    assert "does not match its manifest" in capsys.readouterr().out
    shutil.copy2(BASE / "model" / "model.safetensors", weights)
    manifest = assets / "base_1m" / "manifest.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "corpus_sha256": "0" * 64}))
    assert find_prebuilt(PretrainConfig()) is None
    assert "another version of the world's corpus" in capsys.readouterr().out


def test_base_stage_installs_the_shipped_base(tmp_path, monkeypatch):
    def no_pretraining(*a, **k):
        raise AssertionError("pretrained although a shipped base matches")

    monkeypatch.setattr(zeromod, "pretrain", no_pretraining)
    model_dir = base_stage(ZeroRecipe(), tmp_path)
    done = read_done(tmp_path / "base")
    assert done["prebuilt"] == "base_1m" and done["final_loss"] == pytest.approx(0.3738, abs=1e-4)
    assert file_digest(model_dir / "model.safetensors") == file_digest(BASE / "model" / "model.safetensors")
    assert (tmp_path / "base" / "tokenizer" / "tokenizer.json").read_text() == TEACHER_TOK.read_text()
    assert len((tmp_path / "base" / "metrics.jsonl").read_text().splitlines()) == 301  # every 10th of 3000 steps
    from r1lab.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(model_dir, "cpu")
    assert sum(p.numel() for p in model.parameters()) == done["params"] and len(tok) == done["vocab"]
    used = prebuilt.prebuilt_bases(tmp_path, ["student_0.5m", "zero"])
    assert list(used) == ["base"] and used["base"]["name"] == "base_1m" and used["base"]["seconds"] > 100


def test_prebuilt_false_pretrains(tmp_path, monkeypatch):
    calls = []

    def fake_pretrain(cfg, d, progress=None):
        calls.append(cfg)
        return {"params": 1, "vocab": 1, "final_loss": 0.0, "tokens": 0, "seconds": 0.0}

    monkeypatch.setattr(zeromod, "pretrain", fake_pretrain)
    base_stage(ZeroRecipe(prebuilt=False), tmp_path)
    assert len(calls) == 1 and "prebuilt" not in read_done(tmp_path / "base")


def test_run_estimate_leaves_out_shipped_pretraining():
    shipped, here = demo_work(R1Recipe()), demo_work(R1Recipe(prebuilt=False))
    assert shipped["base"] == 0 and here["base"] == 3000 * 16 * 256
    for size in R1Recipe().distill.student_sizes:
        assert shipped[f"student_{size}"] == r1mod.STUDENT_SFT_STEPS
        assert here[f"student_{size}"] == 1000 + r1mod.STUDENT_SFT_STEPS
    assert zeromod.zero_work(ZeroRecipe())["base"] == 0
    assert demo_work(reseeded(R1Recipe(seed=1), 1))["base"] == 3000 * 16 * 256  # seed=1 pretrains its own base
