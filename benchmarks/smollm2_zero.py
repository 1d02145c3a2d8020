"""R1-Zero-style GRPO on SmolLM2-135M-Instruct, on CPU: arithmetic chains, held-out accuracy before and after.

Pure RL with a rule reward, as in R1-Zero, run with r1lab's trainer (``run_grpo``) for a fixed number of
steps. Two departures from the paper's R1-Zero, both because SmolLM2-135M-Instruct is a chat model and
not a base model: prompts use its chat template with R1's instruction "Please reason step by step, and
put your final answer within \\boxed{}." (not the R1-Zero template), and the reward is accuracy alone
(R1-Zero's format reward checks <think>/<answer> tags that this prompt does not ask for).

The trainer renders prompts with r1lab's plain templates only, so chat prompts reach it through a task
wrapper (``ChatTask``): each example's prompt is the chat-rendered text, and the ``bare`` template adds
back the final newline the wrapper strips. A trainer with ``template="chat"`` would not need this.

Prints one JSON line: held-out pass@1 (± s.e.), pass@k, cons@k, boxed rate, mean response tokens and
truncation before and after; the reward / accuracy per step; seconds per phase.

Usage: python benchmarks/smollm2_zero.py [--steps 15] [--prompts 4] [--group 4] [--max-new-tokens 128]
       [--lr 1e-5] [--eval-examples 64] [--eval-samples 4] [--precision bf16|fp32] [--no-preflight] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

from r1lab.models.fetch import fetch_model
from r1lab.models.load import load_model_and_tokenizer, load_tokenizer
from r1lab.models.prompting import CHAT, build_prompts
from r1lab.rewards.extract import last_boxed
from r1lab.rollout import NativeEngine
from r1lab.runtime import autocast_ctx, pick_device, read_jsonl, seed_everything, setup_threads
from r1lab.tasks import get_task, register_task
from r1lab.train.grpo import GRPOConfig
from r1lab.train.grpo_run import heldout_eval, run_grpo

MODEL = "smollm2-135m-instruct"
TASK = "chat_arith"


class ChatTask:
    """``task`` with every prompt rendered by ``tokenizer``'s chat template (R1's boxed instruction added),
    minus its final newline: the trainer's ``bare`` template puts that newline back."""

    def __init__(self, task, tokenizer):
        self.task, self.tokenizer = task, tokenizer
        self.name = f"chat:{getattr(task, 'name', 'task')}"

    def examples(self, split: str, n: int | None = None, seed: int = 0):
        examples = self.task.examples(split, n=n, seed=seed)
        prompts = build_prompts(self.tokenizer, [e.prompt for e in examples], CHAT)
        if not all(p.endswith("\n") for p in prompts):
            raise ValueError("this chat template does not end its generation prompt with a newline")
        return [dataclasses.replace(e, prompt=p[:-1], meta={**e.meta, "problem": e.prompt})
                for e, p in zip(examples, prompts)]

    def verify(self, response: str, example):
        return self.task.verify(response, example)


def register_chat_task(tokenizer) -> None:
    """``chat_arith``: the ``arith`` task (same options) with chat prompts for ``tokenizer``."""
    register_task(TASK)(lambda **options: ChatTask(get_task("arith", **options), tokenizer))


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help=f"HF model directory (default: fetch {MODEL})")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--prompts", type=int, default=4, help="P prompts per step")
    ap.add_argument("--group", type=int, default=4, help="G samples per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--min-ops", type=int, default=1)
    ap.add_argument("--max-ops", type=int, default=2)
    ap.add_argument("--eval-examples", type=int, default=64)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-preflight", action="store_true", help="skip the trainer's no-signal check (smoke runs)")
    ap.add_argument("--out", help="run directory (default: a temporary one)")
    return ap.parse_args(argv)


