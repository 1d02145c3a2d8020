"""Shared by the speed benchmarks (run as ``python benchmarks/NAME.py``, so this folder is on sys.path)."""

from __future__ import annotations

from pathlib import Path


def default_model(cache_dir: Path, steps: int) -> Path:
    """A tiny default base model, pretrained once into ``cache_dir`` (reused when already there)."""
    from r1lab.train.pretrain import PretrainConfig, pretrain

    out = cache_dir / f"base-1m-{steps}steps"
    if not (out / "model" / "config.json").exists():
        print(f"# pretraining a tiny base model ({steps} steps) into {out}", flush=True)
        pretrain(PretrainConfig(size="1m", steps=steps, tokenizer_docs=5000), out)
    return out / "model"
