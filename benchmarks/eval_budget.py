"""How many samples a problem the report's evaluations need: each finding's paired difference and standard
error recomputed from a finished demo's evaluations with only the first k samples of every problem (and
with the first half of the problems, for comparison).

The findings compare two rows on the same problems (``r1lab.pipeline.findings.paired``); their standard
error comes from the spread over problems of the per-problem difference, so fewer samples a problem cost
little precision while fewer problems cost much. Prints one JSON line per run directory.

Usage: python benchmarks/eval_budget.py RUN_DIR [RUN_DIR ...] [--k 16 8 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r1lab.pipeline.findings import paired

FILES = {"standard": "eval.json", "hard": "eval_hard.json", "general": "eval_general.json"}
# (name, row a, row b, split): the findings that test a gap between two rows
GAPS = [("cold_start_below_zero_on_hard", "cold_start", "zero", "hard"),
        ("reasoning_rl_recovers_on_hard", "cold_start", "reasoning_rl", "hard"),
        ("rejection_sft_keeps_reasoning", "reasoning_rl", "rejection_sft", "hard"),
        ("final_stage_raises_general", "rejection_sft", "r1", "general"),
        ("r1_pass@1_at_least_zero", "zero", "r1", "standard"),
        ("distillation_beats_rl_on_small_student", "rl_only_0.5m", "student_0.5m", "standard")]


def truncated(ev: dict, k: int | None, problems: int | None = None) -> dict:
    """The evaluation as if it had taken the first ``k`` samples of its first ``problems`` problems."""
    rows = ev["per_example"][:problems]
    return {"per_example": [{**r, "correct": r["correct"][:k]} for r in rows]}


def budget(run_dir: Path, ks: list[int]) -> dict:
    out = {"run": str(run_dir), "findings": {}}
    for name, a, b, split in GAPS:
        pa, pb = run_dir / a / FILES[split], run_dir / b / FILES[split]
        if not (pa.is_file() and pb.is_file()):
            continue
        ea, eb = json.loads(pa.read_text()), json.loads(pb.read_text())
        samples = len(ea["per_example"][0]["correct"])
        n = len(ea["per_example"])
        entry = {"samples": samples, "problems": n}
        for k in [k for k in ks if k <= samples]:
            d, se, _ = paired(truncated(ea, k), truncated(eb, k))
            entry[f"k{k}"] = {"difference": round(d, 4), "stderr": round(se, 4)}
        d, se, _ = paired(truncated(ea, None, n // 2), truncated(eb, None, n // 2))
        entry[f"k{samples}_half_problems"] = {"difference": round(d, 4), "stderr": round(se, 4)}
        out["findings"][name] = entry
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--k", nargs="+", type=int, default=[16, 8, 4])
    args = ap.parse_args(argv)
    for run in args.runs:
        if not run.is_dir():
            print(f"error: {run} is not a run directory", file=sys.stderr)
            return 2
        print(json.dumps(budget(run, args.k)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
