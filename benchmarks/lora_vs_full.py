"""GRPO steps with LoRA against full fine-tuning on the same model: step time and peak RSS, side by side.

Each measurement runs in its own process (peak RSS is per process), alternating full / LoRA for
``--rounds`` rounds because these machines are noisy. A step samples ``--prompts`` x ``--group`` responses
of up to ``--max-new-tokens`` tokens (arithmetic prompts, the R1-Zero template), scores them and makes one
update with the k3 KL to the reference (full: a second copy of the weights; LoRA: the adapter disabled).
It also times what the native sampler pays once a generation to build its fused weights (``fuse_cpu_s``):
with LoRA the effective W + s B A of every adapted matrix, against the plain concatenations of full
training (nothing is merged into the base weights). ``step_cpu_s`` is the CPU time of a step (one
thread): on a core shared with other jobs it measures the work where the wall time ``step_s`` does not.

Usage: python benchmarks/lora_vs_full.py --model DIR [--steps 3] [--warmup 1] [--rounds 1] [--lora-r 16]
(``r1lab models fetch smollm2-135m-instruct`` prints the SmolLM2-135M-Instruct directory.) Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch


def worker(args) -> dict:
    from r1lab.models import load_model_and_tokenizer
    from r1lab.models.lora import LoraSettings, attach_lora
    from r1lab.rewards import RewardFailures
    from r1lab.rollout.engine import _LlamaDecoder
    from r1lab.runtime import setup_threads
    from r1lab.runtime.memory import peak_rss_mb
    from r1lab.tasks import get_task
    from r1lab.train.grpo import GRPOConfig, apply_schedule, grpo_step, setup_grpo

    setup_threads()
    torch.manual_seed(0)
    lora = LoraSettings(r=args.lora_r if args.worker == "lora" else 0)
    cfg = GRPOConfig(prompts_per_step=args.prompts, group_size=args.group, max_new_tokens=args.max_new_tokens,
                     preflight=False, eval_every=0, lr=1e-5, lora=lora, rewards={"accuracy": 1.0, "format": 1.0})
    device = torch.device("cpu")
    policy, tok = load_model_and_tokenizer(args.model, device)
    policy = attach_lora(policy, lora)
    task = get_task(cfg.task, **cfg.task_options)
    ref, opt, engine, rewards = setup_grpo(policy, tok, task, cfg, device)
    rows = []
    for s in range(args.warmup + args.steps):
        apply_schedule(opt, cfg, s)
        cpu0 = time.process_time()
        m = grpo_step(policy, ref, opt, engine, task, rewards, RewardFailures(), cfg, s, tok)
        m["step_cpu_s"] = time.process_time() - cpu0  # CPU seconds: robust to other jobs on a shared core
        if s >= args.warmup:
            rows.append(m)
    out = {"mode": args.worker, "peak_rss_mb": round(peak_rss_mb(), 1),
           "trainable_params": sum(p.numel() for p in policy.parameters() if p.requires_grad)}
    for key in ("step_s", "step_cpu_s", "sample_s", "train_s", "response_len_mean"):
        out[key] = round(statistics.mean(r[key] for r in rows), 3)
    with torch.no_grad():  # what a generation pays to build its fused weights (with LoRA: + s B A per matrix)
        decoder = _LlamaDecoder(policy.eval(), {})
        times = []
        for _ in range(5):
            t0 = time.process_time()
            decoder._fuse_weights()
            times.append(time.process_time() - t0)
        out["fuse_cpu_s"] = round(statistics.median(times), 5)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model directory")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--worker", choices=["full", "lora"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    runs: dict[str, list[dict]] = {"full": [], "lora": []}
    passthrough = list(argv if argv is not None else sys.argv[1:])
    for _ in range(args.rounds):
        for mode in ("full", "lora"):
            p = subprocess.run([sys.executable, __file__, *passthrough, "--worker", mode], capture_output=True,
                               text=True, check=True)
            runs[mode].append(json.loads(p.stdout.strip().splitlines()[-1]))
    summary = {mode: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "mode"} for mode, rs in runs.items()}
    print(json.dumps({
        "model": args.model, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(), "prompts": args.prompts, "group": args.group,
        "max_new_tokens": args.max_new_tokens, "lora_r": args.lora_r, "steps": args.steps, "rounds": args.rounds,
        **summary,
        "step_s_ratio_lora_over_full": round(summary["lora"]["step_s"] / summary["full"]["step_s"], 3),
        "step_cpu_s_ratio_lora_over_full": round(summary["lora"]["step_cpu_s"] / summary["full"]["step_cpu_s"], 3),
        "peak_rss_ratio_lora_over_full": round(summary["lora"]["peak_rss_mb"] / summary["full"]["peak_rss_mb"], 3),
        "runs": runs,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
