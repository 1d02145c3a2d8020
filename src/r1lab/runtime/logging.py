"""Metric logging: JSONL always (one object per step); experiment trackers (runtime/tracking.py) on top."""

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
    """Appends one JSON object per ``log`` call to ``path``; a null logger when ``path`` is None or off-main.
    After ``track(...)``, every row with a ``step`` also goes to the run's experiment trackers."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if (path is not None and is_main()) else None
        self.trackers = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def track(self, report_to: list[str] | None, config, start_step: int) -> None:
        """Open the trackers ``report_to`` names (checked by the config) in this log's run directory; call it
        after ``resume_latest`` so that ``start_step`` is the first step this process logs."""
        if self.path is None:
            return
        import dataclasses

        from r1lab.runtime.tracking import Trackers, resolve_report_to

        names = resolve_report_to(report_to)
        if names:
            cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
            self.trackers = Trackers(names, self.path.parent, cfg, start_step)

    def log(self, row: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        if self.trackers is not None and "step" in row:
            self.trackers.log(row, row["step"])

    def table(self, name: str, rows: list[dict], step: int) -> None:
        """A table (e.g. sampled completions) for the trackers that show tables."""
        if self.trackers is not None:
            self.trackers.table(name, rows, step)

    def close(self) -> None:
        if self.trackers is not None:
            self.trackers.close()

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
