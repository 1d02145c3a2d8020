"""Where the time of one default GRPO step goes (the `r1lab zero` step: 16 prompts x 8 samples, up to 160
new tokens, mu = 1, one minibatch, KL to the reference).

Times the phases of ``grpo_step`` by wrapping the functions it calls: sampling (``engine.generate``),
scoring the rewards, building the batch, the reference model's logprobs, and the update (forward,
backward, optimizer). Runs ``--warmup`` steps, then averages ``--steps`` steps. Prints one JSON line.

Usage: python benchmarks/profile_grpo_step.py --model runs/zero/base/model [--steps 10] [--warmup 2]
       [--precision fp32|bf16] [--threads N]
(``--model`` defaults to a tiny base pretrained into the benchmark cache, as the other benchmarks do;
a well-trained base, e.g. ``runs/zero/base/model``, gives the real response lengths.)
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import torch
from bench_common import add_model_args, model_and_threads

import r1lab.train.grpo as G
from r1lab.models import load_model_and_tokenizer
from r1lab.rewards import RewardFailures
from r1lab.runtime import autocast_ctx
from r1lab.tasks import get_task

PHASES = ("sample", "score", "build_batch", "ref_logprobs", "update")


def timed(fn, name: str, clock: dict):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            clock[name] = clock.get(name, 0.0) + time.perf_counter() - t0
    return wrapper


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(ap)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = ap.parse_args(argv)
    model_dir = model_and_threads(args)  # same default model as the speed benchmarks
    cfg = G.GRPOConfig(precision=args.precision, preflight=False, eval_every=0)
    device = torch.device("cpu")
    policy, tok = load_model_and_tokenizer(model_dir, device)
    task = get_task(cfg.task, **cfg.task_options)
    autocast = None if args.precision == "fp32" else functools.partial(autocast_ctx, device, args.precision)
    ref, opt, engine, rewards = G.setup_grpo(policy, tok, task, cfg, device, autocast)

    clock: dict[str, float] = {}
    engine.generate = timed(engine.generate, "sample", clock)
    G.score_all = timed(G.score_all, "score", clock)
    G.build_batch = timed(G.build_batch, "build_batch", clock)
    G.batch_logprobs = timed(G.batch_logprobs, "ref_logprobs", clock)  # on-policy: only the reference's
    G.grpo_update = timed(G.grpo_update, "update", clock)

    per_step, totals, lengths = [], [], []
    for s in range(args.warmup + args.steps):
        clock.clear()
        G.apply_schedule(opt, cfg, s)
        t0 = time.perf_counter()
        m = G.grpo_step(policy, ref, opt, engine, task, rewards, RewardFailures(), cfg, s, tok, autocast)
        total = time.perf_counter() - t0
        if s >= args.warmup:
            per_step.append(dict(clock))
            totals.append(total)
            lengths.append(m["response_len_mean"])
    mean_total = statistics.mean(totals)
    phases = {p: statistics.mean(c.get(p, 0.0) for c in per_step) for p in PHASES}
    phases["other"] = mean_total - sum(phases.values())
    out = {
        "model": model_dir, "precision": args.precision, "threads": torch.get_num_threads(),
        "prompts": cfg.prompts_per_step, "group": cfg.group_size, "max_new_tokens": cfg.max_new_tokens,
        "mean_response_tokens": round(statistics.mean(lengths), 1), "steps": args.steps,
        "step_s": round(mean_total, 3),
        "seconds": {k: round(v, 3) for k, v in phases.items()},
        "share": {k: round(v / mean_total, 3) for k, v in phases.items()},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
