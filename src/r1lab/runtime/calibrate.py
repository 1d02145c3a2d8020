"""What machine a wall time was measured on: the CPU's instruction set as torch uses it, the cores, and a
one-second fp32 matmul GFLOP/s figure. Printed at the start of `r1lab demo` / `zero` and stored in their
summary.json, so a reported time can be compared across machines (the same 2-core run is ~2.5x slower
on a CPU without AVX-512; ``ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``
makes an AVX-512 machine run as one without)."""

from __future__ import annotations

import os
import time

import torch


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def matmul_gflops(seconds: float = 1.0, n: int = 1024, device: str = "cpu") -> float:
    """fp32 ``n`` x ``n`` matmuls for about ``seconds``, with torch's current thread count."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm-up: thread pool, kernel choice
    if device != "cpu":
        torch.cuda.synchronize()
    done, t0 = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        done += 1
        if device != "cpu":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return 2 * n**3 * done / elapsed / 1e9


def calibrate(seconds: float = 1.0) -> dict:
    """The machine facts a wall time needs next to it."""
    cuda = torch.cuda.is_available()
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": _usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "matmul_gflops": round(matmul_gflops(seconds), 1),
        "matmul_seconds": seconds,
        "cuda": torch.cuda.get_device_name(0) if cuda else None,
        "isa_limits": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                                    "ONEDNN_MAX_CPU_ISA") if k in os.environ},
    }


def calibration_line(c: dict) -> str:
    """``machine: AVX512, 2 cores (2 torch threads), fp32 1024x1024 matmul 188 GFLOP/s``."""
    line = (f"machine: {c['cpu_capability']}, {c['cores']} cores ({c['torch_threads']} torch threads), "
            f"fp32 1024x1024 matmul {c['matmul_gflops']:.0f} GFLOP/s")
    if c.get("isa_limits"):
        line += " [" + " ".join(f"{k}={v}" for k, v in c["isa_limits"].items()) + "]"
    if c.get("cuda"):
        line += f"; GPU: {c['cuda']}"
    return line
