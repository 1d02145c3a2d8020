"""Whole GRPO steps: r1lab's GRPO against TRL's ``GRPOTrainer`` on the same model, prompts and rewards.

Both start from the same checkpoint (two separate copies), in one process, and take their steps in
alternation: TRL step s, then r1lab step s (run from a TRL ``TrainerCallback.on_step_end``), so machine
noise hits both alike. Timed: each whole step (sample + score + update). Reported: completion tokens per
second of whole steps (tokens the policy generated, EOS included, over the summed step time), seconds
per step, and the mean reward over the last steps (learning parity).

Shared set-up
  model       ``--model DIR`` (a tiny default base is pretrained into ``--cache-dir`` without it)
  prompts     the ``arith`` task's train prompts, R1-Zero template (``render_prompt("r1zero", ...)``):
              step s uses exactly r1lab's ``train_prompts(task, cfg, s)`` for both trainers
  rewards     r1lab's accuracy + format rewards (``build_rewards({"accuracy": 1, "format": 1}, task)``),
              weights 1 + 1; for TRL each is a plain Python reward function over the completions' text
  shape       P = 8 prompts a step, G = 8 samples a prompt (64 rows), 64 max completion tokens,
              temperature 1, top-p 1, no top-k
  update      one optimizer step per GRPO step on all 64 rows (mu = 1, no minibatching: on-policy, so no
              old-logprob pass), LR 3e-4 constant, no warmup, AdamW betas (0.9, 0.95), eps 1e-8, weight
              decay 0, grad clip 1.0, beta (KL to the reference) 0.001 with the k3 estimator, clip epsilon
              0.2, group-std advantage scaling, per-sequence token-mean loss (r1lab "seq-mean-token-mean"
              = TRL ``loss_type="grpo"``)
  threads     both in the same process with the same torch thread count (``--threads``, default all cores)

TRL configuration (trl.GRPOConfig), chosen to be fair to TRL on a CPU:
  use_cpu=True, bf16=False, fp16=False (fp32 like r1lab), gradient_checkpointing=False, use_vllm=False
  (transformers ``generate``), per_device_train_batch_size=64, gradient_accumulation_steps=1,
  generation_batch_size=64 (one generate call of 8 prompts x 8, the same batch r1lab samples),
  steps_per_generation=1, num_iterations=1, num_generations=8, max_completion_length=64,
  temperature=1.0, top_p=1.0, top_k=0, beta=0.001, epsilon=0.2, loss_type="grpo",
  scale_rewards="group", learning_rate=3e-4, lr_scheduler_type="constant", warmup_steps=0,
  adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8, weight_decay=0.0, max_grad_norm=1.0,
  shuffle_dataset=False (so step s sees r1lab's prompts of step s), dataloader_num_workers=0,
  report_to="none", logging_strategy="no", save_strategy="no", log_completions=False,
  disable_tqdm=True, seed=--seed; the model is passed as an fp32 ``AutoModelForCausalLM`` instance.
r1lab configuration: ``GRPOConfig(prompts_per_step=8, group_size=8, max_new_tokens=64, lr=3e-4,
  kl_coef=0.001, clip_eps=0.2, micro_batch_size=64, eval_every=0, precision="fp32", preflight=False)``
  through ``setup_grpo`` and ``grpo_step``.

``--precision bf16`` runs both in bf16 autocast instead (r1lab ``precision="bf16"``, TRL ``bf16=True``).

Usage:
  python benchmarks/grpo_vs_trl.py [--model DIR] [--steps 30] [--last 10] [--threads N] [--precision fp32|bf16]
                                   [--seeds 0,1,2]
Prints one JSON line per step pair, then a summary line with ``speedup`` (r1lab tokens/s over TRL
tokens/s), ``reward_r1lab`` and ``reward_trl`` (mean over the last ``--last`` steps) and the versions.
With several ``--seeds`` (one run after the other, each from the same checkpoint), a last line pools
them: ``speedup`` = all of r1lab's completion tokens over all its step seconds, against the same for
TRL (tokens per step move with the lengths each side's policy happens to sample, so one run is a noisy
measure), ``speedup_seconds_per_step``, the per-seed speedups, and each side's reward as the mean over
seeds with the standard error over seeds.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench_common import default_model
from r1lab.models import load_model_and_tokenizer
from r1lab.rewards import RewardFailures
from r1lab.runtime import autocast_ctx, setup_threads
from r1lab.tasks import get_task
from r1lab.tasks.templates import render_prompt
from r1lab.train.grpo import GRPOConfig, apply_schedule, grpo_step, setup_grpo, train_prompts


def r1lab_config(args) -> GRPOConfig:
    return GRPOConfig(task="arith", template="r1zero", prompts_per_step=args.prompts, group_size=args.group,
                      max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, steps=args.steps, lr=args.lr,
                      lr_schedule="constant", weight_decay=0.0, grad_clip=1.0, mu=1, minibatches=1,
                      micro_batch_size=args.prompts * args.group, clip_eps=args.eps, kl_coef=args.beta,
                      adv_scale="group", loss_agg="seq-mean-token-mean",
                      rewards={"accuracy": 1.0, "format": 1.0}, eval_every=0, precision=args.precision, device="cpu",
                      max_batch=args.prompts * args.group, seed=args.seed, preflight=False)


class R1labSide:
    """r1lab's GRPO, one ``grpo_step`` at a time."""

    def __init__(self, model_dir, cfg: GRPOConfig):
        self.cfg = cfg
        self.policy, self.tok = load_model_and_tokenizer(model_dir, "cpu")
        self.task = get_task(cfg.task)
        cpu = torch.device("cpu")
        self.autocast = None if cfg.precision == "fp32" else functools.partial(autocast_ctx, cpu, cfg.precision)
        self.ref, self.opt, self.engine, self.rewards = setup_grpo(self.policy, self.tok, self.task, cfg, cpu,
                                                                   self.autocast)
        self.failures = RewardFailures()

    def step(self, s: int) -> dict:
        apply_schedule(self.opt, self.cfg, s)
        t0 = time.perf_counter()
        m = grpo_step(self.policy, self.ref, self.opt, self.engine, self.task, self.rewards, self.failures,
                      self.cfg, s, self.tok, self.autocast)
        seconds = time.perf_counter() - t0
        rows = self.cfg.prompts_per_step * self.cfg.group_size
        return {"seconds": seconds, "tokens": round(m["response_len_mean"] * rows), "reward": m["reward"],
                "sample_s": m["sample_s"], "score_s": m["score_s"], "train_s": m["train_s"]}


