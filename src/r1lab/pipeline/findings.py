"""The paper's findings, read off the report's evaluations, each with its numbers and whether it holds.

Every finding compares rows evaluated on the *same* problems with the same protocol, so differences are
tested with the paired standard error (the spread over problems of the per-problem difference in pass@1),
which is much tighter than the two rows' standard errors combined. A finding that needs a gap requires
it outside two (paired) standard errors: a finding that flips with the machine's rounding is not one.
"""

from __future__ import annotations

import math

# R1-Zero's reflection finding (Nature ED Fig. 1; R1-v2 C.2), as the issue sets it for the tiny world
AHA_BASE_MAX = 0.15        # the base reflects rarely
AHA_ZERO_MIN = 0.30        # R1-Zero reflects much more: at least this ...
AHA_FACTOR = 2.0           # ... and at least this many times the base
LENGTH_FACTOR = 1.5        # R1-Zero's responses grow
RECOVER_MIN = 0.05         # reasoning RL recovers at least 5 points on the hard split over the cold start
GENERAL_MIN_GAIN = 0.02    # the final stage raises general accuracy by at least 2 points ...
# ... and keeps pass@1: at most 2 points below rejection SFT's. One-sided: the "within 2 points"
# guards against the general phase costing reasoning; read two-sided it would fail a final stage whose
# 28 reasoning steps also raise pass@1, and with R1 >= R1-Zero it cannot hold when rejection SFT sits
# more than 2 points under R1-Zero (seed 1: 83.3 vs 87.0).
PASS_TOLERANCE = 0.02
LC_MIN_GAIN = 0.05         # the language reward raises consistency by at least 5 points over the ablation


def paired(ev_a: dict | None, ev_b: dict | None) -> tuple[float, float, int] | None:
    """(mean of pass@1_b - pass@1_a, its standard error, problems) over the problems both evaluations share,
    from their per-example rows; None when either is missing."""
    if not ev_a or not ev_b:
        return None
    a = {r["id"]: sum(r["correct"]) / len(r["correct"]) for r in ev_a.get("per_example", []) if r["correct"]}
    b = {r["id"]: sum(r["correct"]) / len(r["correct"]) for r in ev_b.get("per_example", []) if r["correct"]}
    ids = [i for i in a if i in b]
    if not ids:
        return None
    d = [b[i] - a[i] for i in ids]
    mean = sum(d) / len(d)
    var = sum((x - mean) ** 2 for x in d) / max(1, len(d) - 1)
    return mean, math.sqrt(var / len(d)), len(d)


def _gap(ev_a, ev_b) -> dict:
    p = paired(ev_a, ev_b)
    if p is None:
        return {"difference": None, "difference_stderr": None}
    return {"difference": p[0], "difference_stderr": p[1]}


def _above(gap: dict, minimum: float = 0.0) -> bool:
    """The difference is at least ``minimum`` and outside two paired standard errors."""
    d, se = gap["difference"], gap["difference_stderr"]
    return d is not None and d >= minimum and d > 2 * se


def aha(rows: dict) -> dict | None:
    if "base" not in rows or "zero" not in rows:
        return None
    b, z = rows["base"], rows["zero"]
    out = {"base_reflection_rate": b.get("reflection_rate"), "zero_reflection_rate": z.get("reflection_rate"),
           "base_effective_reflection_rate": b.get("effective_reflection_rate"),
           "zero_effective_reflection_rate": z.get("effective_reflection_rate"),
           "zero_reflection_accuracy": z.get("reflection_accuracy"),
           "zero_no_reflection_accuracy": z.get("no_reflection_accuracy"),
           "base_length": b.get("mean_response_tokens"), "zero_length": z.get("mean_response_tokens")}
    if None in (out["base_reflection_rate"], out["zero_reflection_rate"]):
        return {**out, "holds": False}
    out["holds"] = bool(
        out["base_reflection_rate"] <= AHA_BASE_MAX
        and out["zero_reflection_rate"] >= max(AHA_ZERO_MIN, AHA_FACTOR * out["base_reflection_rate"])
        and (out["zero_effective_reflection_rate"] or 0) > (out["base_effective_reflection_rate"] or 0)
        and out["zero_length"] >= LENGTH_FACTOR * out["base_length"])
    return out


