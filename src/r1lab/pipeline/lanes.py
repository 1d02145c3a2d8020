"""Two lanes on a multi-core CPU: the stages no later stage reads run in a second process.

The language-reward ablation (``zero_lc``, R1-Zero plus the language reward) and the RL-only controls of
the distillation finding (``rl_only_<size>``) start from bases that exist before R1-Zero does, and only the
report reads them. On a CPU the tiny world's small matmuls use two threads poorly (one thread beside another
process does a GRPO step in ~1.5x the time of two threads alone; the RL-only control's 0.5M student in
1.06-1.43x), so two processes of one thread each get more done than one of two: ``side_lane`` runs those
stages and their report evaluations in a second process while this one runs R1-Zero, the cold start and
their evaluations, each on half the threads (one each on two cores), then waits for it and goes on with
every thread.

Which thread count each stage uses is fixed by the machine (the lane's stages and the first two of the
chain on half, everything after on all), so a rerun computes what the first run did. A second process that fails or is
stopped leaves its stages resumable: the pipeline calls them again after the lane (skipped when DONE,
resumed or run here when not) and reports any error the usual way. Its output goes to ``side_lane.log``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

import torch

from r1lab.runtime import print0

# how much longer a stage takes on one thread than on two, for the whole-run time estimate (GRPO and SFT
# stages of the demo measured 1.5-1.7x on one thread beside another process against two threads alone)
LANE_SLOWDOWN = 1.5


def side_stages(cfg) -> list[str]:
    return (["zero_lc"] if cfg.ablate_language_reward else []) + [f"rl_only_{s}" for s in cfg.distill.rl_sizes]


def lane_possible(cfg) -> bool:
    """A second lane pays when this process has two or more CPU threads and nothing else shares the
    work: not on an accelerator (``device`` auto picks it) and not under torchrun."""
    from r1lab.runtime import pick_device
    from r1lab.runtime.dist import world_size

    if not cfg.side_lane or not side_stages(cfg) or torch.get_num_threads() < 2 or world_size() > 1:
        return False
    return all(pick_device(d).type == "cpu" for d in (cfg.zero.device, cfg.distill.rl.device))


def side_models(cfg, run_dir: Path, base: Path) -> dict:
    """Run (or skip, when DONE) the side stages; {report row: (model dir, template)}."""
    from r1lab.pipeline.distill import rl_controls
    from r1lab.pipeline.r1 import zero_lc_stage

    models = {}
    if cfg.ablate_language_reward:
        models["zero_lc"] = (zero_lc_stage(cfg, run_dir, base), "r1zero")
    models.update(rl_controls(cfg, run_dir, base))
    return models


def _side_main(cfg, run_dir: str, base: str, log: str, threads: int) -> None:
    """The second process (spawned: a fresh interpreter): the side stages and their evaluations.

    It starts with SIGINT ignored (``side_lane``), so a Ctrl-C while it imports does not print a traceback
    on the terminal; from here on a Ctrl-C or the SIGTERM the first process sends when it stops makes its
    training loop save a checkpoint and stop (``StopFlag``), and it exits with 130 quietly."""
    from r1lab.runtime.checkpoint import Interrupted

    signal.signal(signal.SIGINT, signal.default_int_handler)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    torch.set_num_threads(threads)
    from r1lab.pipeline.report import evaluate_rows

    try:
        models = side_models(cfg, Path(run_dir), Path(base))
        evaluate_rows(cfg, Path(run_dir), models)
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"[lanes] stopped: {e or 'interrupted'}; the same command resumes", flush=True)
        sys.exit(130)


@contextlib.contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def side_lane(cfg, run_dir: Path, base: Path):
    """Runs the side stages in a second process while the body runs on one thread; yields True when it
    does (the body should then also run its share of the report's evaluations), False when it does not."""
    from r1lab.pipeline.progress import run_clock
    from r1lab.pipeline.stage import is_done

    todo = [s for s in side_stages(cfg) if not is_done(run_dir / s)]
    if not todo or not lane_possible(cfg):
        yield False
        return
    import multiprocessing as mp

    log = run_dir / "side_lane.log"
    threads = torch.get_num_threads()
    side = threads // 2  # the rest here: 1 + 1 on two cores
    proc = mp.get_context("spawn").Process(target=_side_main, args=(cfg, str(run_dir), str(base), str(log), side),
                                           name="r1lab-side-lane")
    with _sigint_ignored():  # inherited: the new interpreter does not install its KeyboardInterrupt handler
        proc.start()
    print0(f"[lanes] {', '.join(todo)} and their evaluations run in a second process ({side} of the "
           f"{threads} threads) beside this one (log: {log})")
    torch.set_num_threads(threads - side)
    clock = run_clock()
    if clock is not None:
        clock.beside(side_stages(cfg), LANE_SLOWDOWN)
    try:
        yield True
        if proc.is_alive():
            print0(f"[lanes] waiting for the second process ({log})")
        proc.join()
    except BaseException:  # stopping (or failing): the other process saves its step and stops too
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
        proc.join(timeout=120)
        if proc.is_alive():
            proc.kill()
            proc.join()
        raise
    finally:
        torch.set_num_threads(threads)
        if clock is not None:
            clock.beside((), 1.0)
    if clock is not None:  # what the second process did not finish runs here after all
        clock.finished.difference_update(s for s in side_stages(cfg) if not is_done(run_dir / s))
    if proc.exitcode != 0:
        print0(f"[lanes] the second process stopped (exit code {proc.exitcode}; see {log}); its unfinished "
               "stages run here")
