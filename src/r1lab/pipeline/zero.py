"""The R1-Zero recipe on one command: pretrain the base if needed -> GRPO with rule rewards -> evaluate both.

Run directory (``r1lab zero --out DIR``):

    DIR/base/     model/ metrics.jsonl config.yaml eval.json DONE     (pretrained base)
    DIR/zero/     model/ metrics.jsonl config.yaml eval.json DONE     (R1-Zero policy)
    DIR/summary.json   DIR/zero_curves.png
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from r1lab.eval.evaluate import EvalSettings, evaluate
from r1lab.eval.fewshot import fewshot_prompts
from r1lab.models import check_model, load_model_and_tokenizer
from r1lab.pipeline.findings import aha
from r1lab.pipeline.plots import plot_curves
from r1lab.pipeline.progress import progress_bar, run_clock, scaled_seconds, start_run
from r1lab.pipeline.stage import cached_json, reseeded, run_stage, stage_dir
from r1lab.rollout import NativeEngine
from r1lab.runtime import atomic_write_json, pick_device, print0, read_metrics
from r1lab.tasks import get_task
from r1lab.train.grpo import GRPOConfig, check_reward_models
from r1lab.train.grpo_run import run_grpo
from r1lab.train.prebuilt import find_prebuilt, install_prebuilt, prebuilt_bases
from r1lab.train.pretrain import PretrainConfig, pretrain


# The tiny world's reasoning problems: arithmetic chains (tasks/arithmetic.py) and reach-a-target
# searches (tasks/target.py), half each; every recipe trains and evaluates on the mix.
WORLD_COMPONENTS = {"arith": 0.5, "target": 0.5}
WORLD_BUDGET = 256                   # new tokens a response may take, in training and in sampling SFT sets


def world_rl(**overrides) -> GRPOConfig:
    """GRPO on the tiny world's problems (R1-Zero's settings unless overridden)."""
    return GRPOConfig(**{"task": "mixture", "task_options": {"components": dict(WORLD_COMPONENTS)},
                         "max_new_tokens": WORLD_BUDGET, **overrides})


@dataclass
class EvalConfig:
    examples: int = 200
    # k = 4 samples a problem (R1: "typically between 4 and 64, depending on the test set size"; these
    # splits have 200-300 problems). Sized by standard errors: the findings' paired differences are
    # dominated by the spread over problems, not by the samples of one problem (benchmarks/eval_budget.py).
    # From two demos' 16-sample evaluations, keeping the first 8 moved the gap findings' paired s.e. by
    # -2..+21% (median +3%; half the problems at 16 samples: +22..+55%). From four demos' 8-sample ones
    # (seeds 0 and 1, native and AVX2), keeping the first 4 moved them by 0..+27% (median +6%; the
    # differences by at most 1.2 points), while the report's evaluations were ~14% of the demo.
    samples: int = 4
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 320        # above the training budget: the hard split's answers are longer
    seed: int = 1234
    device: str = "auto"
    max_batch: int = 512
    # the hard held-out split: the task's options with these overrides (only the longest training chains;
    # targets from numbers up to 12 instead of 9, up to 150 instead of 99: bigger products, longer
    # searches); evaluated next to the standard split for every row ({} to skip). One step *beyond*
    # training (chains of 4-5 operations, 4 numbers to combine) put the base and R1-Zero near 0% (0.3%
    # and 0.1% pass@1), which cannot tell the stages apart.
    hard: dict = field(default_factory=lambda: {"options": {"arith": {"min_ops": 3, "max_ops": 3},
                                                            "target": {"max_number": 12, "max_target": 150}}})
    hard_examples: int = 200
    general_examples: int = 300      # held-out general prompts, for rows taught them
    # General answers are one line (mean ~10 tokens, longest 32 in four demos' rejection-SFT and R1 rows).
    # With the reasoning budget the rows not taught general prompts (cold start, reasoning RL) think for
    # ~230 tokens on each and scored 0.0% (pass@8 0.0%) in all four demos, taking 45-80 s a row of the
    # report's evaluations; with 64 tokens they still score 0.0% and the report took 276 s instead of 396 s.
    general_max_new_tokens: int = 64
    fewshot: int = 3                 # R1 also evaluated with this many solved examples in the prompt (0: not)

    def hard_options(self, task_options: dict) -> dict:
        """The training task's options with the hard split's overrides."""
        return {**task_options, **self.hard}


@dataclass
class ZeroRecipe:
    seed: int = 0                    # added to every stage's seed (not the evaluation's): seed=1 is another run
    base_model: str | None = None    # an existing HF model directory to start from instead of pretraining
    # use the base r1lab ships when it was pretrained with this exact `pretrain` config (train/prebuilt.py):
    # R1 itself starts from a pretrained base; false pretrains it in the run
    prebuilt: bool = True
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    zero: GRPOConfig = field(default_factory=world_rl)
    eval: EvalConfig = field(default_factory=EvalConfig)


def check_inputs(cfg, skip: tuple[str, ...] = ()) -> None:
    """The model directories a recipe names (``base_model``, reward models of its RL stages but those in
    ``skip``), checked before the run directory is touched."""
    if cfg.base_model:
        check_model(cfg.base_model, "base_model")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, GRPOConfig) and f.name not in skip:
            check_reward_models(value, f"{f.name}.")


def shipped_base(cfg) -> Path | None:
    """The shipped base this recipe starts from, if any (``prebuilt`` on, no ``base_model``, and a base
    shipped for its ``pretrain`` config)."""
    return find_prebuilt(cfg.pretrain) if cfg.prebuilt and not cfg.base_model else None


def base_stage(cfg, run_dir: Path) -> Path:
    """The base model directory: ``cfg.base_model`` as given, or pretrained into ``run_dir/base``."""
    if cfg.base_model:
        return Path(cfg.base_model)

    def work(d: Path) -> dict:
        shipped = shipped_base(cfg)
        if shipped is not None:
            return {"model": str(d / "model"), **install_prebuilt(shipped, d)}
        with progress_bar("pretrain", cfg.pretrain.steps) as bar:
            info = pretrain(cfg.pretrain, d, progress=bar)
        return {"model": str(d / "model"), **info}

    return Path(run_stage(run_dir, "base", work, cfg.pretrain)["model"])


def zero_stage(cfg, run_dir: Path, base_dir: Path, name: str = "zero") -> Path:
    """R1-Zero: GRPO with rule rewards from the base model."""
    z = cfg.zero

    def work(d: Path) -> dict:
        print0(f"[{name}] GRPO: {z.steps} steps x {z.prompts_per_step} prompts x {z.group_size} samples")
        with progress_bar(name, z.steps) as bar:
            info = run_grpo(z, base_dir, d, progress=bar)
        return {"model": str(d / "model"), "steps": info["steps"], "seconds": info["seconds"]}

    return Path(run_stage(run_dir, name, work, z)["model"])


def evaluate_model(model_dir: str | Path, task_name: str, task_options: dict, template: str, ev: EvalConfig,
                   language: str = "en", keep_responses: bool = True, format: str = "r1zero",
                   examples: int | None = None, shots: int = 0, max_new_tokens: int | None = None) -> dict:
    """The paper's protocol on the task's held-out split: ``ev.samples`` samples per problem
    (after ``shots`` solved training examples in the prompt when asked)."""
    device = pick_device(ev.device)
    model, tok = load_model_and_tokenizer(model_dir, device)
    task = get_task(task_name, **task_options)
    exs = task.examples("test", n=examples or ev.examples, seed=ev.seed)
    engine = NativeEngine(model, tok, device=device, max_batch=ev.max_batch)
    settings = EvalSettings(samples=ev.samples, temperature=ev.temperature, top_p=ev.top_p,
                            max_new_tokens=max_new_tokens or ev.max_new_tokens, seed=ev.seed, language=language,
                            format=format)
    prompts = fewshot_prompts(tok, task, [e.prompt for e in exs], template, shots, ev.seed, layout=format)
    res = evaluate(engine, task, exs, prompts, settings, keep_responses=keep_responses)
    res["settings"]["examples_asked"] = examples or ev.examples  # a split may hold fewer (see same_eval)
    return res


def same_eval(ev: EvalConfig, examples: int | None = None, max_new_tokens: int | None = None):
    """Whether a stored evaluation was made with ``ev``'s sampling settings on as many problems: a rerun
    with other evaluation settings recomputes it instead of reporting the old numbers as the new ones."""
    want = {"samples": ev.samples, "temperature": ev.temperature, "top_p": ev.top_p,
            "max_new_tokens": max_new_tokens or ev.max_new_tokens, "seed": ev.seed}

    def check(stored: dict) -> bool:
        have = stored.get("settings") or {}
        return all(have.get(k) == v for k, v in want.items()) and have.get("examples_asked") == (examples or ev.examples)
    return check


def first_aha(stage: Path) -> dict | None:
    """The first self-correction logged in an RL stage's ``samples.jsonl`` (a response in which a wrong
    written value was flagged and replaced by the right one, with a right final answer), or None."""
    rows = read_metrics(stage / "samples.jsonl")
    return next((r for r in rows if r.get("kind") == "self_correction"), None)


def headline(ev: dict) -> dict:
    """The numbers a summary table shows (no per-example rows)."""
    return {k: v for k, v in ev.items() if k not in ("per_example",)}


# Wall seconds of `r1lab zero`'s parts in a reference run on a machine of REFERENCE_GFLOPS (see
# pipeline/progress.RunClock: the whole-run estimate scales them to this machine).
REFERENCE_GFLOPS = 98.0   # one AVX-512 thread
ZERO_SECONDS = {"base": 1020, "eval_base": 15, "zero": 350, "eval_zero": 38}  # evaluations: k = 4


def rl_work(g: GRPOConfig) -> float:
    """Sampled tokens an RL stage may take (its time grows about with them)."""
    return float(g.steps * g.prompts_per_step * g.group_size * g.max_new_tokens)


def pretrain_work(cfg) -> float:
    """Pretraining tokens (none when the run starts from an existing model or a shipped base)."""
    pt = cfg.pretrain
    if cfg.base_model or shipped_base(cfg) is not None:
        return 0.0
    return float(pt.steps * pt.batch_size * pt.seq_len)


def eval_work(ev: EvalConfig, general: bool = False) -> float:
    """Samples one model's evaluations draw (standard split, hard split, general prompts when asked)."""
    return float(ev.samples * (ev.examples + (ev.hard_examples if ev.hard else 0) + (ev.general_examples if general else 0)))


