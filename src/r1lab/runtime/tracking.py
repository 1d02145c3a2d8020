"""Experiment trackers behind one small interface: TensorBoard, Weights & Biases, Trackio, MLflow.

``report_to`` (a config key of every training command) names them; by default TensorBoard when the
``tensorboard`` package is installed, else none. Each receives every metric of ``metrics.jsonl`` under the
same name at the row's ``step``, and tables (sampled completions). W&B runs offline and Trackio and MLflow
write locally unless the user's environment says otherwise (``WANDB_MODE``, ``MLFLOW_TRACKING_URI``...).
A resumed run continues the same tracker run: its id is kept in ``trackers.json`` in the run directory,
and TensorBoard purges the points after the checkpoint (they are logged again, so no step shows twice).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import math
import numbers
import os
import uuid
from pathlib import Path

from r1lab.errors import UserError

# name -> (module that must be importable, the pip extra that installs it)
KNOWN = {"tensorboard": ("tensorboard", "tracking"), "wandb": ("wandb", "wandb"), "trackio": ("trackio", "trackio"),
         "mlflow": ("mlflow", "mlflow")}


def installed(name: str) -> bool:
    return importlib.util.find_spec(KNOWN[name][0]) is not None


def resolve_report_to(report_to: list[str] | None) -> list[str]:
    """The trackers to open: ``report_to`` checked, or the default (TensorBoard when installed)."""
    if report_to is None:
        return ["tensorboard"] if installed("tensorboard") else []
    for name in report_to:
        if name not in KNOWN:
            raise UserError(f"config key 'report_to': unknown tracker {name!r}; valid: {', '.join(KNOWN)}")
        if not installed(name):
            raise UserError(f"config key 'report_to': {name} is not installed; pip install \"r1lab[{KNOWN[name][1]}]\"")
    return list(dict.fromkeys(report_to))


def scalars(row: dict) -> dict[str, float]:
    """The finite numbers of a metric row (booleans as 0/1), without ``step``."""
    out = {}
    for k, v in row.items():
        if k != "step" and isinstance(v, numbers.Real) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


class TensorBoardTracker:
    def __init__(self, run_dir: Path, config: dict, start_step: int, state: dict):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: points at or after the resumed step, written before the kill, are hidden
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step if start_step > 0 else None)
        if start_step == 0:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)

    def log(self, row: dict, step: int) -> None:
        for k, v in scalars(row).items():
            self.writer.add_scalar(k, v, step)

    def table(self, name: str, rows: list[dict], step: int) -> None:
        if not rows:
            return
        cols = list(rows[0])
        cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731 - markdown table cell
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
        self.writer.add_text(name, "\n".join(lines), step)

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, run_dir: Path, config: dict, start_step: int, state: dict):
        import wandb

        self.wandb = wandb
        state.setdefault("wandb", uuid.uuid4().hex[:8])  # W&B run ids: short, lowercase letters and digits
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "r1lab"), name=str(run_dir), dir=str(run_dir),
                              id=state["wandb"], resume="allow", config=config,
                              mode=os.environ.get("WANDB_MODE", "offline"))

    def log(self, row: dict, step: int) -> None:
        self.run.log(scalars(row), step=step)

    def table(self, name: str, rows: list[dict], step: int) -> None:
        if rows:
            cols = list(rows[0])
            self.run.log({name: self.wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])},
                         step=step)

    def close(self) -> None:
        self.run.finish()


class TrackioTracker:
    def __init__(self, run_dir: Path, config: dict, start_step: int, state: dict):
        import trackio

        self.trackio = trackio
        trackio.init(project=os.environ.get("TRACKIO_PROJECT", "r1lab"), name=str(run_dir), config=config,
                     resume="allow")

    def log(self, row: dict, step: int) -> None:
        self.trackio.log(scalars(row), step=step)

    def table(self, name: str, rows: list[dict], step: int) -> None:
        if rows:
            import pandas as pd

            self.trackio.log({name: self.trackio.Table(dataframe=pd.DataFrame(rows))}, step=step)

    def close(self) -> None:
        self.trackio.finish()


class MlflowTracker:
    def __init__(self, run_dir: Path, config: dict, start_step: int, state: dict):
        import mlflow

        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
        run = mlflow.start_run(run_id=state.get("mlflow"), run_name=str(run_dir))
        if "mlflow" not in state:
            state["mlflow"] = run.info.run_id
            mlflow.log_params({k: str(v)[:500] for k, v in config.items()})

    def log(self, row: dict, step: int) -> None:
        self.mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in scalars(row).items()}, step=step)

    def table(self, name: str, rows: list[dict], step: int) -> None:
        if rows:
            self.mlflow.log_table({k: [r.get(k) for r in rows] for k in rows[0]}, f"{name}/step_{step}.json")

    def close(self) -> None:
        self.mlflow.end_run()


TRACKERS = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "trackio": TrackioTracker,
            "mlflow": MlflowTracker}


class Trackers:
    """The open trackers of one run directory (none off the main rank); ``close`` runs at exit at the latest."""

    def __init__(self, names: list[str], run_dir: str | os.PathLike, config: dict, start_step: int):
        self.run_dir = Path(run_dir)
        state_file = self.run_dir / "trackers.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        self.open = [TRACKERS[n](self.run_dir, config, start_step, state) for n in names]
        if state:
            from r1lab.runtime.io import atomic_write_json

            atomic_write_json(state_file, state)
        atexit.register(self.close)

    def log(self, row: dict, step: int) -> None:
        for t in self.open:
            t.log(row, step)

    def table(self, name: str, rows: list[dict], step: int) -> None:
        for t in self.open:
            t.table(name, rows, step)

    def close(self) -> None:
        for t in self.open:
            t.close()
        self.open = []
