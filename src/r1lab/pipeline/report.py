"""The paper-style report: every checkpoint evaluated with R1's protocol on held-out problems.

Writes ``report.md`` (one row per stage, as in R1's per-stage and distillation tables), ``summary.json``
with the same numbers and the three findings, and ``curves.png`` for the RL stages.
"""

from __future__ import annotations

import time
from pathlib import Path

from r1lab.pipeline.plots import plot_curves, read_metrics
from r1lab.pipeline.stage import cached_json
from r1lab.pipeline.zero import evaluate_model, headline
from r1lab.runtime import atomic_write_json, atomic_write_text, print0

LABELS = {
    "base": "Base (pretrained)", "zero": "R1-Zero", "cold_start": "Cold start (SFT)",
    "reasoning_rl": "Reasoning RL", "reasoning_rl_no_lc": "Reasoning RL without the language reward (ablation)",
    "rejection_sft": "Rejection-sampling SFT", "r1": "R1",
}
RL_CURVES = {"zero": "R1-Zero", "reasoning_rl": "reasoning RL", "reasoning_rl_no_lc": "reasoning RL, no LC reward",
             "r1": "R1"}


def _label(key: str) -> str:
    if key.startswith("student_"):
        return f"Distilled student {key.split('_', 1)[1]}"
    if key.startswith("rl_only_"):
        return f"RL-only student {key.split('_', 2)[2]}"
    return LABELS.get(key, key)


def evaluate_rows(cfg, run_dir: Path, models: dict) -> dict:
    ev, z = cfg.eval, cfg.zero
    rows = {}
    for key, (model_dir, template) in models.items():
        fmt = "r1zero" if template == "r1zero" else "r1"
        print0(f"[report] evaluating {key}")
        res = cached_json(run_dir / key / "eval.json", lambda: evaluate_model(
            model_dir, z.task, z.task_options, template, ev, z.language, keep_responses=True, format=fmt))
        row = headline(res)
        if template != "r1zero":
            gen = cached_json(run_dir / key / "eval_general.json", lambda: evaluate_model(
                model_dir, "general", {}, template, ev, keep_responses=False, format=fmt, examples=100))
            row["general_accuracy"] = gen["pass@1"]
        row["template"] = template
        rows[key] = row
    return rows


def findings(rows: dict) -> dict:
    out = {}
    if "zero" in rows and "reasoning_rl" in rows:
        a, b = rows["zero"]["language_consistency"], rows["reasoning_rl"]["language_consistency"]
        out["language_reward_raises_consistency"] = {"zero": a, "reasoning_rl": b, "holds": b > a}
        if "reasoning_rl_no_lc" in rows:  # the ablation: same start, no language reward
            out["language_reward_raises_consistency"]["reasoning_rl_no_lc"] = rows["reasoning_rl_no_lc"]["language_consistency"]
    if "zero" in rows and "r1" in rows:
        a, b = rows["zero"]["pass@1"], rows["r1"]["pass@1"]
        out["r1_pass@1_at_least_zero"] = {"zero": a, "r1": b, "holds": b >= a}
    students = sorted((k for k in rows if k.startswith("student_")), key=lambda k: float(k.split("_")[1].rstrip("m")))
    rl_only = [k for k in rows if k.startswith("rl_only_")]
    if students and rl_only:
        s, r = rows[students[0]]["pass@1"], rows[rl_only[0]]["pass@1"]
        out["distillation_beats_rl_on_small_student"] = {students[0]: s, rl_only[0]: r, "holds": s > r}
    return out


def _fmt(x, pct=True):
    if x is None:
        return "—"
    return f"{100 * x:.1f}" if pct else f"{x:.1f}"


