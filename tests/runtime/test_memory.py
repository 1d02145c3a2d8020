import torch

from r1lab.runtime.memory import current_rss_mb, gpu_peak_mb, peak_rss_mb


def _rss_tracks_an_allocation():
    before_peak, now = peak_rss_mb(), current_rss_mb()
    assert 1.0 < now <= before_peak + 1.0 < 1024 * 1024  # between 1 MiB and 1 TiB, current <= peak
    block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched
    assert current_rss_mb() >= now + 48
    assert peak_rss_mb() >= current_rss_mb() - 1.0
    del block


def test_rss_readings_are_plausible_and_track_an_allocation():
    """In a fresh process: after other tests, the allocator can hand back memory that is already resident
    (RSS then does not grow; seen in CI order)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        pool.apply(_rss_tracks_an_allocation)


def test_gpu_peak_is_none_without_cuda():
    value = gpu_peak_mb()
    if torch.cuda.is_available():
        assert value is not None and value >= 0.0
    else:
        assert value is None


_BF16_SHAPES = """
import resource, sys
import r1lab.runtime  # noqa: F401  (caps torch's and oneDNN's kernel caches unless the caller set them)
import torch
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Linear(128, 352), torch.nn.SiLU(), torch.nn.Linear(352, 128))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for t in range(40, 240):  # a new matmul shape every step, as SFT's packed batches of varying length
    x = torch.randn(8, t, 128, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x).float().sum()
    y.backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_bf16_training_on_varying_shapes_does_not_keep_every_shapes_kernels():
    """bf16 matmuls on CPU go through oneDNN; torch's and oneDNN's caches keep 1024 compiled kernels each
    (with their buffers) by default, and the demo's SFT stages grew the process by hundreds of MB each.
    r1lab caps both; the user's own settings still win (here: the defaults, 1024, for comparison)."""
    import os
    import subprocess
    import sys

    import pytest

    from r1lab.runtime.device import cpu_supports_bf16

    caches = ("LRU_CACHE_CAPACITY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")

    def run(code: str, env: dict) -> list[str]:
        base = {k: v for k, v in os.environ.items() if k not in caches}
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**base, **env}).stdout.split()

    probe = "import r1lab.runtime, os; print(*(os.environ[c] for c in %r))" % (caches,)
    assert run(probe, {}) == ["64", "64"]
    assert run(probe, {"LRU_CACHE_CAPACITY": "7", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "9"}) == ["7", "9"]
    if not cpu_supports_bf16():
        pytest.skip("no native bf16 here: bf16 autocast is not used by default, and oneDNN is not on the fp32 path")
    capped = int(run(_BF16_SHAPES, {})[-1])
    uncapped = int(run(_BF16_SHAPES, {c: "1024" for c in caches})[-1])
    assert capped < 0.5 * uncapped, (capped, uncapped)