def trl_rewards(cfg: GRPOConfig, task, examples: list, log: dict):
    """r1lab's rewards as TRL reward functions ``(prompts, completions, **columns) -> list[float]``."""
    from r1lab.rewards import build_rewards

    funcs = []
    for name, (fn, _w) in build_rewards(cfg.rewards, task, cfg.reward_options).items():
        def reward(prompts, completions, example_index, completion_ids=None, _fn=fn, _name=name, **kwargs):
            t0 = time.perf_counter()
            scores = [float(v) for v in _fn(completions, [examples[i] for i in example_index])]
            log["score_s"] += time.perf_counter() - t0
            log["scores"].setdefault(_name, []).extend(scores)
            if completion_ids is not None and _name == next(iter(cfg.rewards)):
                log["tokens"] += sum(len(ids) for ids in completion_ids)
            return scores
        reward.__name__ = f"r1lab_{name}"
        funcs.append(reward)
    return funcs


def build_trl(model_dir, cfg: GRPOConfig, task, args, out_dir: str, callbacks: list, log: dict):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    examples = [ex for s in range(args.steps) for ex in train_prompts(task, cfg, s)]
    dataset = Dataset.from_dict({"prompt": [render_prompt(cfg.template, ex.prompt) for ex in examples],
                                 "example_index": list(range(len(examples)))})
    rows = args.prompts * args.group
    trl_args = TRLConfig(
        output_dir=out_dir, use_cpu=True, bf16=args.precision == "bf16", fp16=False, gradient_checkpointing=False, use_vllm=False,
        per_device_train_batch_size=rows, gradient_accumulation_steps=1, generation_batch_size=rows,
        num_generations=args.group, num_iterations=1, max_completion_length=args.max_new_tokens,
        temperature=1.0, top_p=1.0, top_k=0, beta=args.beta, epsilon=args.eps, loss_type="grpo",
        scale_rewards="group", reward_weights=[float(w) for w in cfg.rewards.values()],
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, adam_beta1=0.9, adam_beta2=0.95,
        adam_epsilon=1e-8, weight_decay=0.0, max_grad_norm=1.0, max_steps=args.steps, num_train_epochs=1,
        shuffle_dataset=False, dataloader_num_workers=0, report_to="none", logging_strategy="no",
        save_strategy="no", log_completions=False, disable_tqdm=True, seed=args.seed,
    )
    _, tok = load_model_and_tokenizer(model_dir, "cpu")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=trl_rewards(cfg, task, examples, log), args=trl_args,
                          train_dataset=dataset, processing_class=tok, callbacks=callbacks)
    # time TRL's generation inside its step (the rest of the step is scoring and the update)
    inner = trainer._generate_single_turn

    def timed_generate(*a, **k):
        t0 = time.perf_counter()
        out = inner(*a, **k)
        log["sample_s"] += time.perf_counter() - t0
        return out

    trainer._generate_single_turn = timed_generate
    return trainer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="HF model directory (default: pretrain a tiny base into --cache-dir)")
    ap.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "r1lab", "bench"))
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--last", type=int, default=10, help="steps the final mean reward is taken over")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--beta", type=float, default=0.001)
    ap.add_argument("--eps", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="both trainers: fp32, or bf16 autocast (r1lab precision=bf16, TRL bf16=True)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, help="comma-separated seeds, run in turn and pooled (overrides --seed)")
    args = ap.parse_args(argv)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]

    if args.threads:
        os.environ["R1LAB_THREADS"] = str(args.threads)
    setup_threads()

    model_dir = Path(args.model) if args.model else default_model(Path(args.cache_dir), args.pretrain_steps)
    summaries = [run_one(argparse.Namespace(**{**vars(args), "seed": seed}), model_dir) for seed in seeds]
    if len(summaries) > 1:
        print(json.dumps(pooled(summaries)))
    return 0