def zero_work(cfg: ZeroRecipe) -> dict[str, float]:
    return {"base": pretrain_work(cfg), "eval_base": eval_work(cfg.eval), "zero": rl_work(cfg.zero),
            "eval_zero": eval_work(cfg.eval)}


def run_zero(cfg: ZeroRecipe, run_dir: str | Path) -> dict:
    cfg = reseeded(cfg, cfg.seed)
    check_inputs(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    calibration = start_run(run_dir, scaled_seconds(ZERO_SECONDS, zero_work(cfg), zero_work(ZeroRecipe(prebuilt=False))),
                            REFERENCE_GFLOPS)
    base_dir = base_stage(cfg, run_dir)
    z = cfg.zero
    clock = run_clock()
    clock.start("eval_base")
    print0("[eval] base model on held-out problems")
    base_eval = cached_json(stage_dir(run_dir, "base") / "eval.json",
                            lambda: evaluate_model(base_dir, z.task, z.task_options, z.template, cfg.eval, z.language),
                            same_eval(cfg.eval))
    clock.finish("eval_base")
    zero_stage(cfg, run_dir, base_dir)
    clock.start("eval_zero")
    zdir = run_dir / "zero"
    print0("[eval] R1-Zero model on held-out problems")
    final_eval = cached_json(zdir / "eval.json",
                             lambda: evaluate_model(zdir / "model", z.task, z.task_options, z.template, cfg.eval, z.language),
                             same_eval(cfg.eval))
    k = cfg.eval.samples
    keys = ["pass@1", "pass@1_stderr", f"pass@{k}", f"cons@{k}", "format_rate", "mean_response_tokens",
            "reflection_rate", "effective_reflection_rate", "reflection_accuracy", "no_reflection_accuracy",
            "language_consistency", "truncated_rate"]
    summary = {
        "base": {key: base_eval.get(key) for key in keys},
        "final": {key: final_eval.get(key) for key in keys},
        "protocol": {"examples": cfg.eval.examples, "samples": k, "temperature": cfg.eval.temperature,
                     "top_p": cfg.eval.top_p, "task": z.task, "template": z.template, "hard": cfg.eval.hard},
    }
    if cfg.eval.hard:
        for part, d, m in (("base", stage_dir(run_dir, "base"), base_dir), ("final", zdir, zdir / "model")):
            hard = cached_json(d / "eval_hard.json", lambda: evaluate_model(
                m, z.task, cfg.eval.hard_options(z.task_options), z.template, cfg.eval, z.language,
                examples=cfg.eval.hard_examples), same_eval(cfg.eval, cfg.eval.hard_examples))
            summary[part].update({"pass@1_hard": hard["pass@1"], "pass@1_hard_stderr": hard["pass@1_stderr"]})
    clock.finish("eval_zero")
    summary["aha_reflection_grows"] = aha({"base": summary["base"], "zero": summary["final"]})
    summary["aha_excerpt"] = first_aha(zdir)
    summary["seconds"] = time.time() - t0
    summary["calibration"] = calibration
    summary["prebuilt_bases"] = prebuilt_bases(run_dir, [])
    summary["gain_pass@1"] = summary["final"]["pass@1"] - summary["base"]["pass@1"]
    summary[f"final_pass@1_over_base_pass@{k}"] = summary["final"]["pass@1"] / max(1e-9, summary["base"][f"pass@{k}"])
    atomic_write_json(run_dir / "summary.json", summary)
    plot_curves({"R1-Zero": read_metrics(zdir / "metrics.jsonl")}, run_dir / "zero_curves.png",
                title="R1-Zero on the tiny reasoning world")
    return summary
