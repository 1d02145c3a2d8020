"""One reward-model training step (Bradley–Terry, 32 pairs of the demo's generated preference data), two
ways side by side: each pair's common prefix computed once through r1lab's grouped forward
(``RewardModel.pair_scores``, what training uses) against every text scored on its own through the
model's forward in chunks of similar length (``RewardModel.forward``, what training used before).

Alternates the two on the same batches (``--steps`` each after ``--warmup``) and prints one JSON line with
each one's mean step time and the ratio. Optional ``--pairs FILE.jsonl`` adds pairs of a demo run
(``runs/demo/reward_model/data.jsonl``, the on-policy ones) to the generated ones, as the stage does.

Usage: python benchmarks/profile_reward_model.py [--model runs/demo/rejection_sft/model] [--steps 30]
       [--warmup 3] [--threads N] [--pairs runs/demo/reward_model/data.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
from bench_common import add_model_args, model_and_threads


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(ap)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pairs", help="JSONL of extra (prompt, chosen, rejected) pairs, e.g. a demo's on-policy ones")
    args = ap.parse_args(argv)
    model_dir = model_and_threads(args)  # same default model as the other speed benchmarks
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from r1lab.rewards.format import summary_of
    from r1lab.runtime import read_jsonl
    from r1lab.tasks.general import preference_pairs
    from r1lab.train.reward_model import RewardModel, RewardModelConfig, rm_text

    cfg = RewardModelConfig()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rm = RewardModel(model, tok)
    pairs = preference_pairs(cfg.train_pairs, "train", seed=cfg.seed) + (read_jsonl(args.pairs) if args.pairs else [])
    random.Random(cfg.seed).shuffle(pairs)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    model.train()

    def step(batch, shared: bool) -> float:
        prompts = [p["prompt"] for p in batch]
        chosen, rejected = [summary_of(p["chosen"]) for p in batch], [summary_of(p["rejected"]) for p in batch]
        t0 = time.perf_counter()
        if shared:
            c, r = rm.pair_scores(prompts, chosen, rejected)
        else:
            s = rm.forward([t for p, a, b in zip(prompts, chosen, rejected) for t in (rm_text(p, a), rm_text(p, b))])
            c, r = s[0::2], s[1::2]
        loss = -torch.nn.functional.logsigmoid(c - r).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    times = {True: [], False: []}
    for i in range(args.warmup + args.steps):
        batch = pairs[i * cfg.batch_size: (i + 1) * cfg.batch_size]
        for shared in ((True, False) if i % 2 == 0 else (False, True)):  # alternate which one goes first
            t = step(batch, shared)
            if i >= args.warmup:
                times[shared].append(t)
    lengths = [len(tok(rm_text(p["prompt"], summary_of(p[k])), add_special_tokens=False)["input_ids"])
               for p in pairs[: cfg.batch_size * args.steps] for k in ("chosen", "rejected")]
    from r1lab.runtime.calibrate import calibrate, calibration_line

    shared_s, apart_s = statistics.mean(times[True]), statistics.mean(times[False])
    print(json.dumps({"model": model_dir, "machine": calibration_line(calibrate()), "batch_pairs": cfg.batch_size,
                      "steps": args.steps, "mean_text_tokens": round(statistics.mean(lengths), 1),
                      "shared_prefix_step_s": round(shared_s, 4), "texts_apart_step_s": round(apart_s, 4),
                      "speedup": round(apart_s / shared_s, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
