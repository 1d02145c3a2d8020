"""bf16 is chosen ("auto") only where the CPU has it natively and torch may use it."""

from __future__ import annotations

import pytest
import torch

from r1lab.runtime import device as dev

BF16_FLAGS = "flags : fpu sse avx2 avx512f avx512_bf16 amx_tile"


@pytest.fixture
def machine(monkeypatch):
    def set_(capability: str, flags: str, onednn: str | None = None):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(dev, "_cpu_flags", lambda: flags)
        if onednn is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn)
    return set_


def test_native_bf16_cpu_gets_bf16(machine):
    machine("AVX512", BF16_FLAGS)
    assert dev.cpu_supports_bf16()
    assert dev.resolve_precision(torch.device("cpu"), "auto") == "bf16"
    machine("AVX512", BF16_FLAGS, onednn="AVX512_CORE_BF16")
    assert dev.cpu_supports_bf16()


@pytest.mark.parametrize("capability,flags,onednn", [
    ("AVX512", "flags : fpu avx2 avx512f", None),          # AVX-512 without bf16
    ("AVX2", "flags : fpu avx2", None),                     # an AVX2 laptop
    ("AVX2", BF16_FLAGS, None),                             # ATEN_CPU_CAPABILITY=avx2 on a bf16 machine
    ("AVX512", BF16_FLAGS, "AVX2"),                         # oneDNN held to AVX2
    ("AVX512", BF16_FLAGS, "avx512_core"),                  # ... or to AVX-512 without bf16
    ("DEFAULT", "", None),                                  # no /proc/cpuinfo, no vector ISA
])
def test_emulated_bf16_is_not_chosen(machine, capability, flags, onednn):
    machine(capability, flags, onednn)
    assert not dev.cpu_supports_bf16()
    assert dev.resolve_precision(torch.device("cpu"), "auto") == "fp32"
    assert dev.resolve_precision(torch.device("cpu"), "bf16") == "bf16"  # asked for explicitly, kept
