"""A whole GRPO run: load, loop over steps with periodic held-out evaluation, save."""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path


from r1lab.eval.evaluate import EvalSettings, evaluate
from r1lab.models import load_model_and_tokenizer
from r1lab.models.lora import attach_lora, has_lora, save_trained_model
from r1lab.rewards import RewardFailures
from r1lab.rewards.registry import FAILURE_KINDS
from r1lab.runtime import MetricLogger, any_rank, autocast_ctx, pick_device, print0, read_metrics, seed_everything
from r1lab.runtime.checkpoint import Checkpointer, Interrupted, StopFlag, resume_latest
from r1lab.runtime.fsdp import wrap
from r1lab.runtime.memory import peak_rss_mb
from r1lab.tasks.templates import render_example
from r1lab.errors import TrainingError
from r1lab.train.monitor import hacking_check
from r1lab.train.grpo import (GRPOConfig, apply_schedule, grpo_step, make_task, maybe_reset_reference, preflight,
                              setup_grpo)


def heldout_eval(engine, task, examples, cfg: GRPOConfig, samples: int | None = None, keep_responses=False) -> dict:
    tokenizer = engine.tokenizer
    settings = EvalSettings(samples=samples or cfg.eval_samples, temperature=cfg.eval_temperature,
                            top_p=cfg.eval_top_p, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 17,
                            language=cfg.language)
    prompts = [render_example(cfg.template, ex, tokenizer, cfg.instruction) for ex in examples]
    return evaluate(engine, task, examples, prompts, settings, keep_responses=keep_responses)


def run_grpo(cfg: GRPOConfig, model_dir: str | Path, out_dir: str | Path, progress=None) -> dict:
    """Train ``model_dir`` with GRPO; write ``out_dir/model`` and ``out_dir/metrics.jsonl``.

    Resumes from the latest checkpoint in ``out_dir/checkpoints`` when there is one: the steps after it
    are the ones an uninterrupted run would have taken (data, sampling seeds and minibatch order are
    functions of the step). SIGINT/SIGTERM saves a checkpoint at the end of the current step and raises
    ``Interrupted``.
    """
    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    policy, tokenizer = load_model_and_tokenizer(model_dir, device)
    policy = attach_lora(policy, cfg.lora)  # in place; unchanged without lora.r
    task = make_task(cfg)
    autocast = None if cfg.precision == "fp32" else functools.partial(autocast_ctx, device, cfg.precision)
    ref_model, optimizer, engine, rewards = setup_grpo(policy, tokenizer, task, cfg, device, autocast)
    # under torchrun: a DDP wrapper (gradients all-reduced) or, with parallel=fsdp, the sharded policy itself
    train_model = wrap(policy, cfg.parallel)
    failures = RewardFailures()
    logger = MetricLogger(out_dir / "metrics.jsonl")
    ckpt = Checkpointer(out_dir / "checkpoints", keep=cfg.keep_checkpoints)
    ckpt_ref = None if has_lora(policy) else ref_model  # a LoRA reference is the base model: nothing to save
    state = resume_latest(ckpt, policy, optimizer, logger, ckpt_ref, label="grpo")
    start = state["step"]
    sample_log = MetricLogger(out_dir / "samples.jsonl")  # verbatim responses worth reading (self-corrections)
    sample_log.truncate_after(start - 1)
    completion_log = MetricLogger(out_dir / "completions.jsonl")  # sampled completions, rewards, advantages
    completion_log.truncate_after(start - 1)
    logger.track(cfg.report_to, cfg, start)
    for kind in FAILURE_KINDS:
        setattr(failures, kind, dict(state["extra"].get(f"reward_{kind}", {})))
    eval_examples = task.examples("test", n=cfg.eval_examples, seed=cfg.seed) if cfg.eval_every > 0 else []
    if cfg.preflight and start == 0:
        print0(f"[grpo] preflight: {preflight(engine, task, rewards, cfg, tokenizer)}")
    t0 = time.time()
    last, bad_steps = {}, 0
    # (proxy, gold) of earlier steps with general prompts, read back on resume so the check sees them all
    earlier = read_metrics(out_dir / "metrics.jsonl")
    monitor = [(r["monitor/preference"], r["monitor/general_gold"]) for r in earlier if "monitor/preference" in r]
    warned = any(r.get("monitor/hacking") for r in earlier)
    with StopFlag() as stop, contextlib.closing(logger):  # trackers closed (flushed) however the run ends
        for step in range(start, cfg.steps):
            reset = maybe_reset_reference(ref_model, policy, cfg, step)
            lr = apply_schedule(optimizer, cfg, step)
            metrics = grpo_step(policy, ref_model, optimizer, engine, task, rewards, failures, cfg, step, tokenizer,
                                autocast, train_model)
            for row in metrics.pop("_samples", []):
                sample_log.log(row)
            completions = metrics.pop("_completions", [])
            for row in completions:
                completion_log.log(row)
            if completions:
                logger.table("completions", completions, step)
            if "monitor/preference" in metrics:
                monitor.append((metrics["monitor/preference"], metrics["monitor/general_gold"]))
                hacked = hacking_check(monitor)
                metrics["monitor/hacking"] = float(hacked is not None)
                if hacked and not warned:
                    warned = True
                    print0(f"[grpo] warning: possible reward hacking at step {step}: the preference score rose "
                           f"{hacked['proxy_first']:.3f} -> {hacked['proxy_last']:.3f} while gold accuracy on the "
                           f"same general prompts fell {hacked['gold_first']:.3f} -> {hacked['gold_last']:.3f}")
            metrics.update({"step": step, "lr": lr, "ref_reset": reset, "elapsed_s": time.time() - t0,
                            "peak_rss_mb": peak_rss_mb()})
            if cfg.eval_every > 0 and ((step + 1) % cfg.eval_every == 0 or step == cfg.steps - 1):
                ev = heldout_eval(engine, task, eval_examples, cfg)
                metrics.update({"eval/pass@1": ev["pass@1"], "eval/format_rate": ev["format_rate"],
                                "eval/mean_response_tokens": ev["mean_response_tokens"],
                                "eval/language_consistency": ev["language_consistency"]})
            logger.log(metrics)
            last = metrics
            bad_steps = bad_steps + 1 if (metrics["skipped_updates"] > 0 and metrics["updates"] == 0) else 0
            if bad_steps >= cfg.max_bad_steps:
                raise TrainingError(
                    f"{bad_steps} steps in a row had non-finite losses or gradients (last at step {step}); stopped "
                    f"without saving. The last good checkpoint is {ckpt.latest() or 'none (no checkpoint yet)'}; "
                    "try a lower lr, grad_clip or precision=fp32")
            if progress is not None:
                progress(step + 1, cfg.steps, reward=metrics["reward"], acc=metrics.get("accuracy", 0.0),
                         len=metrics["response_len_mean"])
            done = step + 1
            stopping = any_rank(stop.requested)  # every rank saves (FSDP gathers) and stops together
            if (stopping or done % cfg.checkpoint_every == 0) and done < cfg.steps:
                ckpt.save(done, policy, optimizer, ckpt_ref,
                          extra={f"reward_{k}": dict(getattr(failures, k)) for k in FAILURE_KINDS})
            if stopping and done < cfg.steps:
                raise Interrupted(f"stopped after step {done} of {cfg.steps}; checkpoint in {ckpt.dir}")
    save_trained_model(policy, tokenizer, out_dir / "model")  # with LoRA: merged, and model_adapter/
    return {"steps": cfg.steps, "seconds": time.time() - t0, "last": last, "resumed_from": start}
