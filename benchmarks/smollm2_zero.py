"""GRPO on SmolLM2-135M-Instruct on 2 CPU cores, against a random-reward control of the same budget.

The task: one-operation arithmetic (``Compute 92*3``: +, - or * of numbers up to 99 and a factor up to 9,
English prompts), which SmolLM2-135M-Instruct gets right ~10% of the time at T = 0.6 but ~35% of the
time in one of 8 tries (measured, 48 problems): pass@8 well above pass@1 is what group-relative RL can
sharpen. Prompts use the model's chat template with the instruction "Give only the final answer within
\\boxed{}." (its answers are then one or two lines; with R1's "Please reason step by step" they ramble for
~100 tokens and get 6%). The reward is accuracy alone (the answer in \\boxed{}, else the last number).

Two arms from the same model, same prompts, seeds and steps (``--control none`` skips the second):

- ``accuracy``: GRPO with the rule reward, as R1-Zero;
- ``random``: GRPO with rewards drawn at random (1 with probability 0.5, independent of the response;
  Shao et al. 2025, "Spurious Rewards"), given as a user reward function (``random_reward`` below, TRL's
  contract). Accuracy is logged with weight 0.

Held-out pass@1 (``--eval-examples`` test problems x ``--eval-samples``, T = 0.6, top-p 0.95) before and
after each arm; the change with its paired standard error (per problem, before vs after). A finding
"learns": the accuracy arm rises >= 10 points and by more than 2 standard errors; "control_flat": the
random arm does not. Prints one JSON line; ``--plot`` writes the curve (training accuracy per step of both
arms, held-out points) as PNG.

Usage: python benchmarks/smollm2_zero.py [--model DIR] [--steps N] [--prompts P] [--group G]
       [--max-new-tokens T] [--lr LR] [--lora R] [--eval-examples N] [--eval-samples K]
       [--control random|none] [--out DIR] [--plot PNG]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from r1lab.models.fetch import fetch_model
from r1lab.models.load import load_model_and_tokenizer, load_tokenizer
from r1lab.models.prompting import CHAT, build_prompts
from r1lab.pipeline.findings import paired
from r1lab.rewards.extract import last_boxed
from r1lab.rollout import NativeEngine
from r1lab.runtime import autocast_ctx, pick_device, read_jsonl, seed_everything, setup_threads
from r1lab.tasks import get_task, register_task
from r1lab.models.lora import LoraSettings
from r1lab.train.grpo import GRPOConfig
from r1lab.train.grpo_run import heldout_eval, run_grpo

MODEL = "smollm2-135m-instruct"
TASK = "chat_arith"
INSTRUCTION = "Give only the final answer within \\boxed{}."


class ChatTask:
    """``task`` with every prompt rendered by ``tokenizer``'s chat template (``instruction`` appended to the
    problem), minus its final newline: the trainer's ``bare`` template puts that newline back."""

    def __init__(self, task, tokenizer, instruction: str | None = INSTRUCTION):
        self.task, self.tokenizer, self.instruction = task, tokenizer, instruction
        self.name = f"chat:{getattr(task, 'name', 'task')}"

    def examples(self, split: str, n: int | None = None, seed: int = 0):
        examples = self.task.examples(split, n=n, seed=seed)
        prompts = build_prompts(self.tokenizer, [e.prompt for e in examples], CHAT, instruction=self.instruction)
        if not all(p.endswith("\n") for p in prompts):
            raise ValueError("this chat template does not end its generation prompt with a newline")
        return [dataclasses.replace(e, prompt=p[:-1], meta={**e.meta, "problem": e.prompt})
                for e, p in zip(examples, prompts)]

    def verify(self, response: str, example):
        return self.task.verify(response, example)


def register_chat_task(tokenizer, instruction: str | None = INSTRUCTION) -> None:
    """``chat_arith``: the ``arith`` task (same options) with chat prompts for ``tokenizer``."""
    register_task(TASK)(lambda **options: ChatTask(get_task("arith", **options), tokenizer, instruction))


