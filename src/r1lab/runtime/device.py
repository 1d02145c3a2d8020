"""Device choice, CPU threads and mixed precision."""

from __future__ import annotations

import contextlib
import os

import torch

# torch's bf16 matmuls on CPU go through oneDNN, and two caches keep what each matmul shape compiled, with
# its buffers: torch's own (ideep's, ``LRU_CACHE_CAPACITY``) and oneDNN's (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``),
# 1024 entries each by default. SFT in bf16 on batches of varying length makes new entries for nearly every
# batch, and the process kept them: three cold-start SFTs in one process (1 thread) peaked at 1490, 1870 and
# 2019 MB, and the demo natively at 3.29 GB against 1.44 GB under the AVX2 limits (fp32 matmuls go through
# MKL). With 64 entries each: 820, 832 and 834 MB. A training step has a few distinct shapes, so 64 keeps
# what is reused. Set before the first bf16 matmul (both are read then); a user's own setting wins.
# (LRU_CACHE_CAPACITY=0 crashes torch 2.13: keep it positive.)
os.environ.setdefault("LRU_CACHE_CAPACITY", "64")
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


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


# oneDNN ISA caps below the first with bf16 instructions (ONEDNN_MAX_CPU_ISA; docs: "CPU dispatcher control")
_ONEDNN_NO_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX) *and* torch may use it; elsewhere bf16
    is emulated and slow.

    The CPU flags alone are not enough: with torch's kernels held to AVX2 (``ATEN_CPU_CAPABILITY=avx2``,
    ``ONEDNN_MAX_CPU_ISA=AVX2``, how an AVX-512 machine stands in for an AVX2 laptop) bf16 is emulated,
    and a pretraining step of the default base took 3.83 s in bf16 against 0.35 s natively (11x; measured
    with benchmarks/profile_pretrain.py, one thread)."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX"):
        return False
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _ONEDNN_NO_BF16:
        return False
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


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
