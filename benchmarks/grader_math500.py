"""Grader self-check: grade every reference solution against its own gold answer.

MATH-500: ``grade(solution, answer)``, so the final answer is pulled from the solution's last \\boxed{}.
GSM8K (``--dataset gsm8k``): ``grade(text after ####, answer)``.
Prints one JSON line: {"dataset", "items", "agree", "disagree": [ids], "seconds", "how": {rule: count}}.

``--probe`` adds two lines that exercise more than string equality:
  * "rephrased": each gold answer rewritten in an equivalent surface form (``\\dfrac``, ``\\left(``,
    ``$...$.``, "The answer is ...", no spaces) must still grade as correct;
  * "cross": each solution graded against the *next* item's answer must grade as wrong unless the two
    golds really are equivalent; every cross match is listed for inspection;
  * "mathverify_only": the rephrased answers judged by math-verify alone (no r1lab normalisation), to
    show what the normalisation adds.

Usage: python benchmarks/grader_math500.py [--dataset math500|gsm8k] [--data-dir DIR] [--probe]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter

from r1lab.rewards.math import DEFAULT_TIMEOUT_S, compare, grade_detail
from r1lab.rewards.sympy_pool import sympy_equal
from r1lab.tasks.benchmarks import FILE_NAMES, resolve_data_dir
from r1lab.runtime.io import read_jsonl


def response_of(row: dict, dataset: str) -> str:
    """The reference solution as a model response."""
    if dataset == "gsm8k":
        return row["solution"].rsplit("####", 1)[-1].strip()
    return row["solution"]


def self_check(rows: list[dict], dataset: str) -> dict:
    t0 = time.perf_counter()
    disagree, how = [], Counter()
    for row in rows:
        g = grade_detail(response_of(row, dataset), str(row["answer"]))
        how[g.how] += 1
        if not g.correct:
            disagree.append(row["id"])
    return {"dataset": dataset, "items": len(rows), "agree": len(rows) - len(disagree), "disagree": disagree,
            "seconds": round(time.perf_counter() - t0, 3), "how": dict(how)}


_LEAD = "Putting it together, the answer is $"


def rephrase(answer: str) -> str:
    """An equivalent surface form of a LaTeX answer, as a model might write it in running text."""
    s = re.sub(r"\\frac(?![a-z])", r"\\dfrac", answer)
    s = s.replace("\\left(", "(").replace("\\right)", ")")
    s = re.sub(r"(?<!\\)\(", r"\\left(", s)
    s = re.sub(r"(?<!\\)\)", r"\\right)", s)
    s = s.replace(" ", "") if "\\text" not in s and "\\mbox" not in s and "matrix" not in s else s
    return f"{_LEAD}{s}$."


def unwrap(response: str) -> str:
    """The LaTeX inside a ``rephrase`` sentence."""
    return response.removeprefix(_LEAD).removesuffix("$.")


def probe(rows: list[dict], dataset: str) -> list[dict]:
    t0 = time.perf_counter()
    missed = [r["id"] for r in rows if not grade_detail(rephrase(str(r["answer"])), str(r["answer"])).correct]
    rephrased = {"probe": "rephrased", "items": len(rows), "agree": len(rows) - len(missed), "disagree": missed,
                 "seconds": round(time.perf_counter() - t0, 3)}
    t0 = time.perf_counter()
    matches = []
    for row, nxt in zip(rows, rows[1:] + rows[:1]):
        g = grade_detail(response_of(row, dataset), str(nxt["answer"]))
        if g.correct:
            matches.append({"id": row["id"], "answer": str(row["answer"]), "other": str(nxt["answer"]), "how": g.how})
    cross = {"probe": "cross", "items": len(rows), "equal": len(matches), "matches": matches,
             "seconds": round(time.perf_counter() - t0, 3)}
    t0 = time.perf_counter()
    mv_missed = [r["id"] for r in rows
                 if not sympy_equal(unwrap(rephrase(str(r["answer"]))), str(r["answer"]), DEFAULT_TIMEOUT_S)]
    mathverify = {"probe": "mathverify_only", "items": len(rows), "agree": len(rows) - len(mv_missed),
                  "disagree": mv_missed, "seconds": round(time.perf_counter() - t0, 3)}
    return [rephrased, cross, mathverify]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=["math500", "gsm8k"], default="math500")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--probe", action="store_true")
    args = ap.parse_args(argv)
    rows = read_jsonl(resolve_data_dir(FILE_NAMES[args.dataset], args.data_dir) / FILE_NAMES[args.dataset])
    compare("\\sqrt{2}", "\\sqrt{8}/2")  # start a sympy worker outside the timed loop
    print(json.dumps(self_check(rows, args.dataset)))
    if args.probe:
        for line in probe(rows, args.dataset):
            print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
