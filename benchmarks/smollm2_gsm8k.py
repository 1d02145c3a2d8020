"""SmolLM2-135M-Instruct on GSM8K with R1's evaluation protocol, on whatever device is here.

k samples per problem at temperature 0.6 / top-p 0.95, the tokenizer's chat template with R1's
instruction "Please reason step by step, and put your final answer within \\boxed{}." in the user turn,
graded by r1lab's math grader (task ``gsm8k``: the first ``--examples`` problems of the test file).
The model is fetched (and converted) on first use unless ``--model`` points at a directory.

Prints one JSON line: pass@1 (± s.e. over problems), cons@k, pass@k, mean response tokens, boxed rate
(responses with a \\boxed{} answer), R1-Zero format rate, truncation, wall seconds, and generated
tokens per second of sampling (grading excluded).

Usage: python benchmarks/smollm2_gsm8k.py [--examples 200] [--samples 4] [--max-new-tokens 512]
       [--precision bf16|fp32] [--think-prefix] [--model DIR] [--data-dir DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

from r1lab.eval.evaluate import EvalSettings, evaluate
from r1lab.models.fetch import fetch_model
from r1lab.models.load import load_model_and_tokenizer
from r1lab.models.prompting import CHAT, build_prompts, default_system_prompt
from r1lab.rewards.extract import last_boxed
from r1lab.rollout import NativeEngine
from r1lab.runtime import atomic_write_json, autocast_ctx, pick_device, setup_threads
from r1lab.tasks import get_task

MODEL = "smollm2-135m-instruct"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help=f"HF model directory (default: fetch {MODEL})")
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--think-prefix", action="store_true")
    ap.add_argument("--max-batch", type=int, default=256, help="live rows in the sampler")
    ap.add_argument("--data-dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", help="write the full results (per-example responses) to this JSON file")
    return ap.parse_args(argv)


def response_stats(res: dict) -> dict:
    """Share of responses with a \\boxed{} answer (the instruction asks for one)."""
    texts = [t for row in res["per_example"] for t in row["responses"]]
    boxed = sum(last_boxed(t) is not None for t in texts)
    return {"boxed_rate": boxed / max(1, len(texts)), "responses": len(texts)}


class TimedEngine:
    """An engine that remembers how long its last ``generate`` took (sampling alone, without grading)."""

    def __init__(self, engine):
        self.engine, self.seconds = engine, 0.0

    def generate(self, prompts, n, sampling):
        t = time.time()
        out = self.engine.generate(prompts, n, sampling)
        self.seconds = time.time() - t
        return out


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_threads()
    t0 = time.time()
    model_dir = args.model or str(fetch_model(MODEL, progress=lambda m: print(m, file=sys.stderr)))
    device = pick_device("auto")
    model, tok = load_model_and_tokenizer(model_dir, device)
    task = get_task("gsm8k", **({"data_dir": args.data_dir} if args.data_dir else {}))
    examples = task.examples("test", n=args.examples)
    prompts = build_prompts(tok, [e.prompt for e in examples], CHAT, think_prefix=args.think_prefix)
    autocast = None if args.precision == "fp32" else functools.partial(autocast_ctx, device, "bf16")
    engine = TimedEngine(NativeEngine(model, tok, device=device, max_batch=args.max_batch, autocast=autocast))
    settings = EvalSettings(samples=args.samples, temperature=args.temperature, top_p=args.top_p,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    setup_s = time.time() - t0
    res = evaluate(engine, task, examples, prompts, settings)
    k = args.samples
    gen_tokens = res["mean_response_tokens"] * res["examples"] * k
    line = {
        "model": model_dir, "task": "gsm8k", "examples": res["examples"], "samples": k,
        "template": CHAT, "think_prefix": args.think_prefix, "precision": args.precision,
        "device": str(device), "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature, "top_p": args.top_p,
        "system_prompt_inserted_by_template": default_system_prompt(tok),
        "pass@1": round(res["pass@1"], 4), "pass@1_stderr": round(res["pass@1_stderr"], 4),
        f"cons@{k}": round(res[f"cons@{k}"], 4), f"pass@{k}": round(res[f"pass@{k}"], 4),
        "mean_response_tokens": round(res["mean_response_tokens"], 1),
        "truncated_rate": round(res["truncated_rate"], 4),
        **{key: round(v, 4) if isinstance(v, float) else v for key, v in response_stats(res).items()},
        "r1zero_format_rate": round(res["format_rate"], 4),
        "sample_seconds": round(engine.seconds, 1), "eval_seconds": round(res["seconds"], 1),
        "setup_seconds": round(setup_s, 1), "wall_seconds": round(time.time() - t0, 1),
        "tokens_per_s": round(gen_tokens / max(engine.seconds, 1e-9), 1),
    }
    if args.out:
        atomic_write_json(args.out, {**line, "per_example": res["per_example"]})
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
