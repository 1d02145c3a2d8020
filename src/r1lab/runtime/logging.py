"""Metric logging: JSONL always (one object per step); TensorBoard when installed and asked for."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from r1lab.runtime.dist import is_main


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The rows a metric log holds (none when it does not exist yet)."""
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class MetricLogger:
    """Appends one JSON object per ``log`` call to ``path``; a null logger when ``path`` is None or off-main."""

    def __init__(self, path: str | os.PathLike | None, tensorboard: bool = False):
        self.path = Path(path) if (path is not None and is_main()) else None
        self._tb = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                    self._tb = SummaryWriter(str(self.path.parent / "tb"))
                except Exception:  # tensorboard not installed: JSONL is enough
                    self._tb = None

    def log(self, row: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        if self._tb is not None and "step" in row:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(k, v, row["step"])

    def truncate_after(self, step: int) -> None:
        """Drop rows with ``step`` > the given one (used on resume so the log matches the checkpoint)."""
        if self.path is None or not self.path.exists():
            return
        keep = []
        for lineno, ln in enumerate(self.path.read_text(encoding="utf-8", errors="replace").split("\n"), 1):
            try:
                row = json.loads(ln) if ln.strip() else None
            except json.JSONDecodeError:  # a line cut short when the run was killed mid-write
                print(f"warning: {self.path}:{lineno} is not a whole JSON line (cut short by a kill?); dropped",
                      file=sys.stderr)
                continue
            if isinstance(row, dict) and row.get("step", -1) <= step:
                keep.append(ln)
        from r1lab.runtime.io import atomic_write_text
        atomic_write_text(self.path, "".join(k + "\n" for k in keep))