def eval_summary(res: dict, k: int) -> dict:
    texts = [t for row in res["per_example"] for t in row["responses"]]
    return {"pass@1": round(res["pass@1"], 4), "pass@1_stderr": round(res["pass@1_stderr"], 4),
            f"pass@{k}": round(res[f"pass@{k}"], 4), f"cons@{k}": round(res[f"cons@{k}"], 4),
            "boxed_rate": round(sum(last_boxed(t) is not None for t in texts) / max(1, len(texts)), 4),
            "mean_response_tokens": round(res["mean_response_tokens"], 1),
            "truncated_rate": round(res["truncated_rate"], 4), "seconds": round(res["seconds"], 1)}


def heldout(model_dir, task, cfg: GRPOConfig, device, autocast) -> dict:
    """Held-out pass@1 of the model in ``model_dir`` on the task's test split (the trainer's own eval)."""
    model, tok = load_model_and_tokenizer(model_dir, device)
    engine = NativeEngine(model, tok, device=device, autocast=autocast)
    examples = task.examples("test", n=cfg.eval_examples, seed=cfg.seed)
    return eval_summary(heldout_eval(engine, task, examples, cfg, keep_responses=True), cfg.eval_samples)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_threads()
    t0 = time.time()
    model_dir = args.model or str(fetch_model(MODEL, progress=lambda m: print(m, file=sys.stderr)))
    register_chat_task(load_tokenizer(model_dir))
    cfg = GRPOConfig(task=TASK, task_options={"min_ops": args.min_ops, "max_ops": args.max_ops}, template="bare",
                     prompts_per_step=args.prompts, group_size=args.group, max_new_tokens=args.max_new_tokens,
                     steps=args.steps, lr=args.lr, rewards={"accuracy": 1.0}, eval_every=0,
                     eval_examples=args.eval_examples, eval_samples=args.eval_samples,
                     precision=args.precision, seed=args.seed, micro_batch_size=16, preflight=not args.no_preflight)
    cfg.validate()
    device = pick_device(cfg.device)
    autocast = None if args.precision == "fp32" else functools.partial(autocast_ctx, device, args.precision)
    task = get_task(TASK, **cfg.task_options)
    out = Path(args.out or tempfile.mkdtemp(prefix="smollm2_zero_"))

    seed_everything(cfg.seed)
    before = heldout(model_dir, task, cfg, device, autocast)
    print(json.dumps({"before": before}), file=sys.stderr)
    t_train = time.time()
    info = run_grpo(cfg, model_dir, out, progress=lambda s, n, **kw: print(
        f"step {s}/{n} " + " ".join(f"{k}={v:.3g}" for k, v in kw.items()), file=sys.stderr))
    train_s = time.time() - t_train
    seed_everything(cfg.seed)
    after = heldout(out / "model", task, cfg, device, autocast)
    steps = read_jsonl(out / "metrics.jsonl")
    line = {
        "model": model_dir, "task": f"arith min_ops={args.min_ops} max_ops={args.max_ops}, chat + boxed",
        "steps": args.steps, "P": args.prompts, "G": args.group, "max_new_tokens": args.max_new_tokens,
        "lr": args.lr, "kl_coef": cfg.kl_coef, "temperature": cfg.temperature, "precision": args.precision,
        "eval": f"{args.eval_examples} test problems x {args.eval_samples} samples, T={cfg.eval_temperature}, "
                f"top-p {cfg.eval_top_p}",
        "before": before, "after": after,
        "reward_per_step": [round(m["reward"], 3) for m in steps],
        "response_len_per_step": [round(m["response_len_mean"], 1) for m in steps],
        "train_seconds": round(train_s, 1),
        "sec_per_step": round(sum(m["step_s"] for m in steps) / max(1, len(steps)), 1),
        "sample_s_per_step": round(sum(m["sample_s"] for m in steps) / max(1, len(steps)), 1),
        "train_s_per_step": round(sum(m["train_s"] for m in steps) / max(1, len(steps)), 1),
        "wall_seconds": round(time.time() - t0, 1), "run_dir": str(out),
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
