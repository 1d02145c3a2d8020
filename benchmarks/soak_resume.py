"""Soak test of exact resume (not a CI test): the default R1-Zero run killed with SIGKILL at random
moments and resumed each time must end with the same held-out pass@1 (and the same weights) as an
uninterrupted run.

    python benchmarks/soak_resume.py --kills 5 --out /tmp/soak [--reference DIR] [key=value ...]

``--reference`` reuses a finished uninterrupted ``r1lab zero`` run directory (same overrides!) instead of
running one first. Kill times are drawn uniformly over the expected run length (``--expect-s``), seeded.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file


def zero_cmd(out: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "r1lab", "zero", "--out", str(out), *overrides]


def run_to_end(out: Path, overrides: list[str]) -> float:
    t0 = time.time()
    subprocess.run(zero_cmd(out, overrides), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - t0


def kill_after(out: Path, overrides: list[str], seconds: float) -> bool:
    """Start (or resume) the run and SIGKILL it after ``seconds``; False if it finished first."""
    p = subprocess.Popen(zero_cmd(out, overrides), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return True


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/r1lab_soak")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--expect-s", type=float, default=540.0, help="expected length of one uninterrupted run")
    ap.add_argument("--reference", default=None, help="an uninterrupted run directory to compare with")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    root = Path(args.out)
    ref = Path(args.reference) if args.reference else root / "uninterrupted"
    ref_seconds = None
    if not (ref / "summary.json").is_file():
        ref_seconds = run_to_end(ref, args.overrides)
    soak = root / "killed"
    rng = random.Random(args.seed)
    moments = sorted(rng.uniform(5.0, args.expect_s) for _ in range(args.kills))
    kills, elapsed_before = [], 0.0
    for m in moments:  # each kill happens m seconds into the *total* run time, as if uninterrupted
        wait = max(3.0, m - elapsed_before)
        killed = kill_after(soak, args.overrides, wait)
        elapsed_before += wait
        stages = sorted(p.parent.name for p in soak.glob("*/DONE"))
        kills.append({"at_s": round(m, 1), "killed": killed, "stages_done": stages})
    run_to_end(soak, args.overrides)
    a, b = json.loads((ref / "summary.json").read_text()), json.loads((soak / "summary.json").read_text())
    result = {
        "kills": kills,
        "uninterrupted": {"base_pass@1": a["base"]["pass@1"], "final_pass@1": a["final"]["pass@1"]},
        "killed_and_resumed": {"base_pass@1": b["base"]["pass@1"], "final_pass@1": b["final"]["pass@1"]},
        "same_final_pass@1": a["final"]["pass@1"] == b["final"]["pass@1"],
        "same_base_weights": same_weights(ref / "base" / "model" / "model.safetensors",
                                          soak / "base" / "model" / "model.safetensors"),
        "same_final_weights": same_weights(ref / "zero" / "model" / "model.safetensors",
                                           soak / "zero" / "model" / "model.safetensors"),
        "uninterrupted_seconds": ref_seconds,
    }
    print(json.dumps(result))
    return 0 if result["same_final_pass@1"] else 1


if __name__ == "__main__":
    sys.exit(main())