def pooled(summaries: list[dict]) -> dict:
    """One summary over several seeds' runs (see the module docstring)."""
    def total(side, key):
        return sum(s[side][key] for s in summaries)

    tps = {side: total(side, "completion_tokens") / total(side, "seconds") for side in ("r1lab", "trl")}
    sps = {side: total(side, "seconds") / sum(s["steps"] for s in summaries) for side in ("r1lab", "trl")}

    def mean_se(key):
        vals = [s[key] for s in summaries]
        return round(statistics.mean(vals), 4), round(statistics.stdev(vals) / len(vals) ** 0.5, 4)

    first = summaries[0]
    return {"benchmark": "grpo_vs_trl", "pooled_seeds": [s["seed"] for s in summaries], "model": first["model"],
            "precision": first["precision"], "steps": first["steps"], "threads": first["threads"],
            "trl_version": first["trl_version"], "torch_version": first["torch_version"],
            "r1lab_tokens_per_s": round(tps["r1lab"], 1), "trl_tokens_per_s": round(tps["trl"], 1),
            "r1lab_seconds_per_step": round(sps["r1lab"], 3), "trl_seconds_per_step": round(sps["trl"], 3),
            "speedup_per_seed": [s["speedup"] for s in summaries],
            "speedup_seconds_per_step": round(sps["trl"] / sps["r1lab"], 3),
            "reward_r1lab_mean_se": mean_se("reward_r1lab"), "reward_trl_mean_se": mean_se("reward_trl"),
            "speedup": round(tps["r1lab"] / tps["trl"], 3)}


