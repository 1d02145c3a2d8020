"""Benchmark evaluation with the R1 protocol."""

from r1lab.eval.evaluate import EvalSettings, evaluate, majority_vote, summarize

__all__ = ["EvalSettings", "evaluate", "majority_vote", "summarize"]
