"""Checkpoints that survive kills: written to a temp directory, then renamed into place.

    <stage>/checkpoints/step_00000120/state.pt   model, optimizer, reference model, RNG states, extras
                                     meta.json  step and extras in readable form

A save interrupted at any point (kill, full disk) leaves only a ``.tmp-*`` directory, which is ignored
and removed by the next save; the previous checkpoint stays usable. Old checkpoints are pruned to ``keep``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from r1lab.runtime.seed import get_rng_state, set_rng_state


class Checkpointer:
    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        self.dir = Path(directory)
        self.keep = max(1, keep)

    def all(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.glob("step_*") if p.is_dir() and (p / "state.pt").is_file()]
        return sorted(found, key=lambda p: int(p.name.split("_")[1]))

    def latest(self) -> Path | None:
        ckpts = self.all()
        return ckpts[-1] if ckpts else None

    def save(self, step: int, model: torch.nn.Module, optimizer=None, ref_model=None, extra: dict | None = None) -> Path | None:
        """Write the state after ``step`` completed steps; returns the checkpoint directory.

        Under torchrun every rank calls it (FSDP gathers the full states collectively) and rank 0 writes;
        the others return None."""
        from r1lab.runtime.dist import is_main
        from r1lab.runtime.fsdp import model_state, optimizer_state

        state: dict[str, Any] = {"step": step, "model": model_state(model), "rng": get_rng_state(), "extra": extra or {}}
        if optimizer is not None:
            state["optimizer"] = optimizer_state(model, optimizer)
        if ref_model is not None:
            state["ref_model"] = model_state(ref_model)
        if not is_main():
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.dir))
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"step": step, "extra": _jsonable(extra or {})}, indent=1))
        _fsync_dir(tmp)
        final = self.dir / f"step_{step:08d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        for old in self.all()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self, path: Path, model: torch.nn.Module, optimizer=None, ref_model=None, restore_rng: bool = True) -> dict:
        """Restore states in place; returns {"step", "extra"}."""
        from r1lab.runtime.fsdp import load_model_state, load_optimizer_state

        state = read_state(path)
        load_model_state(model, state["model"])
        if optimizer is not None and "optimizer" in state:
            load_optimizer_state(model, optimizer, state["optimizer"])
        if ref_model is not None and "ref_model" in state:
            load_model_state(ref_model, state["ref_model"])
        if restore_rng:
            set_rng_state(state["rng"])
        return {"step": state["step"], "extra": state.get("extra", {})}


class DamagedCheckpoint(Exception):
    """A checkpoint whose state.pt cannot be read whole (cut short by a full disk, a bad copy...)."""


def read_state(path: Path) -> dict:
    """The saved state of checkpoint ``path``; DamagedCheckpoint when it cannot be read or lacks its parts."""
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    except Exception as e:  # a damaged zip or pickle raises RuntimeError, EOFError, UnpicklingError, ...
        raise DamagedCheckpoint(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    if not isinstance(state, dict) or not {"step", "model", "rng"} <= state.keys():
        raise DamagedCheckpoint("state.pt lacks the step, model or RNG state")
    return state


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _jsonable(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, type(None), list, dict))}


class Interrupted(Exception):
    """Raised by a training loop after it saved a checkpoint because SIGINT/SIGTERM was received."""


_stop_seen = False


def stop_requested() -> bool:
    """True once any ``StopFlag`` in this process received SIGINT/SIGTERM (a pipeline stops between stages)."""
    return _stop_seen


class StopFlag:
    """Turns the first SIGINT/SIGTERM into a flag the loop checks at a step boundary (so it can save and
    stop cleanly); a second SIGINT interrupts at once. Handlers are restored on exit. Main thread only."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handle(self, signum, frame):
        global _stop_seen
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        _stop_seen = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def resume_latest(ckpt: Checkpointer, model, optimizer, logger=None, ref_model=None, label: str = "") -> dict:
    """Load the newest checkpoint if there is one (and cut the metric log back to it).
    Returns {"step": completed steps (0 when starting fresh), "extra": {...}}.

    A damaged newest checkpoint is reported and the one before it is used; when every checkpoint is
    damaged the run stops (UserError) rather than start over silently."""
    from r1lab.errors import UserError
    from r1lab.runtime.dist import print0

    damaged = []
    for path in reversed(ckpt.all()):
        try:
            state = ckpt.load(path, model, optimizer, ref_model)
        except DamagedCheckpoint as e:
            damaged.append(path)
            print0(f"{label}: warning: checkpoint {path} is damaged ({e}); trying the one before it", file=sys.stderr)
            continue
        if logger is not None:
            logger.truncate_after(state["step"] - 1)
        if damaged:
            print0(f"{label}: warning: resuming from {path}, the newest good checkpoint (damaged: "
                   f"{', '.join(p.name for p in damaged)}; the steps after it are redone)", file=sys.stderr)
        print0(f"{label}: resuming from {path} (after step {state['step']})")
        return state
    if damaged:
        raise UserError(f"every checkpoint in {ckpt.dir} is damaged (newest: {damaged[0]}); remove {ckpt.dir} to "
                        "start this stage over")
    return {"step": 0, "extra": {}}