def render_markdown(rows: dict, facts: dict, rm: dict, k: int, ev, seconds: dict) -> str:
    lines = [
        "# r1lab report: the DeepSeek-R1 recipe on the tiny reasoning world", "",
        f"Held-out arithmetic chains: {ev.examples} problems, k={k} samples each, temperature {ev.temperature}, "
        f"top-p {ev.top_p} (R1's protocol). pass@1 = mean correctness over the k samples (± standard error "
        f"over problems); cons@{k} = majority vote. Format rate checks the layout each model was trained "
        "for: `<think>…</think> <answer>…</answer>` for rows prompted with the R1-Zero template, "
        "the readable `<think>…</think> summary` for the others. Language consistency is the share "
        "of reasoning words in the question's language. General = exact-match accuracy on held-out "
        "general (non-reasoning) prompts, for models that were taught them.", "",
        f"| model | pass@1 | cons@{k} | pass@{k} | mean length (tokens) | language consistency | format rate | general |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in rows.items():
        lines.append(
            f"| {_label(key)} | {_fmt(r['pass@1'])} ± {_fmt(r['pass@1_stderr'])} | {_fmt(r.get(f'cons@{k}'))} | "
            f"{_fmt(r.get(f'pass@{k}'))} | {_fmt(r['mean_response_tokens'], pct=False)} | "
            f"{_fmt(r['language_consistency'])} | {_fmt(r['format_rate'])} | {_fmt(r.get('general_accuracy'))} |")
    lines += ["", "## Findings", ""]
    names = {"language_reward_raises_consistency": "The language-consistency reward raises language consistency "
                                                    "of reasoning RL above R1-Zero's",
             "r1_pass@1_at_least_zero": "R1's pass@1 is at least R1-Zero's",
             "distillation_beats_rl_on_small_student": "The smallest distilled student beats RL on the same "
                                                       "student (R1-v1 Table 6)"}
    for key, f in facts.items():
        nums = ", ".join(f"{k_}: {_fmt(v)}" for k_, v in f.items() if k_ != "holds")
        lines.append(f"- {names[key]}: **{'holds' if f['holds'] else 'does not hold'}** ({nums}).")
    if rm:
        lines += ["", f"Preference reward model: held-out pair accuracy {_fmt(rm.get('heldout_accuracy'))}% "
                      f"({rm.get('test_pairs')} pairs; {_fmt(rm.get('heldout_accuracy_before'))}% before training)."]
    if seconds:
        lines += ["", "Stage wall times (s): " + ", ".join(f"{k_} {v:.0f}" for k_, v in seconds.items())]
    lines += ["", "![curves](curves.png)", ""]
    return "\n".join(lines)


def stage_seconds(run_dir: Path, keys) -> dict:
    import json

    out = {}
    for key in keys:
        done = run_dir / key / "DONE"
        if done.is_file():
            sec = json.loads(done.read_text()).get("seconds")
            if sec is not None:
                out[key] = float(sec)
    return out


def report_stage(cfg, run_dir: Path, models: dict, rm: dict) -> dict:
    t0 = time.time()
    rows = evaluate_rows(cfg, run_dir, models)
    facts = findings(rows)
    k = cfg.eval.samples
    seconds = stage_seconds(run_dir, ["base", "zero", "cold_start", "reasoning_rl", "reasoning_rl_no_lc",
                                      "rejection_sft", "reward_model",
                                      "r1", *[m for m in models if m.startswith(("student_", "rl_only_"))]])
    summary = {"rows": rows, "findings": facts, "reward_model": {k_: rm.get(k_) for k_ in
               ("heldout_accuracy", "heldout_accuracy_before", "test_pairs", "train_pairs")},
               "protocol": {"examples": cfg.eval.examples, "samples": k, "temperature": cfg.eval.temperature,
                            "top_p": cfg.eval.top_p}, "stage_seconds": seconds, "report_seconds": time.time() - t0}
    atomic_write_json(run_dir / "summary.json", summary)
    series = {label: read_metrics(run_dir / key / "metrics.jsonl") for key, label in RL_CURVES.items()}
    for key in models:
        if key.startswith("rl_only_"):
            series[_label(key)] = read_metrics(run_dir / key / "metrics.jsonl")
    plot_curves({k_: v for k_, v in series.items() if v}, run_dir / "curves.png", title="R1 recipe on the tiny world")
    atomic_write_text(run_dir / "report.md", render_markdown(rows, facts, rm, k, cfg.eval, seconds))
    return summary
