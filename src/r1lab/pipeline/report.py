"""The paper-style report: every checkpoint evaluated with R1's protocol on held-out problems.

Each row is evaluated on the standard held-out split and on a hard one (longer chains than most training
problems), general prompts for the rows taught them, and R1 also with few-shot prompts. Writes
``report.md`` (one row per stage, as in R1's per-stage and distillation tables), ``summary.json`` with the
same numbers and the findings (``findings.py``), and ``curves.png`` for the RL stages.
"""

from __future__ import annotations

import time
from pathlib import Path

from r1lab.pipeline.findings import NAMES, findings
from r1lab.pipeline.plots import MONITOR_PANELS, plot_curves
from r1lab.pipeline.stage import cached_json, is_done, read_done
from r1lab.pipeline.zero import evaluate_model, first_aha, headline, same_eval
from r1lab.runtime import atomic_write_json, atomic_write_text, print0, read_metrics
from r1lab.runtime.calibrate import calibration_line
from r1lab.train.prebuilt import prebuilt_bases

LABELS = {
    "base": "Base (pretrained)", "zero": "R1-Zero", "cold_start": "Cold start (SFT)",
    "zero_lc": "R1-Zero with the language reward (ablation)", "reasoning_rl": "Reasoning RL",
    "rejection_sft": "Rejection-sampling SFT", "r1": "R1",
}
RL_CURVES = {"zero": "R1-Zero", "zero_lc": "R1-Zero + LC reward", "reasoning_rl": "reasoning RL",
             "r1": "R1"}
STAGES = ("base", "zero", "zero_lc", "cold_start", "reasoning_rl", "rejection_sft", "reward_model", "r1",
          "distill_traces")
ROW_KEYS = ("pass@1", "pass@1_stderr", "pass@1_hard", "pass@1_hard_stderr", "reflection_rate",
            "effective_reflection_rate", "reflection_accuracy", "no_reflection_accuracy", "mean_response_tokens",
            "language_consistency", "general_accuracy", "general_accuracy_stderr", "format_rate")


def _label(key: str) -> str:
    if key.startswith("student_"):
        return f"Distilled student {key.split('_', 1)[1]}"
    if key.startswith("rl_only_"):
        return f"RL-only student {key.split('_', 2)[2]}"
    return LABELS.get(key, key)


def evaluate_rows(cfg, run_dir: Path, models: dict) -> tuple[dict, dict]:
    """Every model on every split it is read on. Returns (rows, {(model, split): full evaluation})."""
    ev, z = cfg.eval, cfg.zero
    rows, evals = {}, {}
    for key, (model_dir, template) in models.items():
        fmt = "r1zero" if template == "r1zero" else "r1"

        def run(name: str, **kw):
            print0(f"[report] evaluating {key}{'' if name == 'eval' else ' (' + name.split('_', 1)[1] + ')'}")
            return cached_json(run_dir / key / f"{name}.json", lambda: evaluate_model(
                model_dir, kw.pop("task", z.task), kw.pop("options", z.task_options), template, ev,
                kw.pop("language", z.language), format=fmt, **kw), same_eval(ev, kw.get("examples"),
                                                                             kw.get("max_new_tokens")))

        res = run("eval")
        evals[(key, "standard")] = res
        row = headline(res)
        if ev.hard:
            hard = run("eval_hard", options=ev.hard_options(z.task_options), examples=ev.hard_examples)
            evals[(key, "hard")] = hard
            row.update({"pass@1_hard": hard["pass@1"], "pass@1_hard_stderr": hard["pass@1_stderr"],
                        "mean_response_tokens_hard": hard["mean_response_tokens"],
                        "truncated_rate_hard": hard["truncated_rate"]})
        if template != "r1zero":
            gen = run("eval_general", task="general", options={}, language="en", keep_responses=False,
                      examples=ev.general_examples, max_new_tokens=ev.general_max_new_tokens)
            evals[(key, "general")] = gen
            row["general_accuracy"], row["general_accuracy_stderr"] = gen["pass@1"], gen["pass@1_stderr"]
        if key == "r1" and ev.fewshot > 0:
            shot = run(f"eval_{ev.fewshot}shot", shots=ev.fewshot)
            evals[(key, f"{ev.fewshot}-shot")] = shot
            row[f"pass@1_{ev.fewshot}shot"] = shot["pass@1"]
        row["template"] = template
        rows[key] = row
    return rows, evals


