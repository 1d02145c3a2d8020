"""Sampling engines behind one call: ``generate(prompts, n, sampling) -> list[Rollout]``."""

from r1lab.rollout.engine import NativeEngine, Rollout, SamplingParams
from r1lab.rollout.hf import HFEngine

ENGINES = {"native": NativeEngine, "hf": HFEngine}

__all__ = ["ENGINES", "HFEngine", "NativeEngine", "Rollout", "SamplingParams"]
