"""Stages talk through named artifacts on disk (DESIGN.md):

    runs/<name>/<stage>/model/   metrics.jsonl   data.jsonl   config.yaml   DONE

``DONE`` is written last and atomically; a stage that has it is skipped on rerun (refused when its config
changed since).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import yaml

from r1lab.errors import UserError
from r1lab.pipeline.progress import fmt_duration, run_clock
from r1lab.runtime.dist import barrier, is_main
from r1lab.runtime.io import atomic_write_json, atomic_write_text, read_user_text


def stage_dir(run_dir: str | Path, name: str) -> Path:
    d = Path(run_dir) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def is_done(d: str | Path) -> bool:
    return (Path(d) / "DONE").is_file()


def mark_done(d: str | Path, artifacts: dict) -> None:
    if is_main():  # under torchrun, one writer
        atomic_write_json(Path(d) / "DONE", artifacts)
    barrier()


def _damaged(d: Path, name: str, why: str) -> UserError:
    return UserError(f"{d / name} is damaged ({why}); remove {d} to run this stage again, or choose another --out")


def read_done(d: str | Path) -> dict:
    d = Path(d)
    try:
        done = json.loads(read_user_text(d / "DONE", "stage marker"))
    except json.JSONDecodeError as e:
        raise _damaged(d, "DONE", f"not valid JSON: {e.msg}") from None
    if not isinstance(done, dict):
        raise _damaged(d, "DONE", f"a JSON object expected, got {type(done).__name__}")
    return done


def write_config(d: str | Path, cfg) -> None:
    if not is_main():
        return
    data = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    atomic_write_text(Path(d) / "config.yaml", yaml.safe_dump(data, sort_keys=False))


def _flatten(x, prefix=""):
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): x}


def config_changes(d: str | Path, cfg) -> list[str]:
    """Differences between ``d/config.yaml`` (a stage started earlier) and ``cfg``: ["key: old -> new"]."""
    path = Path(d) / "config.yaml"
    if not path.exists():
        return []
    try:
        saved = yaml.safe_load(read_user_text(path, "saved config"))
    except yaml.YAMLError as e:
        raise _damaged(Path(d), "config.yaml", f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(saved, dict):
        raise _damaged(Path(d), "config.yaml", f"a mapping expected, got {type(saved).__name__}")
    old = _flatten(saved)
    new = _flatten(_plain(cfg))
    # A key the saved config lacks was added to r1lab after that stage started: at its default value it
    # changes nothing that stage did (a run directory from an older version resumes and is skipped).
    try:
        default = _flatten(_plain(type(cfg)())) if dataclasses.is_dataclass(cfg) else {}
    except TypeError:  # a config class without defaults for every field: every new key is a change
        default = {}
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k) and not (k not in old and k in default and new.get(k) == default[k])]


def _plain(cfg) -> dict:
    """A config as the YAML it is saved as (tuples as lists, and so on)."""
    data = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return yaml.safe_load(yaml.safe_dump(data, sort_keys=False)) or {}


def reseeded(cfg, offset: int, skip: tuple[str, ...] = ("eval",)):
    """A copy of a recipe with ``offset`` added to every ``seed`` field of every stage, so that
    ``seed=S`` reruns the whole recipe with other random draws (the pretraining data and initialisation,
    sampling, minibatch order...). Fields named in ``skip`` keep theirs: the evaluation problems stay the
    same, so runs of different seeds are compared on the same held-out set."""
    if not offset:
        return cfg
    changes = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in skip:
            continue
        if f.name == "seed" and isinstance(value, int):
            changes[f.name] = value + offset
        elif dataclasses.is_dataclass(value):
            changes[f.name] = reseeded(value, offset, ())
    return dataclasses.replace(cfg, **changes)


def cached_json(path: str | Path, compute, matches=None):
    """Return the JSON at ``path``, computing and writing it (atomically) first if it is absent, or if
    ``matches(stored)`` says the stored value was made another way (an evaluation with other settings)."""
    p = Path(path)
    if p.is_file():
        stored = json.loads(p.read_text())
        if matches is None or matches(stored):
            return stored
    value = compute()
    atomic_write_json(p, value)
    return value


def run_stage(run_dir: str | Path, name: str, fn, cfg=None) -> dict:
    """Run ``fn(stage_dir) -> artifacts`` unless the stage is DONE; write config.yaml first and DONE last.

    An interrupted stage keeps its checkpoints and data files, so calling this again resumes it;
    a finished stage drops its checkpoints (the model is saved) and is skipped from then on.
    """
    import shutil

    from r1lab.runtime import print0
    from r1lab.runtime.checkpoint import Interrupted, stop_requested

    d = stage_dir(run_dir, name)
    changed = config_changes(d, cfg) if cfg is not None else []
    # A finished stage whose config changed is refused, not skipped: skipping would report the old results
    # as if they came from the new settings (e.g. `demo` after `demo --quick` in the same --out).
    if changed and is_done(d):
        raise UserError(f"stage {name!r} in {d} finished with a different config ({'; '.join(changed[:3])}); "
                        f"remove {d} (and the stages after it) to rerun it with the new settings, or choose "
                        "another --out")
    if changed:
        raise UserError(f"stage {name!r} in {d} was started with a different config ({'; '.join(changed[:3])}); "
                        "rerun with the same settings to resume it, or choose another --out")
    clock = run_clock()
    clock = clock if clock is not None and clock.owns(run_dir, name) else None
    if is_done(d):
        print0(f"[{name}] done, skipping ({d})")
        if clock:
            clock.finish(name, skipped=True)
        return read_done(d)
    if cfg is not None:
        write_config(d, cfg)
    t0 = time.time()
    if clock:
        clock.start(name)
        print0(f"[{name}] running (whole run: about {fmt_duration(clock.remaining())} left)")
    else:
        print0(f"[{name}] running")
    artifacts = fn(d)
    artifacts = {**artifacts, "wall_seconds": round(time.time() - t0, 1)}
    if clock:
        clock.finish(name)
    mark_done(d, artifacts)
    shutil.rmtree(d / "checkpoints", ignore_errors=True)
    if stop_requested():  # the signal came during the stage's last step: it finished, stop before the next
        raise Interrupted(f"stopped after stage {name!r} finished")
    return artifacts