def run_one(args, model_dir) -> dict:
    """One alternating run of ``args.steps`` step pairs from ``model_dir``; prints and returns its summary."""
    import trl
    import transformers
    from transformers import TrainerCallback

    cfg = r1lab_config(args)
    r1 = R1labSide(model_dir, cfg)
    log = {"tokens": 0, "score_s": 0.0, "sample_s": 0.0, "scores": {}}
    steps: list[dict] = []

    class Alternate(TrainerCallback):
        """Times each TRL step, then runs r1lab's step of the same index before TRL's next one."""

        def on_step_begin(self, a, state, control, **kw):
            for k in ("tokens", "score_s", "sample_s"):
                log[k] = 0 if k == "tokens" else 0.0
            log["scores"] = {}
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            seconds = time.perf_counter() - self.t0
            rows = args.prompts * args.group
            reward = sum(sum(v) for v in log["scores"].values()) / rows
            trl_step = {"seconds": seconds, "tokens": log["tokens"], "reward": reward,
                        "sample_s": log["sample_s"], "score_s": log["score_s"]}
            s = len(steps)
            r1_step = r1.step(s)
            steps.append({"step": s, "trl": trl_step, "r1lab": r1_step})
            print(json.dumps({"step": s, "trl": {k: round(v, 4) for k, v in trl_step.items()},
                              "r1lab": {k: round(v, 4) for k, v in r1_step.items()}}), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trl(model_dir, cfg, r1.task, args, tmp, [Alternate()], log)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0

    def side(name):
        rows = [s[name] for s in steps]
        seconds = sum(r["seconds"] for r in rows)
        tokens = sum(r["tokens"] for r in rows)
        last = rows[-args.last:]
        out = {"tokens_per_s": round(tokens / seconds, 1), "seconds": seconds,
               "seconds_per_step": round(seconds / len(rows), 3),
               "seconds_per_step_median": round(statistics.median(r["seconds"] for r in rows), 3),
               "completion_tokens": tokens, "sample_s_per_step": round(sum(r["sample_s"] for r in rows) / len(rows), 3),
               "score_s_per_step": round(sum(r["score_s"] for r in rows) / len(rows), 4),
               "reward_first": round(statistics.mean(r["reward"] for r in rows[: args.last]), 4),
               "reward_last": round(statistics.mean(r["reward"] for r in last), 4),
               # spread of the per-step mean reward over the last steps, as a standard error
               "reward_last_se": round(statistics.stdev(r["reward"] for r in last) / len(last) ** 0.5, 4)
               if len(last) > 1 else None}
        if name == "r1lab":
            out["train_s_per_step"] = round(sum(r["train_s"] for r in rows) / len(rows), 3)
        return out

    trl_side, r1_side = side("trl"), side("r1lab")
    r1_total = sum(s["r1lab"]["seconds"] for s in steps)
    summary = {"benchmark": "grpo_vs_trl", "model": str(model_dir), "seed": args.seed,
               "params": sum(p.numel() for p in r1.policy.parameters()), "steps": len(steps), "last": args.last,
               "prompts": args.prompts, "group": args.group, "max_new_tokens": args.max_new_tokens,
               "threads": torch.get_num_threads(), "precision": args.precision, "trl_version": trl.__version__,
               "transformers_version": transformers.__version__, "torch_version": torch.__version__,
               "r1lab": r1_side, "trl": trl_side,
               "trl_train_wall_minus_r1lab_s": round(wall - r1_total, 2),
               "speedup": round(r1_side["tokens_per_s"] / trl_side["tokens_per_s"], 3),
               "speedup_seconds_per_step": round(trl_side["seconds_per_step"] / r1_side["seconds_per_step"], 3),
               "reward_r1lab": r1_side["reward_last"], "reward_trl": trl_side["reward_last"]}
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
