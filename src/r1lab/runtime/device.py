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
    """Use every core the process may run on (torch sometimes picks fewer in containers)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    n = int(os.environ.get("R1LAB_THREADS", n))
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


def autocast_ctx(device: torch.device, precision: str):
    """``precision``: "fp32" (no autocast), "bf16" (autocast to bfloat16), or "auto" (bf16 where fast)."""
    if precision == "auto":
        precision = "bf16" if (device.type == "cuda" or cpu_supports_bf16()) else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; valid: auto, bf16, fp32")
    return torch.autocast(device.type, dtype=torch.bfloat16)
