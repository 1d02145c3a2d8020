"""Where the time of one pretraining step goes (the default base's step: 16 sequences x 256 tokens).

Builds the default base's model (``PretrainConfig()``: size, vocabulary, batch, sequence length, precision
"auto") and the same optimizer, and times the phases of the step ``r1lab.train.pretrain`` takes: forward,
loss (cross-entropy over the vocabulary), backward, gradient clipping, optimizer step. Tokens are random
ids (the time of a step does not depend on which tokens). Runs ``--warmup`` steps, then averages
``--steps``. ``--ops N`` adds the N operators with the most self time (torch profiler, over the timed
steps). Prints one JSON line with the machine's calibration (instruction set, cores, matmul GFLOP/s).

Run it twice to compare instruction sets on one machine:
    python benchmarks/profile_pretrain.py
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/profile_pretrain.py

Usage: python benchmarks/profile_pretrain.py [--steps 10] [--warmup 2] [--precision auto|fp32|bf16]
       [--threads N] [--ops N] [--compile] [--forward hf|r1lab]

``--forward r1lab`` times a forward written from r1lab's Llama pieces (``models.llama``: fused q/k/v and
gate/up, rotary in one pass, causal SDPA without a mask tensor; ``causal_forward`` below) in place of
transformers' ``LlamaForCausalLM.forward``. Measured no faster (the step is matmul-bound), so pretraining
keeps transformers' forward; the option stays to re-measure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from r1lab.models.tiny import tiny_config
from r1lab.runtime import autocast_ctx, setup_threads
from r1lab.runtime.calibrate import calibrate, calibration_line
from r1lab.runtime.device import resolve_precision
from r1lab.train.pretrain import PretrainConfig
from r1lab.train.schedule import make_optimizer

PHASES = ("forward", "loss", "backward", "clip", "optimizer")


def causal_forward(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Final hidden states (B, T, hidden) of full causal rows, from the model's own modules with r1lab's
    fused per-layer pieces (the GRPO training forward's). Logits equal HF's; gradients to rounding."""
    import torch.nn.functional as F

    from r1lab.models.llama import fused_gate_up, fused_qkv, mlp_residual, qkv_rotary, rms_norm, sign_folded

    inner, cfg = model.model, model.config
    B, T = input_ids.shape
    x = inner.embed_tokens(input_ids)
    cos, sin = inner.rotary_emb(x, torch.arange(T)[None])
    cos, sin = cos[:, :, None, :], sign_folded(sin)[:, :, None, :]
    H = cfg.num_attention_heads
    Hk = getattr(cfg, "num_key_value_heads", None) or H
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    for layer in inner.layers:
        qk, v = qkv_rotary(layer, x, *fused_qkv(layer.self_attn), cos, sin, H, Hk, D)
        q, k = qk.split([H, Hk], dim=-2)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             is_causal=True, scale=layer.self_attn.scaling, enable_gqa=Hk != H)
        x = mlp_residual(layer, x, out.transpose(1, 2).reshape(B, T, H * D), fused_gate_up(layer.mlp))
    return rms_norm(inner.norm, x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ops", type=int, default=0, help="also list the N operators with the most self time")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the model (inductor); the warm-up steps' time is reported as compile_s")
    ap.add_argument("--forward", default="hf", choices=["hf", "r1lab"],
                    help="transformers' forward, or r1lab's causal_forward + the tied output projection")
    args = ap.parse_args(argv)
    if args.threads:
        os.environ["R1LAB_THREADS"] = str(args.threads)
    setup_threads()
    machine = calibrate()
    from transformers import LlamaForCausalLM

    cfg = PretrainConfig()
    device = torch.device("cpu")
    precision = resolve_precision(device, args.precision)
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config(cfg.size, cfg.vocab_size, max_positions=max(1024, cfg.seq_len))).train()
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    gen = torch.Generator().manual_seed(0)
    clock = {p: [] for p in PHASES}
    if args.forward == "r1lab":
        def forward(input_ids):
            return model.lm_head(causal_forward(model, input_ids))
    else:
        def forward(input_ids):
            return model(input_ids=input_ids).logits
    forward = torch.compile(forward) if args.compile else forward

    def step(record: bool):
        batch = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.seq_len + 1), generator=gen)
        marks = [time.perf_counter()]
        with autocast_ctx(device, precision):
            logits = forward(batch[:, :-1])
        marks.append(time.perf_counter())
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        marks.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        marks.append(time.perf_counter())
        opt.step()
        marks.append(time.perf_counter())
        if record:
            for name, a, b in zip(PHASES, marks, marks[1:]):
                clock[name].append(b - a)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step(False)
    warmup_s = time.perf_counter() - t0
    ops = None
    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step(True)
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:args.ops]
        ops = {e.key: round(e.self_cpu_time_total / 1e3 / args.steps, 2) for e in rows}  # ms a step
    else:
        for _ in range(args.steps):
            step(True)
    per = {p: statistics.mean(v) for p, v in clock.items()}
    step_s = sum(per.values())
    tokens = cfg.batch_size * cfg.seq_len
    out = {
        "machine": calibration_line(machine), "cpu_capability": machine["cpu_capability"],
        "matmul_gflops": round(machine["matmul_gflops"], 1), "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()), "size": cfg.size, "vocab": cfg.vocab_size,
        "batch": cfg.batch_size, "seq_len": cfg.seq_len, "precision": precision, "steps": args.steps,
        "step_s": round(step_s, 4), "tokens_per_s": round(tokens / step_s), "base_steps": cfg.steps,
        "base_minutes_estimate": round(cfg.steps * step_s / 60, 1),
        "forward": args.forward, "compiled": args.compile, "compile_s": round(warmup_s, 1) if args.compile else None,
        "seconds": {p: round(v, 4) for p, v in per.items()},
        "share": {p: round(v / step_s, 3) for p, v in per.items()},
    }
    if ops is not None:
        out["top_ops_ms_per_step"] = ops
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