def findings(rows: dict, evals: dict) -> dict:
    """``rows``: the report's headline numbers per model; ``evals``: {(model, split): full evaluation with
    per-example rows} for the paired tests (split "standard", "hard", "general" or "3-shot")."""
    ev = lambda key, split: evals.get((key, split))  # noqa: E731
    out: dict[str, dict] = {}
    if (f := aha(rows)) is not None:
        out["aha_reflection_grows"] = f
    if "zero" in rows and "cold_start" in rows:
        g = _gap(ev("cold_start", "hard"), ev("zero", "hard"))  # zero minus cold start
        out["cold_start_below_zero_on_hard"] = {
            "zero": rows["zero"].get("pass@1_hard"), "cold_start": rows["cold_start"].get("pass@1_hard"), **g,
            "holds": _above(g)}
    if "cold_start" in rows and "reasoning_rl" in rows:
        g = _gap(ev("cold_start", "hard"), ev("reasoning_rl", "hard"))
        out["reasoning_rl_recovers_on_hard"] = {
            "cold_start": rows["cold_start"].get("pass@1_hard"), "reasoning_rl": rows["reasoning_rl"].get("pass@1_hard"),
            **g, "holds": _above(g, RECOVER_MIN)}
    if "reasoning_rl" in rows and "rejection_sft" in rows:
        g = _gap(ev("reasoning_rl", "hard"), ev("rejection_sft", "hard"))
        d, se = g["difference"], g["difference_stderr"]
        out["rejection_sft_keeps_reasoning"] = {
            "reasoning_rl": rows["reasoning_rl"].get("pass@1_hard"), "rejection_sft": rows["rejection_sft"].get("pass@1_hard"),
            **g, "holds": d is not None and d >= -2 * se}
    if "rejection_sft" in rows and "r1" in rows:
        g = _gap(ev("rejection_sft", "general"), ev("r1", "general"))
        p = _gap(ev("rejection_sft", "standard"), ev("r1", "standard"))
        h = _gap(ev("rejection_sft", "hard"), ev("r1", "hard"))
        out["final_stage_raises_general"] = {
            "rejection_sft_general": rows["rejection_sft"].get("general_accuracy"), "r1_general": rows["r1"].get("general_accuracy"),
            "general_difference": g["difference"], "general_difference_stderr": g["difference_stderr"],
            "rejection_sft_pass@1": rows["rejection_sft"]["pass@1"], "r1_pass@1": rows["r1"]["pass@1"],
            "pass@1_difference": p["difference"], "pass@1_hard_difference": h["difference"],
            "pass@1_hard_difference_stderr": h["difference_stderr"],
            "holds": _above(g, GENERAL_MIN_GAIN) and p["difference"] is not None and p["difference"] >= -PASS_TOLERANCE}
    if "zero" in rows and "zero_lc" in rows:  # the same RL from the same base, with and without the reward
        a, b = rows["zero_lc"], rows["zero"]
        gain = a["language_consistency"] - b["language_consistency"]
        out["language_reward_raises_consistency"] = {
            "with_reward": a["language_consistency"], "without_reward": b["language_consistency"],
            "base": rows.get("base", {}).get("language_consistency"),
            "pass@1_with_reward": a["pass@1"], "pass@1_without_reward": b["pass@1"], "holds": gain >= LC_MIN_GAIN}
    if "zero" in rows and "r1" in rows:
        g = _gap(ev("zero", "standard"), ev("r1", "standard"))
        out["r1_pass@1_at_least_zero"] = {"zero": rows["zero"]["pass@1"], "r1": rows["r1"]["pass@1"], **g,
                                          "holds": rows["r1"]["pass@1"] >= rows["zero"]["pass@1"]}
    # each RL-only control against the distilled student of its size; judged on the smallest
    sizes = sorted((k.removeprefix("rl_only_") for k in rows if k.startswith("rl_only_")), key=lambda z: float(z.rstrip("m")))
    sizes = [z for z in sizes if f"student_{z}" in rows]
    if sizes:
        f = {}
        for size in sizes:
            g = _gap(ev(f"rl_only_{size}", "standard"), ev(f"student_{size}", "standard"))
            f.update({f"student_{size}": rows[f"student_{size}"]["pass@1"], f"rl_only_{size}": rows[f"rl_only_{size}"]["pass@1"]})
            if size == sizes[0]:
                f.update({**g, "holds": _above(g)})
            else:
                f.update({f"difference_{size}": g["difference"], f"difference_stderr_{size}": g["difference_stderr"],
                          f"holds_{size}": _above(g)})
        out["distillation_beats_rl_on_small_student"] = f
    shots = next((split for model, split in evals if model == "r1" and split.endswith("-shot")), None)
    if "r1" in rows and shots is not None:
        g = _gap(ev("r1", "standard"), ev("r1", shots))  # few-shot minus zero-shot
        out["few_shot_hurts"] = {"zero_shot": rows["r1"]["pass@1"], "three_shot": ev("r1", shots)["pass@1"], **g,
                                 "holds": g["difference"] is not None and g["difference"] < -2 * g["difference_stderr"]}
    return out


NAMES = {
    "aha_reflection_grows": "R1-Zero learns to check and correct itself (the \"aha moment\"): reflection grows "
                            "with no reward for it, corrections that fix a wrong value grow, responses lengthen",
    "cold_start_below_zero_on_hard": "The cold start (a few thousand SFT samples) is below R1-Zero on the hard split",
    "reasoning_rl_recovers_on_hard": "Reasoning RL recovers the hard split (at least 5 points above the cold start)",
    "rejection_sft_keeps_reasoning": "Rejection-sampling SFT keeps reasoning RL's hard-split accuracy (within noise)",
    "final_stage_raises_general": "The final RL stage raises general accuracy (at least 2 points) and keeps pass@1 "
                                  "(at most 2 points below rejection SFT's)",
    "language_reward_raises_consistency": "The language-consistency reward raises consistency (at least 5 points "
                                          "over the same RL without it)",
    "r1_pass@1_at_least_zero": "R1's pass@1 is at least R1-Zero's",
    "distillation_beats_rl_on_small_student": "A distilled student beats RL on the same student, a smaller model "
                                              "than the teacher (R1-v1 Table 6; the smallest with an RL control)",
    "few_shot_hurts": "Few-shot prompting (3 solved examples) hurts R1 (R1-v1 §5)",
}
