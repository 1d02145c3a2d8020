"""Sampler speed: r1lab's NativeEngine against transformers ``generate`` on the same model and prompts.

Engines, timed alternately in one process (the order flips every repetition, because these machines
are noisy), several repetitions, median reported:

  native   r1lab.rollout.NativeEngine (KV cache, shared prompt prefill, finished rows leave the batch)
  hf       r1lab.rollout.HFEngine: ``model.generate(num_return_sequences=G, output_logits=True)`` plus
           per-token logprobs, the same Rollout output as native (the baseline of the issue)
  hf_raw   bare ``model.generate`` with the same sampling arguments, no logits kept, no logprobs, no text:
           the lower bound of what transformers costs, to show what the HFEngine wrapper adds

Workloads: the ``arith`` task's train prompts with the R1-Zero template, P prompts x G samples,
temperature 1, top-p 1 (the GRPO defaults), in two modes:

  fixed    EOS ignored by every engine, so every row generates exactly ``--max-new-tokens`` tokens: the
           engines do the same work and tokens/s compare directly (``speedup`` is measured here)
  natural  EOS on: tokens/s over the tokens each engine actually generated (what a GRPO step sees;
           ``generate`` keeps finished rows in the batch until the longest one ends)

Usage:
  python benchmarks/rollout_speed.py [--model DIR] [--configs 16x4,16x8,32x8] [--reps 3]
                                     [--max-new-tokens 160] [--threads N] [--precision fp32|bf16]
  python benchmarks/rollout_speed.py --accuracy --model runs/zero/zero/model   # bf16 vs fp32 pass@1

Without ``--model`` a tiny default base is pretrained once (short: a speed benchmark only needs the
architecture and plausible lengths) into ``--cache-dir`` (default ~/.cache/r1lab/bench).
Prints one line of JSON per workload, then one summary line with ``speedup`` (native / hf, geometric
mean over the fixed-length workloads).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

from bench_common import default_model
from r1lab.models import load_model_and_tokenizer
from r1lab.rollout import HFEngine, NativeEngine, SamplingParams
from r1lab.rollout.engine import left_pad
from r1lab.runtime import autocast_ctx, setup_threads
from r1lab.tasks import get_task
from r1lab.tasks.templates import render_prompt


class RawGenerate:
    """Bare ``model.generate``: the same sampling arguments as HFEngine, nothing kept but the sequences."""

    def __init__(self, model, tokenizer, autocast=None):
        self.model, self.tokenizer, self.autocast = model, tokenizer, autocast
        self.inner = HFEngine(model, tokenizer)
        self.eos_ids, self.pad_id = self.inner.eos_ids, self.inner.pad_id

    @torch.no_grad()
    def generate(self, prompts, n, sampling):
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        x, mask = left_pad(ids, self.pad_id)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with self.autocast() if self.autocast else contextlib.nullcontext():
            out = self.model.generate(input_ids=x, attention_mask=mask, max_new_tokens=sampling.max_new_tokens,
                                      do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                                      top_k=0, num_return_sequences=n, pad_token_id=self.pad_id,
                                      eos_token_id=sorted(self.eos_ids))
        new = out[:, x.shape[1]:]
        # tokens actually generated: up to and including the first EOS
        lengths = []
        for row in new.tolist():
            end = next((j + 1 for j, t in enumerate(row) if t in self.eos_ids), len(row))
            lengths.append(end)
        return lengths


def generated_tokens(result) -> int:
    if result and isinstance(result[0], int):
        return sum(result)
    return sum(len(r.token_ids) for r in result)


def run_workload(engines: dict, prompts: list[str], group: int, sampling: SamplingParams, reps: int) -> dict:
    times = {name: [] for name in engines}
    tokens = {name: [] for name in engines}
    names = list(engines)
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.perf_counter()
            out = engines[name].generate(prompts, group, sampling)
            times[name].append(time.perf_counter() - t0)
            tokens[name].append(generated_tokens(out))
    row = {}
    for name in names:
        tps = [k / t for k, t in zip(tokens[name], times[name])]
        row[name] = {"tokens_per_s": round(statistics.median(tps), 1), "tokens_per_s_all": [round(v) for v in tps],
                     "seconds_median": round(statistics.median(times[name]), 3),
                     "tokens_median": statistics.median(tokens[name])}
    return row


def bf16_accuracy(model, tok, seeds: list[int], examples: int, samples: int, max_new_tokens: int) -> dict:
    """pass@1 on held-out ``arith`` problems with the ``r1lab eval`` protocol (T=0.6, top-p 0.95), fp32 vs
    bf16 autocast, alternating per seed (same problems and sampling seed for both precisions)."""
    from r1lab.eval.evaluate import EvalSettings, evaluate

    task = get_task("arith")
    exs = task.examples("test", n=examples, seed=1234)
    prompts = [render_prompt("r1zero", e.prompt) for e in exs]
    bf16 = functools.partial(autocast_ctx, torch.device("cpu"), "bf16")
    out = {"fp32": [], "bf16": [], "fp32_s": [], "bf16_s": []}
    for seed in seeds:
        settings = EvalSettings(samples=samples, temperature=0.6, top_p=0.95, max_new_tokens=max_new_tokens, seed=seed)
        for name, ac in (("fp32", None), ("bf16", bf16)):
            res = evaluate(NativeEngine(model, tok, max_batch=512, autocast=ac), task, exs, prompts, settings,
                           keep_responses=False)
            out[name].append(round(res["pass@1"], 4))
            out[name + "_s"].append(round(res["seconds"], 2))
    mean = {k: round(statistics.mean(out[k]), 4) for k in ("fp32", "bf16")}
    return {"benchmark": "bf16_accuracy", "examples": examples, "samples": samples, "seeds": seeds,
            "pass@1": out, "pass@1_mean": mean, "bf16_minus_fp32": round(mean["bf16"] - mean["fp32"], 4),
            "seconds_mean": {k: round(statistics.mean(out[k + "_s"]), 2) for k in ("fp32", "bf16")}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="HF model directory (default: pretrain a tiny base into --cache-dir)")
    ap.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "r1lab", "bench"))
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--configs", default="16x4,16x8,32x8", help="comma-separated PROMPTSxGROUP workloads")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--modes", default="fixed,natural")
    ap.add_argument("--engines", default="native,hf,hf_raw")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--accuracy", action="store_true",
                    help="instead of speed: pass@1 fp32 vs bf16 with the r1lab eval protocol (--model: a trained policy)")
    ap.add_argument("--accuracy-seeds", default="1234,1235,1236")
    args = ap.parse_args(argv)

    if args.threads:
        os.environ["R1LAB_THREADS"] = str(args.threads)
    setup_threads()
    model_dir = Path(args.model) if args.model else default_model(Path(args.cache_dir), args.pretrain_steps)
    model, tok = load_model_and_tokenizer(model_dir, "cpu")
    if args.accuracy:
        seeds = [int(v) for v in args.accuracy_seeds.split(",")]
        print(json.dumps(bf16_accuracy(model, tok, seeds, 200, 16, args.max_new_tokens)))
        return 0
    autocast = None if args.precision == "fp32" else functools.partial(autocast_ctx, torch.device("cpu"), "bf16")
    factories = {"native": lambda: NativeEngine(model, tok, max_batch=1024, autocast=autocast),
                 "hf": lambda: HFEngine(model, tok, max_batch=1024, autocast=autocast),
                 "hf_raw": lambda: RawGenerate(model, tok, autocast=autocast)}
    engine_names = [e for e in args.engines.split(",") if e]
    task = get_task("arith")
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",") if c]
    n_params = sum(p.numel() for p in model.parameters())
    rows, speedups = [], {"fixed": [], "natural": []}
    for mode in [m for m in args.modes.split(",") if m]:
        engines = {name: factories[name]() for name in engine_names}
        if mode == "fixed":  # an EOS id no model emits: every row runs to max_new_tokens
            for e in engines.values():
                e.eos_ids = {10**9}
        for e in engines.values():  # warm-up: first-call allocations and lazy imports
            e.generate(["Compute 1+2."], 2, SamplingParams(max_new_tokens=8, seed=0))
        for P, G in configs:
            prompts = [render_prompt("r1zero", ex.prompt) for ex in task.examples("train", n=P, seed=args.seed)]
            sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens, seed=args.seed)
            res = run_workload(engines, prompts, G, sampling, args.reps)
            row = {"mode": mode, "prompts": P, "group": G, "rows": P * G, **res}
            if "native" in res and "hf" in res:
                row["speedup"] = round(res["native"]["tokens_per_s"] / res["hf"]["tokens_per_s"], 3)
                speedups[mode].append(row["speedup"])
            if "native" in res and "hf_raw" in res:
                row["speedup_vs_raw_generate"] = round(res["native"]["tokens_per_s"] / res["hf_raw"]["tokens_per_s"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)

    def gmean(v):
        return round(math.exp(sum(math.log(x) for x in v) / len(v)), 3) if v else None

    summary = {"benchmark": "rollout_speed", "model": str(model_dir), "params": n_params,
               "threads": torch.get_num_threads(), "precision": args.precision, "reps": args.reps,
               "max_new_tokens": args.max_new_tokens, "torch": torch.__version__,
               "speedup": gmean(speedups["fixed"]) or gmean(speedups["natural"]),
               "speedup_natural": gmean(speedups["natural"]),
               "per_config": {f"{r['mode']}:{r['prompts']}x{r['group']}": r.get("speedup") for r in rows}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
