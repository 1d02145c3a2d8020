"""GPU check: the native sampler and one GRPO step on a ~30M-parameter Llama in bf16 on CUDA.

Builds a randomly initialised Llama (hidden 512, 10 layers, 8 heads, FFN 1376, r1lab's tiny-world BPE
tokenizer trained on the spot: ~32M parameters), then

  1. generation: ``NativeEngine`` under bf16 autocast, P prompts x G samples of the ``arith`` task
     (R1-Zero template), EOS ignored so every row generates ``--gen-tokens`` tokens (equal work per
     repetition); generated tokens/s, median of ``--reps``;
  2. training: r1lab GRPO steps (``setup_grpo`` + ``grpo_step``, precision bf16, accuracy + format
     rewards) after one warm-up step; training tokens/s = prompt + response tokens through the policy
     per second of the update phase (``train_s``: reference forward, policy forward/backward, optimizer).

MFU (model FLOPs utilisation) = achieved model FLOP/s over the device's peak dense bf16 FLOP/s, with the
usual 2N FLOPs per token for a forward (generation) and 6N for forward + backward (training), N the
parameter count (embeddings included: the tied LM head runs on every token). The training MFU counts the
policy's 6N only; ``mfu_train_incl_ref`` adds the reference model's 2N forward. Attention FLOPs are left
out (small at these lengths), so MFU is slightly understated.
Peak dense bf16 tensor-core throughput (NVIDIA datasheets, without sparsity): H100 SXM and H200 SXM
989.4 TFLOP/s ("1,979 TFLOPS with sparsity"), H100 PCIe 756 TFLOP/s, H100 NVL / H200 NVL 835 TFLOP/s,
A100 312 TFLOP/s; ``--peak-tflops`` overrides, and MFU is null where the peak is unknown (CPUs).

Usage:
  python benchmarks/gpu_check.py                         # CUDA, ~32M model, bf16
  python benchmarks/gpu_check.py --device cpu --tiny     # CPU dry run of the same path (tiny model, fp32)
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import torch

from r1lab.rewards import RewardFailures
from r1lab.rollout import NativeEngine, SamplingParams
from r1lab.runtime import autocast_ctx, seed_everything, setup_threads
from r1lab.runtime.memory import gpu_peak_mb, peak_rss_mb
from r1lab.tasks import get_task
from r1lab.tasks.templates import render_prompt
from r1lab.train.grpo import GRPOConfig, apply_schedule, grpo_step, setup_grpo

# dense bf16 peak FLOP/s by device name fragment, most specific first (NVIDIA datasheets, no sparsity)
PEAK_BF16 = [("H200 NVL", 835e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H200", 989.4e12),
             ("H100", 989.4e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12)]


def peak_flops(device: torch.device, override_tflops: float | None) -> tuple[float | None, str]:
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    if device.type != "cuda":
        return None, "unknown for CPUs"
    name = torch.cuda.get_device_name(device)
    for frag, flops in PEAK_BF16:
        if frag in name:
            return flops, f"{frag} dense bf16 (datasheet)"
    return None, f"unknown device {name!r}: pass --peak-tflops"


def build_model(tiny: bool, device: torch.device):
    """A random Llama and r1lab's tiny-world tokenizer (trained here: no hub, no network)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from r1lab.train.pretrain import PretrainConfig, build_tokenizer

    tok = build_tokenizer(PretrainConfig(tokenizer_docs=2000 if tiny else 5000, vocab_size=1024))
    vocab = ((len(tok) + 63) // 64) * 64
    if tiny:
        size = dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=2)
    else:
        size = dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=10, num_attention_heads=8)
    cfg = LlamaConfig(vocab_size=vocab, num_key_value_heads=size["num_attention_heads"], max_position_embeddings=2048,
                      tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
                      **size)
    model = LlamaForCausalLM(cfg).to(device)
    return model, tok


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_generation(model, tok, device, autocast, prompts, group, tokens, reps) -> dict:
    engine = NativeEngine(model, tok, device=device, max_batch=len(prompts) * group, autocast=autocast)
    engine.eos_ids = {10**9}  # no row ends early: every repetition does the same work
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=tokens, seed=0)
    engine.generate(prompts[:2], 2, SamplingParams(max_new_tokens=8, seed=0))  # warm-up
    rates = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        out = engine.generate(prompts, group, sampling)
        sync(device)
        rates.append(sum(len(r.token_ids) for r in out) / (time.perf_counter() - t0))
    return {"rows": len(prompts) * group, "new_tokens": tokens, "tokens_per_s": statistics.median(rates),
            "tokens_per_s_all": [round(r) for r in rates]}


