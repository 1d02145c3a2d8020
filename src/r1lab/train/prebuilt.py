"""Pretrained bases shipped with r1lab: the tiny world's default base and the distillation students' bases.

R1 does not pretrain: it starts from DeepSeek-V3-Base, and its distilled students from Qwen2.5 and Llama
base models (R1-v1 §2.4). Pretraining the tiny world's bases was 35-40% of ``r1lab demo`` and 70% of
``r1lab zero`` on two CPU cores, so r1lab ships the bases its default recipes pretrain, and a recipe uses
one when its pretraining config is the one that made it (``prebuilt=true``, the default): the stage copies
the shipped model, tokenizer and pretraining log instead of training. Any other config (another seed,
size, step count, corpus mix, ``precision=fp32``) or ``prebuilt=false`` pretrains as before.

Each base lives in ``r1lab/assets/bases/<name>/`` with ``model/`` (the Hugging Face directory the stage
would have written), ``metrics.jsonl`` (its pretraining log) and ``manifest.json``: the config fields that
decide the weights, a digest of the corpus the config draws (so a changed world generator is not matched by
a stale base), the digests of the weights and of the tokenizer it was trained with (the students reuse the
teacher's), and where and how long it was made. ``python -m r1lab.train.prebuilt RUN_DIR`` writes them from
a finished default ``r1lab demo`` run; ``tests/train/test_prebuilt.py`` checks that they still match the
defaults and the corpus.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

from r1lab.runtime import atomic_write_json, print0
from r1lab.tasks.corpus import documents

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "bases"
# the PretrainConfig fields that decide the weights (not where or how often it logs or checkpoints)
WEIGHT_FIELDS = ("size", "vocab_size", "tokenizer_docs", "steps", "batch_size", "seq_len", "lr", "warmup",
                 "min_lr_ratio", "weight_decay", "grad_clip", "seed", "mix")
# precision: the shipped bases were trained in bf16 (what ``auto`` picks on a CPU with native bf16); a run
# that asks for fp32 pretraining gets it. ``auto`` on an AVX2-only CPU would pick fp32 and train a different
# base: it gets the shipped one, the same on every machine.
SHIPPED_PRECISIONS = ("auto", "bf16")
CORPUS_DOCS = 2000  # documents of each stream (tokenizer's, pretraining data's) hashed into the digest


def weight_key(cfg) -> dict:
    """The config fields that decide a base's weights, as plain YAML data (``cfg``: a PretrainConfig or
    its saved ``config.yaml`` mapping)."""
    data = cfg if isinstance(cfg, dict) else dataclasses.asdict(cfg)
    return yaml.safe_load(yaml.safe_dump({k: data[k] for k in WEIGHT_FIELDS}, sort_keys=True))


def corpus_digest(cfg) -> str:
    """sha256 of the first documents of the two streams pretraining draws (the tokenizer's, seed ``seed``;
    the training data's, seed ``seed + 1``): it changes when the world's corpus generator does."""
    return _corpus_digest(cfg.seed, json.dumps(dataclasses.asdict(cfg.mix), sort_keys=True))


@functools.lru_cache(maxsize=16)
def _corpus_digest(seed: int, mix_json: str) -> str:
    from r1lab.tasks.corpus import CorpusMix

    mix, h = CorpusMix(**json.loads(mix_json)), hashlib.sha256()
    for s in (seed, seed + 1):
        for doc in documents(CORPUS_DOCS, seed=s, mix=mix):
            h.update(json.dumps(doc, sort_keys=True).encode())
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file, read once per version of it (a run asks for the same shipped weights' digest from
    its time estimate and from its base stages)."""
    st = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifests() -> list[tuple[Path, dict]]:
    return [(p.parent, json.loads(p.read_text())) for p in sorted(ASSETS.glob("*/manifest.json"))]


def find_prebuilt(cfg, tokenizer_file: str | Path | None = None) -> Path | None:
    """The shipped base pretrained with ``cfg`` (for a student, also with the teacher's tokenizer in
    ``tokenizer_file``), or None."""
    if cfg.precision not in SHIPPED_PRECISIONS:
        return None
    key = weight_key(cfg)
    tok = file_digest(tokenizer_file) if tokenizer_file else None
    for d, m in manifests():
        if m["config"] != key or m.get("teacher_tokenizer_sha256") != tok:
            continue
        if m["corpus_sha256"] != corpus_digest(cfg):
            print0(f"[prebuilt] {d.name} was pretrained on another version of the world's corpus: not used "
                   "(rebuild it with `python -m r1lab.train.prebuilt RUN_DIR`)")
            continue
        if file_digest(d / "model" / "model.safetensors") != m["model_sha256"]:
            print0(f"[prebuilt] {d / 'model' / 'model.safetensors'} does not match its manifest: not used")
            continue
        return d
    return None


def install_prebuilt(src: Path, out_dir: Path) -> dict:
    """Copy the shipped base ``src`` into a base stage's directory as the stage would have written it
    (``model/``, ``tokenizer/``, ``metrics.jsonl``); returns the stage's artifacts."""
    t0 = time.time()
    m = json.loads((src / "manifest.json").read_text())
    out_dir = Path(out_dir)
    shutil.copytree(src / "model", out_dir / "model", dirs_exist_ok=True)
    (out_dir / "tokenizer").mkdir(parents=True, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(src / "model" / f, out_dir / "tokenizer" / f)
    if (src / "metrics.jsonl").is_file():
        shutil.copy2(src / "metrics.jsonl", out_dir / "metrics.jsonl")
    print0(f"[prebuilt] the shipped base {src.name} ({m['made']['seconds']:.0f} s of pretraining on "
           f"`{m['made']['machine']}`); `prebuilt=false` pretrains it here instead")
    # "seconds": this run's (copying); the pretraining's own time is in "prebuilt_made"
    return {**m["done"], "seconds": time.time() - t0, "prebuilt": src.name, "prebuilt_made": m["made"]}


def prebuilt_bases(run_dir: Path, keys) -> dict:
    """{stage: shipped base name and how it was made} for the base stages that used a shipped base."""
    from r1lab.pipeline.stage import is_done, read_done

    out = {}
    for key in ["base", *(f"{m}/base" for m in keys if m.startswith("student_"))]:
        if is_done(run_dir / key):
            done = read_done(run_dir / key)
            if done.get("prebuilt"):
                out[key] = {"name": done["prebuilt"], **done.get("prebuilt_made", {})}
    return out


def ship(run_dir: str | Path, dest: Path = ASSETS) -> list[Path]:
    """Write the bases of a finished default ``r1lab demo`` run (``run_dir``) into ``dest``."""
    from r1lab.pipeline.r1 import R1Recipe
    from r1lab.runtime.calibrate import calibration_line

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    machine = calibration_line(summary["calibration"])
    cfg = R1Recipe()
    teacher_tok = run_dir / "base" / "model" / "tokenizer.json"
    jobs = [("base_" + cfg.pretrain.size, run_dir / "base", cfg.pretrain, None)]
    for size in cfg.distill.student_sizes:
        pc = dataclasses.replace(cfg.distill.student_pretrain, size=size)
        jobs.append((f"student_{size}", run_dir / f"student_{size}" / "base", pc, teacher_tok))
    out = []
    for name, src, pc, tok in jobs:
        if weight_key(yaml.safe_load((src / "config.yaml").read_text())) != weight_key(pc):
            raise SystemExit(f"{src} was not pretrained with the default config: not shipped")
        done = json.loads((src / "DONE").read_text())
        d = dest / name
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(src / "model", d / "model")
        shutil.copy2(src / "metrics.jsonl", d / "metrics.jsonl")
        atomic_write_json(d / "manifest.json", {
            "config": weight_key(pc), "corpus_sha256": corpus_digest(pc),
            "model_sha256": file_digest(d / "model" / "model.safetensors"),
            "teacher_tokenizer_sha256": file_digest(tok) if tok else None,
            "done": {k: done[k] for k in ("params", "vocab", "final_loss", "tokens", "seconds")},
            "made": {"machine": machine, "seconds": round(done["seconds"], 1), "run": run_dir.name}})
        out.append(d)
    return out


if __name__ == "__main__":
    for path in ship(sys.argv[1]):
        print(path)
