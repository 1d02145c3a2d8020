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
