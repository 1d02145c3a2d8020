"""Shared by the speed benchmarks (run as ``python benchmarks/NAME.py``, so this folder is on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "r1lab", "bench")


def add_model_args(ap) -> None:
    """``--model``, ``--cache-dir`` and ``--threads``, as the profiling benchmarks take them."""
    ap.add_argument("--model", help="HF model directory (default: a tiny base in the benchmark cache)")
    ap.add_argument("--cache-dir", default=CACHE_DIR)
    ap.add_argument("--threads", type=int, default=None)


def model_and_threads(args, pretrain_steps: int = 300) -> str:
    """Set torch's threads from ``--threads`` (else every core) and return ``--model`` or the default base."""
    from r1lab.runtime import setup_threads

    if args.threads:
        os.environ["R1LAB_THREADS"] = str(args.threads)
    setup_threads()
    return args.model or str(default_model(Path(args.cache_dir), pretrain_steps))


def default_model(cache_dir: Path, steps: int) -> Path:
    """A tiny default base model, pretrained once into ``cache_dir`` (reused when already there)."""
    from r1lab.train.pretrain import PretrainConfig, pretrain

    out = cache_dir / f"base-1m-{steps}steps"
    if not (out / "model" / "config.json").exists():
        print(f"# pretraining a tiny base model ({steps} steps) into {out}", flush=True)
        pretrain(PretrainConfig(size="1m", steps=steps, tokenizer_docs=5000), out)
    return out / "model"
