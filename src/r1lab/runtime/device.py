"""Device choice, CPU threads and mixed precision."""

from __future__ import annotations

import contextlib
import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(name)


def setup_threads() -> None:
    """Use the cores this process may run on (torch sometimes picks fewer in containers), shared fairly.

    Precedence: ``R1LAB_THREADS``, then ``OMP_NUM_THREADS`` (torchrun sets it to 1 per process), then the
    usable cores divided by the number of processes on this node. Oversubscribing (2 ranks x all cores)
    makes the OpenMP spin-waits of the ranks fight: measured 40x slower GRPO steps on 2 cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    n = max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    n = int(os.environ.get("R1LAB_THREADS") or os.environ.get("OMP_NUM_THREADS") or n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(device: torch.device, precision: str) -> str:
    """"auto" -> "bf16" on CUDA and on CPUs with native bf16, else "fp32"; other names unchanged."""
    if precision == "auto":
        return "bf16" if (device.type == "cuda" or cpu_supports_bf16()) else "fp32"
    return precision


def autocast_ctx(device: torch.device, precision: str):
    """``precision``: "fp32" (no autocast), "bf16" (autocast to bfloat16), or "auto" (bf16 where fast)."""
    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; valid: auto, bf16, fp32")
    return torch.autocast(device.type, dtype=torch.bfloat16)
