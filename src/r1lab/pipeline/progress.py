"""Progress for long runs: a tqdm bar per loop (silent off the main rank) and the whole run's remaining
time (``RunClock``), shown on every bar and at the start of every stage."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from r1lab.runtime import is_main


class RunClock:
    """The whole run's remaining wall time.

    ``expected``: each stage's wall seconds in a reference run on a machine of ``reference_gflops``
    (fp32 matmul GFLOP/s, ``runtime/calibrate.py``). Before any stage of this run has finished the
    estimate is scaled by the matmul speed ratio; after, by the ratio of the actual to the expected time
    of the stages this run did (skipped stages count for nothing). The running stage's remainder is its
    estimate less the time it has run, or, from a caller that knows the share of the stage done, that
    share's pace once a tenth is done (a progress bar covers only part of a stage, so bars do not pass it)."""

    def __init__(self, run_dir: str | Path, expected: dict[str, float], reference_gflops: float,
                 gflops: float | None = None):
        self.run_dir = Path(run_dir).resolve()
        self.expected = dict(expected)
        self.speed = reference_gflops / gflops if gflops else 1.0
        self.finished: set[str] = set()
        self.actual: dict[str, float] = {}
        self.current: str | None = None
        self.t0 = 0.0
        self.slowdown = 1.0  # > 1 while another process runs beside this one (``beside``)

    def owns(self, run_dir: str | Path, name: str) -> bool:
        """A top-level stage of this run (not a stage nested in another one's directory)."""
        return name in self.expected and Path(run_dir).resolve() == self.run_dir

    def start(self, name: str) -> None:
        self.current, self.t0 = name, time.time()

    def beside(self, names, slowdown: float) -> None:
        """Stages ``names`` run in another process from now on (they count for nothing here), and this
        process's stages take ``slowdown`` times their estimate meanwhile (and do not calibrate it);
        ``beside((), 1.0)`` ends that."""
        self.finished.update(names)
        self.slowdown = slowdown

    def finish(self, name: str, skipped: bool = False) -> None:
        if not skipped and self.current == name and self.slowdown == 1.0:
            self.actual[name] = time.time() - self.t0
        self.finished.add(name)
        if self.current == name:
            self.current = None

    def scale(self) -> float:
        exp = sum(self.expected[n] for n in self.actual)
        return sum(self.actual.values()) / exp if exp > 0 else self.speed

    def remaining(self, fraction: float | None = None) -> float:
        """Seconds left in the run; ``fraction``: the running stage's share done, when a bar knows it."""
        s = self.scale()
        left = sum(v for n, v in self.expected.items() if n not in self.finished and n != self.current) * s
        if self.current is not None:
            elapsed = time.time() - self.t0
            if fraction is not None and fraction >= 0.1:
                left += elapsed * (1 - fraction) / fraction
            else:
                left += max(0.0, self.expected.get(self.current, 0.0) * s * self.slowdown - elapsed)
        return left


def scaled_seconds(expected: dict[str, float], work: dict[str, float], reference_work: dict[str, float]) -> dict[str, float]:
    """Each stage's reference seconds scaled by how much work this run's config asks of it against the
    reference run's config (pretraining tokens, RL samples x tokens, samples evaluated, ...): without it, a
    run with half the pretraining steps was estimated at the reference's length, and once its short base had
    finished every later stage was estimated at half its time (the clock reads a short stage as a fast
    machine). Stages with no work measure keep their reference seconds."""
    out = {}
    for name, secs in expected.items():
        ref = reference_work.get(name)
        out[name] = secs * work[name] / ref if ref and name in work else secs
    return out


_CLOCK: RunClock | None = None


def set_run_clock(clock: RunClock | None) -> None:
    global _CLOCK
    _CLOCK = clock


def run_clock() -> RunClock | None:
    return _CLOCK


def fmt_duration(seconds: float) -> str:
    m = int(round(seconds / 60))
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else (f"{m} min" if m >= 1 else "<1 min")


@contextlib.contextmanager
def progress_bar(desc: str, total: int):
    """Yields ``update(done, total, **postfix)``; renders with tqdm on the main rank, with the whole run's
    remaining time when a ``RunClock`` is set."""
    if not is_main():
        yield lambda *a, **k: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, dynamic_ncols=True, leave=True)

    def update(done: int, total_: int, **postfix):
        bar.update(done - bar.n)
        if _CLOCK is not None:  # the bar's own share of the stage is unknown: the stage's time estimate is used
            postfix = {**postfix, "run left": fmt_duration(_CLOCK.remaining())}
        if postfix:
            bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False)

    try:
        yield update
    finally:
        bar.close()


def start_run(run_dir: str | Path, expected: dict[str, float], reference_gflops: float) -> dict:
    """The calibration line (printed, and returned for summary.json) and the run's clock."""
    from r1lab.runtime import print0
    from r1lab.runtime.calibrate import calibrate, calibration_line

    cal = calibrate()
    print0(calibration_line(cal))
    set_run_clock(RunClock(run_dir, expected, reference_gflops, cal["matmul_gflops"]))
    return cal