def random_reward(prompts, completions, **kwargs):
    """The control's reward (TRL's contract): 1 or 0 with probability 1/2 each, whatever the completion
    says. Drawn from a hash of (prompt, completion, its index in the batch), so a run is reproducible and
    two samples with the same text still draw independently."""
    out = []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        h = hashlib.blake2b(f"{i}\x00{p}\x00{c}".encode(), digest_size=8).digest()
        out.append(float(h[0] & 1))
    return out


ARMS = {"accuracy": {"accuracy": 1.0}, "random": {f"{Path(__file__).resolve()}:random_reward": 1.0, "accuracy": 0.0}}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help=f"HF model directory (default: fetch {MODEL})")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--prompts", type=int, default=8, help="P prompts per step")
    ap.add_argument("--group", type=int, default=8, help="G samples per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-5, help="learning rate (with --lora: the adapter's)")
    ap.add_argument("--lora", type=int, default=0, help="LoRA rank (0: full fine-tuning)")
    ap.add_argument("--min-ops", type=int, default=1)
    ap.add_argument("--max-ops", type=int, default=1)
    ap.add_argument("--instruction", default=INSTRUCTION, help="appended to each problem in the user turn")
    ap.add_argument("--eval-examples", type=int, default=200)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--control", choices=["random", "none"], default="random")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-preflight", action="store_true", help="skip the trainer's no-signal check (smoke runs)")
    ap.add_argument("--out", help="run directory (default: a temporary one)")
    ap.add_argument("--plot", help="write the curve here (PNG)")
    return ap.parse_args(argv)


def eval_summary(res: dict, k: int) -> dict:
    texts = [t for row in res["per_example"] for t in row["responses"]]
    return {"pass@1": round(res["pass@1"], 4), "pass@1_stderr": round(res["pass@1_stderr"], 4),
            f"pass@{k}": round(res[f"pass@{k}"], 4), f"cons@{k}": round(res[f"cons@{k}"], 4),
            "boxed_rate": round(sum(last_boxed(t) is not None for t in texts) / max(1, len(texts)), 4),
            "mean_response_tokens": round(res["mean_response_tokens"], 1),
            "truncated_rate": round(res["truncated_rate"], 4), "seconds": round(res["seconds"], 1)}


def heldout(model_dir, task, cfg: GRPOConfig, device, autocast) -> dict:
    """The trainer's own evaluation of the model in ``model_dir`` on the task's test split (per-example rows
    kept: the change before -> after is paired per problem)."""
    model, tok = load_model_and_tokenizer(model_dir, device)
    engine = NativeEngine(model, tok, device=device, autocast=autocast)
    examples = task.examples("test", n=cfg.eval_examples, seed=cfg.seed)
    return heldout_eval(engine, task, examples, cfg, keep_responses=True)


def run_arm(name: str, cfg: GRPOConfig, model_dir: str, out: Path, task, device, autocast, before: dict) -> dict:
    cfg = dataclasses.replace(cfg, rewards=dict(ARMS[name]))
    t_train = time.time()
    run_grpo(cfg, model_dir, out, progress=lambda s, n, **kw: print(
        f"[{name}] step {s}/{n} " + " ".join(f"{k}={v:.3g}" for k, v in kw.items()), file=sys.stderr))
    train_s = time.time() - t_train
    seed_everything(cfg.seed)
    after = heldout(out / "model", task, cfg, device, autocast)
    change, se, _ = paired(before, after)
    steps = read_jsonl(out / "metrics.jsonl")
    return {
        "rewards": cfg.rewards, "after": eval_summary(after, cfg.eval_samples), "change": round(change, 4), "change_stderr": round(se, 4),
        "rises": change >= 0.10 and change > 2 * se,
        "accuracy_per_step": [round(m["reward/accuracy"], 4) for m in steps],
        "reward_per_step": [round(m["reward"], 4) for m in steps],
        "response_len_per_step": [round(m["response_len_mean"], 1) for m in steps],
        "train_seconds": round(train_s, 1),
        "sec_per_step": round(sum(m["step_s"] for m in steps) / max(1, len(steps)), 1),
        "sample_s_per_step": round(sum(m["sample_s"] for m in steps) / max(1, len(steps)), 1),
        "train_s_per_step": round(sum(m["train_s"] for m in steps) / max(1, len(steps)), 1),
        "run_dir": str(out),
    }


def plot(path: str, line: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"accuracy": "tab:blue", "random": "tab:grey"}
    for name, arm in line["arms"].items():
        acc = arm["accuracy_per_step"]
        w = 5  # a 5-step moving average of the training samples' accuracy
        smooth = [sum(acc[max(0, i - w + 1):i + 1]) / len(acc[max(0, i - w + 1):i + 1]) for i in range(len(acc))]
        ax.plot(range(1, len(acc) + 1), smooth, color=colours[name], label=f"{name} reward: training samples' accuracy, T = {line['temperature']:g} (5-step mean)")
        ax.errorbar([len(acc)], [arm["after"]["pass@1"]], yerr=[2 * arm["after"]["pass@1_stderr"]], fmt="o",
                    color=colours[name], capsize=3, label=f"{name} reward: held-out pass@1 after (±2 s.e.)")
    b = line["before"]
    ax.errorbar([0], [b["pass@1"]], yerr=[2 * b["pass@1_stderr"]], fmt="s", color="black", capsize=3,
                label="held-out pass@1 before (±2 s.e.)")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("accuracy")
    ax.set_title(f"GRPO on {Path(line['model']).name}, one-operation arithmetic\n{line['machine']}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    from r1lab.runtime.calibrate import calibrate, calibration_line

    args = parse_args(argv)
    setup_threads()
    t0 = time.time()
    machine = calibration_line(calibrate())
    print(machine, file=sys.stderr)
    model_dir = args.model or str(fetch_model(MODEL, progress=lambda m: print(m, file=sys.stderr)))
    register_chat_task(load_tokenizer(model_dir), args.instruction or None)
    lora = LoraSettings(r=args.lora) if args.lora else LoraSettings()
    cfg = GRPOConfig(task=TASK, task_options={"min_ops": args.min_ops, "max_ops": args.max_ops,
                                              "question_langs": {"en": 1.0}}, template="bare",
                     prompts_per_step=args.prompts, group_size=args.group, max_new_tokens=args.max_new_tokens,
                     steps=args.steps, lr=args.lr, lora=lora, eval_every=0,
                     eval_examples=args.eval_examples, eval_samples=args.eval_samples, log_completions_every=0,
                     checkpoint_every=max(args.steps, 1), report_to=[],
                     precision=args.precision, seed=args.seed, micro_batch_size=16, preflight=not args.no_preflight)
    cfg.validate()
    device = pick_device(cfg.device)
    autocast = None if args.precision == "fp32" else functools.partial(autocast_ctx, device, args.precision)
    task = get_task(TASK, **cfg.task_options)
    out = Path(args.out or tempfile.mkdtemp(prefix="smollm2_zero_"))

    seed_everything(cfg.seed)
    before = heldout(model_dir, task, cfg, device, autocast)
    print(json.dumps({"before": eval_summary(before, cfg.eval_samples)}), file=sys.stderr)
    arms = {}
    for name in ["accuracy"] + ([args.control] if args.control != "none" else []):
        arms[name] = run_arm(name, cfg, model_dir, out / name, task, device, autocast, before)
        print(json.dumps({name: {k: v for k, v in arms[name].items() if k != "after"}}), file=sys.stderr)
    line = {
        "machine": machine, "model": model_dir,
        "task": f"arith min_ops={args.min_ops} max_ops={args.max_ops} (English), chat template + {args.instruction!r}",
        "steps": args.steps, "P": args.prompts, "G": args.group, "max_new_tokens": args.max_new_tokens,
        "lr": args.lr, "lora_r": args.lora, "kl_coef": cfg.kl_coef, "temperature": cfg.temperature,
        "precision": args.precision,
        "eval": f"{args.eval_examples} test problems x {args.eval_samples} samples, T={cfg.eval_temperature}, "
                f"top-p {cfg.eval_top_p}",
        "before": eval_summary(before, cfg.eval_samples), "arms": arms,
        "learns": arms["accuracy"]["rises"],
        "control_flat": (not arms[args.control]["rises"]) if args.control != "none" else None,
        "wall_seconds": round(time.time() - t0, 1),
    }
    if args.plot:
        plot(args.plot, line)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