def check_grpo(model, tok, device, precision, prompts_per_step, group, tokens, steps) -> dict:
    cfg = GRPOConfig(prompts_per_step=prompts_per_step, group_size=group, max_new_tokens=tokens, eval_every=0,
                     precision=precision, device=device.type, max_batch=prompts_per_step * group,
                     micro_batch_size=prompts_per_step * group, preflight=False)
    task = get_task(cfg.task)
    autocast = None if precision == "fp32" else functools.partial(autocast_ctx, device, precision)
    ref, opt, engine, rewards = setup_grpo(model, tok, task, cfg, device, autocast)
    engine.eos_ids = {10**9}  # random weights rarely emit EOS anyway: fix the length
    failures = RewardFailures()
    rows = []
    for s in range(steps + 1):  # step 0 warms up (allocator, kernels)
        apply_schedule(opt, cfg, s)
        sync(device)
        m = grpo_step(model, ref, opt, engine, task, rewards, failures, cfg, s, tok, autocast)
        sync(device)
        if s > 0:
            rows.append(m)
    med = lambda k: statistics.median(m[k] for m in rows)  # noqa: E731
    return {"rows": prompts_per_step * group, "max_new_tokens": tokens, "steps": steps,
            "step_s": med("step_s"), "sample_s": med("sample_s"), "score_s": med("score_s"), "train_s": med("train_s"),
            "train_tokens_per_s": med("train_tokens_per_s"), "sample_tokens_per_s": med("sample_tokens_per_s"),
            "loss_finite": all(torch.isfinite(torch.tensor(m.get("loss", 0.0))).item() for m in rows)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a ~0.1M model and small batches: a dry run of the path")
    ap.add_argument("--precision", default=None, help="bf16 (default on CUDA) or fp32 (default on CPU)")
    ap.add_argument("--gen-prompts", type=int, default=64)
    ap.add_argument("--gen-group", type=int, default=8)
    ap.add_argument("--gen-tokens", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--grpo-prompts", type=int, default=16)
    ap.add_argument("--grpo-group", type=int, default=8)
    ap.add_argument("--grpo-tokens", type=int, default=256)
    ap.add_argument("--grpo-steps", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu_check", "error": "CUDA is not available (use --device cpu --tiny)"}))
        return 2
    if args.tiny:
        args.gen_prompts, args.gen_group, args.gen_tokens, args.reps = 4, 4, 16, 2
        args.grpo_prompts, args.grpo_group, args.grpo_tokens, args.grpo_steps = 2, 4, 16, 1
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    setup_threads()
    seed_everything(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    model, tok = build_model(args.tiny, device)
    n_params = sum(p.numel() for p in model.parameters())
    autocast = None if precision == "fp32" else functools.partial(autocast_ctx, device, precision)
    task = get_task("arith")
    prompts = [render_prompt("r1zero", e.prompt) for e in task.examples("train", n=args.gen_prompts, seed=args.seed)]
    gen = check_generation(model, tok, device, autocast, prompts, args.gen_group, args.gen_tokens, args.reps)
    grpo = check_grpo(model, tok, device, precision, args.grpo_prompts, args.grpo_group, args.grpo_tokens,
                      args.grpo_steps)
    peak, peak_source = peak_flops(device, args.peak_tflops)

    def mfu(flops_per_s):
        return None if peak is None else round(flops_per_s / peak, 5)

    out = {"benchmark": "gpu_check", "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "precision": precision, "params": n_params, "torch": torch.__version__,
           "peak_flops": peak, "peak_source": peak_source,
           "generation": {**{k: (round(v, 1) if isinstance(v, float) else v) for k, v in gen.items()},
                          "mfu": mfu(2 * n_params * gen["tokens_per_s"])},
           "grpo": {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in grpo.items()},
                    "mfu_train": mfu(6 * n_params * grpo["train_tokens_per_s"]),
                    "mfu_train_incl_ref": mfu(8 * n_params * grpo["train_tokens_per_s"]),
                    "mfu_sample": mfu(2 * n_params * grpo["sample_tokens_per_s"])},
           "gpu_peak_mb": gpu_peak_mb(device) if device.type == "cuda" else None,
           "peak_rss_mb": round(peak_rss_mb(), 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