def _fmt(x, pct=True):
    if x is None:
        return "—"
    return f"{100 * x:.1f}" if pct else f"{x:.1f}"


def _pm(r: dict, key: str) -> str:
    return f"{_fmt(r.get(key))} ± {_fmt(r.get(key + '_stderr'))}" if r.get(key) is not None else "—"


def render_markdown(rows: dict, facts: dict, rm: dict, k: int, ev, seconds: dict, aha: dict | None,
                    monitor: dict | None, calibration: dict | None = None, prebuilt: dict | None = None) -> str:
    hard = ", ".join(f"{a}={b}" for a, b in (ev.hard or {}).items())
    lines = [
        "# r1lab report: the DeepSeek-R1 recipe on the tiny reasoning world", "",
        f"Held-out problems of the tiny world (arithmetic chains and reach-a-target searches): {ev.examples} "
        f"problems, k={k} samples each, temperature {ev.temperature}, "
        f"top-p {ev.top_p} (R1's protocol). pass@1 = mean correctness over the k samples (± standard error "
        f"over problems); hard = {ev.hard_examples} held-out problems of the hard split ({hard or 'not evaluated'}). "
        f"cons@{k} = majority vote. Reflection = responses with a reflection word; effective = responses in "
        "which a written value was flagged and replaced by the right one. Language consistency is the share "
        "of reasoning words in the question's language. General = exact-match accuracy on "
        f"{ev.general_examples} held-out general (non-reasoning) prompts, for models that were taught them.", "",
        f"| model | pass@1 | pass@1 hard | cons@{k} | pass@{k} | length (tokens) | reflection | effective reflection "
        "| language consistency | format | general |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in rows.items():
        lines.append(
            f"| {_label(key)} | {_pm(r, 'pass@1')} | {_pm(r, 'pass@1_hard')} | {_fmt(r.get(f'cons@{k}'))} | "
            f"{_fmt(r.get(f'pass@{k}'))} | {_fmt(r['mean_response_tokens'], pct=False)} | {_fmt(r.get('reflection_rate'))} | "
            f"{_fmt(r.get('effective_reflection_rate'))} | {_fmt(r['language_consistency'])} | {_fmt(r['format_rate'])} | "
            f"{_pm(r, 'general_accuracy')} |")
    lines += ["", "## Findings", ""]
    for key, f in facts.items():
        nums = ", ".join(f"{k_}: {_fmt(v, pct='length' not in k_) if isinstance(v, float) else v}"
                         for k_, v in f.items() if k_ != "holds" and v is not None)
        lines.append(f"- {NAMES.get(key, key)}: **{'holds' if f['holds'] else 'does not hold'}** ({nums}).")
    if aha:
        lines += ["", f"## The aha moment: R1-Zero's first logged self-correction (training step {aha['step']})", "",
                  f"Question: {aha['prompt']} (answer {aha['reference']})", "", "```", aha["response"].strip(), "```"]
    if monitor:
        lines += ["", "## Reward-hacking monitor (R1's final stage)", "",
                  f"Preference score vs gold accuracy of the same general samples, per step: first "
                  f"{monitor['steps']} steps with general prompts at step {monitor['first_step']}. "
                  + (f"**Warning: the preference score rose while gold accuracy fell** ({monitor['warning']})."
                     if monitor.get("warning") else "No step showed the preference score rising while gold "
                     "accuracy fell.")]
    if rm:
        lines += ["", f"Preference reward model: held-out pair accuracy {_fmt(rm.get('heldout_accuracy'))}% "
                      f"({rm.get('test_pairs')} pairs; {_fmt(rm.get('heldout_accuracy_before'))}% before training)."]
    if seconds:
        lines += ["", "Stage wall times (s): " + ", ".join(f"{k_} {v:.0f}" for k_, v in seconds.items())]
    if prebuilt:
        lines += ["", "Shipped pretrained bases (r1lab/assets/bases, made by the default pretraining configs; "
                      "`prebuilt=false` pretrains them in the run): " + "; ".join(
                          f"{k_}: {v['name']} ({v.get('seconds', 0):.0f} s of pretraining on {v.get('machine', '?')})"
                          for k_, v in prebuilt.items()) + "."]
    if calibration:
        lines += ["", f"Measured on {calibration_line(calibration).removeprefix('machine: ')}."]
    lines += ["", "![curves](curves.png)", ""]
    return "\n".join(lines)


def stage_seconds(run_dir: Path, keys, field: str = "seconds") -> dict:
    """A ``field`` of each stage's DONE (``seconds``: its training loop; ``wall_seconds``: the whole stage)."""
    out = {}
    for key in dict.fromkeys(keys):
        if is_done(run_dir / key):
            sec = read_done(run_dir / key).get(field)
            if sec is not None:
                out[key] = float(sec)
    return out


def monitor_summary(metrics: list[dict]) -> dict | None:
    """What the final stage's reward-hacking monitor saw: the steps with general prompts and any warning."""
    pts = [r for r in metrics if "monitor/preference" in r]
    if not pts:
        return None
    flagged = [r for r in pts if r.get("monitor/hacking")]
    return {"steps": len(pts), "first_step": pts[0]["step"],
            "preference_first": pts[0]["monitor/preference"], "preference_last": pts[-1]["monitor/preference"],
            "gold_first": pts[0]["monitor/general_gold"], "gold_last": pts[-1]["monitor/general_gold"],
            "warning": f"first at step {flagged[0]['step']}" if flagged else None}


def report_stage(cfg, run_dir: Path, models: dict, rm: dict, calibration: dict | None = None,
                 started: float | None = None) -> dict:
    t0 = time.time()
    rows, evals = evaluate_rows(cfg, run_dir, models)
    facts = findings(rows, evals)
    k = cfg.eval.samples
    seconds = stage_seconds(run_dir, [*STAGES[:-1], *[m for m in models if m.startswith(("student_", "rl_only_"))]])
    aha = first_aha(run_dir / "zero")
    r1_metrics = read_metrics(run_dir / "r1" / "metrics.jsonl")
    monitor = monitor_summary(r1_metrics)
    summary = {"rows": {key: {**{k_: r.get(k_) for k_ in ROW_KEYS}, **r} for key, r in rows.items()},
               "findings": facts, "aha_excerpt": aha, "reward_hacking_monitor": monitor,
               "reward_model": {k_: rm.get(k_) for k_ in
                                ("heldout_accuracy", "heldout_accuracy_before", "test_pairs", "train_pairs",
                                 "onpolicy_pairs")},
               "protocol": {"examples": cfg.eval.examples, "samples": k, "temperature": cfg.eval.temperature,
                            "top_p": cfg.eval.top_p, "hard": cfg.eval.hard, "hard_examples": cfg.eval.hard_examples,
                            "general_examples": cfg.eval.general_examples, "fewshot": cfg.eval.fewshot},
               "stage_seconds": seconds, "stage_wall_seconds": stage_seconds(run_dir, [*STAGES, *models], "wall_seconds"),
               "report_seconds": time.time() - t0, "calibration": calibration,
               "run_wall_seconds": time.time() - started if started else None,
               "prebuilt_bases": prebuilt_bases(run_dir, models)}
    atomic_write_json(run_dir / "summary.json", summary)
    series = {label: read_metrics(run_dir / key / "metrics.jsonl") for key, label in RL_CURVES.items()}
    for key in models:
        if key.startswith("rl_only_"):
            series[_label(key)] = read_metrics(run_dir / key / "metrics.jsonl")
    plot_curves({k_: v for k_, v in series.items() if v}, run_dir / "curves.png", title="R1 recipe on the tiny world")
    if monitor:
        plot_curves({"R1 (final stage)": r1_metrics}, run_dir / "reward_hacking.png", panels=MONITOR_PANELS,
                    title="Final stage: preference score (proxy) vs gold accuracy of the same general samples")
    walls = summary["stage_wall_seconds"] or seconds  # runs whose stages predate wall_seconds: the loops' times
    atomic_write_text(run_dir / "report.md", render_markdown(rows, facts, rm, k, cfg.eval, walls, aha, monitor,
                                                             calibration, summary["prebuilt_bases"]))
    return summary
