"""GRPO (DeepSeekMath §4.1; R1 Eq. 1–3) as one explicit loop:

    sample G responses for each of P prompts -> score with rule rewards -> group-relative advantages
    -> mu passes of clipped-ratio updates over minibatches (+ beta * k3 KL to a reference policy that is
    reset to the current policy every ``ref_reset_every`` steps) -> log.

Everything a step needs is a function of (config, step, model/optimizer state), so a run can be
checkpointed and resumed exactly, and ranks of a torch.distributed job only differ in which prompts
they take.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from dataclasses import dataclass, field

import torch

from r1lab.config import DataConfig, require
from r1lab.errors import UserError
from r1lab.models.lora import AdapterOff, LoraSettings, has_lora, reference_view
from r1lab.models.prompting import template_names
from r1lab.core import check_loss_options, group_advantages, policy_loss
from r1lab.rewards import RewardFailures, build_rewards, is_r1zero_format, score_all
from r1lab.rewards.behaviour import has_effective_correction, language_consistency, reflection_count, reflection_stats
from r1lab.rewards.format import is_r1_format, reasoning_of
from r1lab.rewards.registry import target_language
from r1lab.rollout import NativeEngine, SamplingParams
from r1lab.runtime import all_reduce_mean, all_reduce_sum, autocast_ctx, rank, world_size
from r1lab.runtime.device import resolve_precision
from r1lab.runtime.fsdp import PARALLEL_MODES, local_norm, shard
from r1lab.runtime.tracking import resolve_report_to
from r1lab.tasks import get_task
from r1lab.tasks.templates import render_example
from r1lab.train.batch import build_batch, response_logprobs
from r1lab.train.monitor import finish_monitor, general_monitor
from r1lab.train.schedule import lr_at, make_optimizer, set_lr


@dataclass
class GRPOConfig:
    # data
    task: str = "arith"
    task_options: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)  # your data file (data.path), used instead of task
    template: str = "r1zero"         # a plain template (r1zero, qa, user, bare) or "chat" (the model's own)
    instruction: str | None = None   # appended to every problem on its own line (e.g. "... within \\boxed{}.")
    # sampling (R1-Zero: temperature 1, G = 16)
    prompts_per_step: int = 16       # P, global over ranks
    group_size: int = 8              # G
    max_new_tokens: int = 160
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    # optimisation
    steps: int = 80
    lr: float = 3e-4
    lr_schedule: str = "constant"
    warmup: int = 0
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    mu: int = 1                      # passes over each rollout batch
    minibatches: int = 1             # optimizer steps per pass (R1-Zero: 16)
    micro_batch_size: int = 64       # rows per forward/backward (gradient accumulation inside a minibatch)
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    kl_coef: float = 0.001           # beta (R1-Zero: 0.001)
    ref_reset_every: int = 400       # reset pi_ref <- pi_theta (R1-Zero: every 400 steps); 0 = never
    adv_scale: str = "group"
    loss_agg: str = "seq-mean-token-mean"
    max_tokens_norm: int | None = None   # Dr. GRPO constant; defaults to max_new_tokens
    dynamic_sampling: bool = False   # drop groups whose rewards are all equal (DAPO)
    mask_truncated: bool = False     # no loss on responses cut at max_new_tokens (DAPO overlong filtering)
    # the GRPO family of losses (README "Policy losses"; r1lab.core.policy_loss has the formulas)
    ratio_level: str = "token"       # token (GRPO) or sequence (GSPO-token, Zheng et al. 2025)
    objective: str = "clip"          # clip (PPO/GRPO) or cispo (MiniMax-M1 2025)
    dual_clip: float | None = None   # c > 1: objectives with A < 0 bounded below by c*A (Ye et al. 2020)
    # truncated importance sampling against the sampler's log-probabilities (Yao et al. 2025); null: on
    # exactly when the sampler's precision differs from the trainer's
    is_correction: bool | None = None
    is_level: str = "token"          # token or sequence weights
    is_cap: float = 2.0              # C: weights are min(pi_old / pi_sampler, C)
    # general (non-reasoning) prompts of a mixture task, and so the preference reward, only in the last N
    # steps (R1 stage 2: "general instruction data and preference-based rewards are incorporated
    # exclusively in the final 400 steps" of 1,700); None: in every step
    general_steps: int | None = None
    rewards: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    reward_options: dict = field(default_factory=dict)
    reward_timeout_s: float = 5.0
    language: str = "en"             # target language for the language-consistency metric/reward
    # evaluation during training (held-out pass@1 curve)
    eval_every: int = 10
    eval_examples: int = 64
    eval_samples: int = 4
    eval_temperature: float = 0.6
    eval_top_p: float = 0.95
    # runtime
    precision: str = "fp32"
    sample_precision: str | None = None  # the sampler's precision (fp32, bf16, auto); null: as `precision`
    device: str = "auto"
    max_batch: int = 256             # live rows in the sampler
    seed: int = 0
    log_every: int = 1
    report_to: list[str] | None = None  # tensorboard, wandb, trackio, mlflow; None: tensorboard when installed
    log_completions_every: int = 10  # steps between tables of sampled completions (completions.jsonl); 0: never
    checkpoint_every: int = 10       # steps between checkpoints (also written on SIGINT/SIGTERM)
    keep_checkpoints: int = 2
    parallel: str = "ddp"            # under torchrun: ddp (a replica a rank) or fsdp (sharded, runtime/fsdp.py)
    preflight: bool = True           # sample a small batch first; stop if every reward is equal (no signal)
    preflight_prompts: int = 8
    # batches of preflight_prompts x G the preflight may sample before concluding: a model right ~1.5% of
    # the time gives 64 equal rewards in a row one time in three (SmolLM2-135M on arithmetic at T = 1),
    # but 256 one time in fifty. It stops at the first batch with a difference, so a working task pays one.
    preflight_batches: int = 4
    max_bad_steps: int = 3           # consecutive steps whose updates were all non-finite before stopping
    lora: LoraSettings = field(default_factory=LoraSettings)  # lora.r > 0: train a LoRA adapter (models/lora.py)

    def validate(self) -> None:
        resolve_report_to(self.report_to)  # an unknown or uninstalled tracker fails before any work
        require(self.log_completions_every >= 0, "log_completions_every", "must be >= 0")
        require(self.template in template_names(), "template",
                f"unknown template {self.template!r}; valid: {', '.join(template_names())}")
        require(self.parallel in PARALLEL_MODES, "parallel", f"must be one of {', '.join(PARALLEL_MODES)}")
        require(self.group_size >= 2, "group_size", f"must be at least 2 (group-relative advantages need a group), got {self.group_size}")
        require(self.prompts_per_step >= 1, "prompts_per_step", "must be at least 1")
        require(self.preflight_batches >= 1, "preflight_batches", "must be at least 1")
        require(self.prompts_per_step % world_size() == 0, "prompts_per_step",
                f"({self.prompts_per_step}) must divide evenly over {world_size()} ranks")
        rows = self.prompts_per_step * self.group_size // world_size()
        require(self.minibatches >= 1 and rows % self.minibatches == 0, "minibatches",
                f"({self.minibatches}) must divide the {rows} rows each rank trains on per step")
        require(self.micro_batch_size >= 1, "micro_batch_size", "must be at least 1")
        require(self.steps >= 0, "steps", "must be >= 0")
        require(self.lr > 0, "lr", "must be positive")
        require(0 < self.clip_eps, "clip_eps", "must be positive")
        require(self.kl_coef >= 0, "kl_coef", "must be >= 0")
        require(self.temperature > 0, "temperature", "must be positive for RL sampling")
        require(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        require(self.mu >= 1, "mu", "must be at least 1")
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be at least 1")
        require(self.precision in ("fp32", "bf16", "auto"), "precision", "must be fp32, bf16 or auto")
        require(self.sample_precision in (None, "fp32", "bf16", "auto"), "sample_precision",
                "must be fp32, bf16, auto or null (as precision)")
        for key in ("ratio_level", "objective", "dual_clip", "is_level", "is_cap"):
            try:  # one option at a time, so the message names the key that is wrong
                check_loss_options(**{key: getattr(self, key)})
            except ValueError as e:
                raise UserError(f"config key {key!r}: {e}") from None
        require(self.dual_clip is None or self.objective == "clip", "dual_clip",
                f"bounds the clipped objective; it does not apply to objective {self.objective!r}")
        self.lora.validate()
        if self.lora.enabled:
            require(self.parallel == "ddp", "lora.r", "LoRA runs with parallel=ddp (FSDP sharding of adapters is not supported)")
            # the reference is the base model (adapter off): resetting it to the policy would need a copy
            require(self.kl_coef == 0 or self.ref_reset_every <= 0 or self.ref_reset_every >= self.steps, "ref_reset_every",
                    f"({self.ref_reset_every}) must be 0 or >= steps ({self.steps}) with LoRA: the reference is the base "
                    "model with the adapter disabled, which a reset cannot move")
        require(self.general_steps is None or 0 <= self.general_steps <= self.steps, "general_steps",
                f"must be between 0 and steps ({self.steps}), or null for every step")
        if self.general_steps is not None:
            require(self.task == "mixture" and "general" in self.task_options.get("components", {}), "general_steps",
                    "needs task=mixture with a 'general' component in task_options.components")


def make_task(cfg: GRPOConfig):
    """The run's task: the user's data file when ``data.path`` is set (its answers are required only when a
    reward grades them), else the named task."""
    if cfg.data.path:
        graded = any(name in cfg.rewards for name in ("accuracy", "math"))
        return get_task("data", path=cfg.data.path, problem_key=cfg.data.problem_key, answer_key=cfg.data.answer_key,
                        split=cfg.data.split, need_answer=graded)
    return get_task(cfg.task, **cfg.task_options)


def train_prompts(task, cfg: GRPOConfig, step: int) -> list:
    """The P prompts of ``step`` (global), a pure function of (seed, step): resumable, rank-independent.
    Before the last ``general_steps`` steps a mixture's general component is left out."""
    if cfg.general_steps is not None and step < cfg.steps - cfg.general_steps:
        task = task.without("general")
    return task.examples("train", n=cfg.prompts_per_step, seed=cfg.seed * 1_000_003 + step)


def rollout_stats(rollouts, examples, per_name: dict, rewards_PG: torch.Tensor, cfg: GRPOConfig) -> dict:
    """Per-step behaviour metrics: reward terms, length, truncation, format, reflection, language."""
    n = max(1, len(rollouts))
    lengths = [len(r.token_ids) for r in rollouts]
    layout_ok = is_r1_format if "format_r1" in cfg.rewards else is_r1zero_format
    stats = {f"reward/{k}": sum(v) / n for k, v in per_name.items()}
    std = rewards_PG.std(dim=1) if rewards_PG.shape[1] > 1 else torch.zeros(rewards_PG.shape[0])
    stats.update({
        "reward": float(rewards_PG.mean()),
        "accuracy": sum(per_name.get("accuracy", per_name.get("math", [0.0]))) / n if ("accuracy" in per_name or "math" in per_name) else float("nan"),
        # the layout this run rewards: R1's readable one when format_r1 is a reward, else R1-Zero's
        "format_rate": sum(layout_ok(r.text) for r in rollouts) / n,
        "response_len_mean": sum(lengths) / n,
        "response_len_max": max(lengths, default=0),
        "truncated_frac": sum(r.finish_reason == "length" for r in rollouts) / n,
        "zero_std_frac": float((std < 1e-8).float().mean()),
        "reflection_words": sum(reflection_count(r.text) for r in rollouts) / n,
        "language_consistency": sum(language_consistency(reasoning_of(r.text), target_language(e, cfg.language))
                                    for r, e in zip(rollouts, examples)) / n,
    })
    correct = [x > 0.5 for x in per_name["accuracy"]] if "accuracy" in per_name else [False] * len(rollouts)
    refl = reflection_stats([r.text for r in rollouts], correct)
    if "accuracy" not in per_name:
        refl = {k: v for k, v in refl.items() if not k.endswith("accuracy")}
    # all_reduce_mean needs numbers on every rank: a side with no responses in it reads NaN
    stats.update({k: float("nan") if v is None else v for k, v in refl.items()})
    return stats


def _global_totals(mask_BT: torch.Tensor, kept_B: torch.Tensor) -> tuple[float, float]:
    """(kept rows, loss tokens) of a minibatch summed over ranks: every rank normalises by the global
    counts, so data-parallel gradients equal those of one process on the whole batch."""
    t = torch.tensor([float(kept_B.sum()), float(mask_BT.sum())], dtype=torch.float64)
    t = all_reduce_sum(t)
    return float(t[0]), float(t[1])


def _weight(agg: str, mask_micro: torch.Tensor, total_rows: float, total_tokens: float) -> float:
    """Share of a micro-batch in the global minibatch loss, times the world size (DDP averages gradients).

    ``policy_loss`` averages over its micro-batch (rows, or tokens for "token-mean"); rescaling by the
    micro-batch's share of the *global* kept rows/tokens gives the loss of the whole minibatch.
    Rows of dropped groups (dynamic sampling) have an all-zero mask: they count in neither total.
    """
    if agg == "token-mean":
        return world_size() * float(mask_micro.sum()) / max(total_tokens, 1.0)
    return world_size() * mask_micro.shape[0] / max(total_rows, 1.0)


@torch.no_grad()
def batch_logprobs(model, batch, cfg: GRPOConfig, autocast) -> torch.Tensor:
    """Log-probabilities of every response token under ``model``, in micro-batches, without gradients."""
    out = []
    for s in range(0, len(batch), cfg.micro_batch_size):
        idx = torch.arange(s, min(len(batch), s + cfg.micro_batch_size))
        lp, _ = response_logprobs(model, batch.select(idx), cfg.temperature, autocast=autocast)
        out.append(lp.float())
    return torch.cat(out)


def loss_fn(cfg: GRPOConfig):
    """``policy_loss`` with the config's choices bound (the variant, its clip range, KL and aggregation)."""
    return functools.partial(policy_loss, clip_eps=cfg.clip_eps, clip_eps_high=cfg.clip_eps_high, kl_coef=cfg.kl_coef,
                             agg=cfg.loss_agg, max_tokens=cfg.max_tokens_norm or cfg.max_new_tokens,
                             ratio_level=cfg.ratio_level, objective=cfg.objective, dual_clip=cfg.dual_clip,
                             is_level=cfg.is_level, is_cap=cfg.is_cap)


def is_correction_on(cfg: GRPOConfig, device) -> bool:
    """Truncated IS against the sampler's log-probabilities: ``is_correction`` when set, else on exactly when
    the sampler's (resolved) precision differs from the trainer's, e.g. bf16 sampling and fp32 training."""
    if cfg.is_correction is not None:
        return cfg.is_correction
    device = torch.device(device)
    sampler = resolve_precision(device, cfg.sample_precision or cfg.precision)
    return sampler != resolve_precision(device, cfg.precision)


def sampler_autocast(cfg: GRPOConfig, device, autocast_factory=None):
    """The sampler's autocast factory: the trainer's, unless ``sample_precision`` names another precision."""
    if cfg.sample_precision is None:
        return autocast_factory
    if resolve_precision(torch.device(device), cfg.sample_precision) == "fp32":
        return None
    return functools.partial(autocast_ctx, torch.device(device), cfg.sample_precision)


def behaviour_logprobs(rollouts, width: int) -> torch.Tensor:
    """The sampler's per-token log-probabilities of the rollouts, (B, width), zero after each response."""
    out = torch.zeros(len(rollouts), width, dtype=torch.float32)
    for i, r in enumerate(rollouts):
        if r.logprobs:
            out[i, : len(r.logprobs)] = torch.tensor(r.logprobs, dtype=torch.float32)
    return out


def grpo_update(policy, optimizer, batch, adv_B, kept_B, old_lp, ref_lp, cfg: GRPOConfig, step: int, autocast,
                train_model=None, beh_lp=None) -> dict:
    """``mu`` passes of ``minibatches`` optimizer steps over one rollout batch. Returns averaged metrics.

    ``beh_lp`` (B, T): the sampler's log-probabilities, for truncated importance sampling (or None).

    ``train_model`` is the module to run forward/backward through (a DistributedDataParallel wrapper of
    ``policy`` under torchrun); gradients of all micro-batches but the last of a minibatch are not
    synchronised (``no_sync``), the last one all-reduces the accumulated sum.
    """
    train_model = train_model if train_model is not None else policy
    rows = len(batch)
    mb_rows = rows // cfg.minibatches
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
    sums: dict[str, float] = {}
    n_updates, skipped = 0, 0
    loss_of = loss_fn(cfg)
    for _ in range(cfg.mu):
        order = torch.randperm(rows, generator=gen) if rows > mb_rows or cfg.mu > 1 else torch.arange(rows)
        for m in range(cfg.minibatches):
            idx = order[m * mb_rows : (m + 1) * mb_rows]
            total_rows, total_tokens = _global_totals(batch.mask[idx], kept_B[idx])
            if total_rows == 0:  # every group of this minibatch was dropped, on every rank
                continue
            optimizer.zero_grad(set_to_none=True)
            acc: dict[str, float] = {}
            starts = list(range(0, len(idx), cfg.micro_batch_size))
            for s in starts:
                micro = idx[s : s + cfg.micro_batch_size]
                mb = batch.select(micro)
                sync = s == starts[-1] or not hasattr(train_model, "no_sync")
                with (contextlib.nullcontext() if sync else train_model.no_sync()):
                    lp, ent = response_logprobs(train_model, mb, cfg.temperature, with_entropy=True, autocast=autocast)
                    old = old_lp[micro] if old_lp is not None else lp.detach()
                    loss, met = loss_of(
                        lp, old, adv_B[micro], mb.mask, ref_logprobs_BT=ref_lp[micro] if ref_lp is not None else None,
                        behaviour_logprobs_BT=beh_lp[micro] if beh_lp is not None else None)
                    w = _weight(cfg.loss_agg, mb.mask, total_rows, total_tokens)
                    (loss * w).backward()
                # metrics are weighted like the loss: averaging the ranks' sums gives the global average
                met["loss"] = float(loss.detach())
                tok = float(mb.mask.sum())
                met["entropy"] = float((ent * mb.mask).sum() / max(tok, 1.0))
                for k, v in met.items():
                    acc[k] = acc.get(k, 0.0) + w * v
            gnorm = local_norm(torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip))
            if not torch.isfinite(gnorm):
                optimizer.zero_grad(set_to_none=True)  # a non-finite gradient never reaches the weights
                skipped += 1
                continue
            optimizer.step()
            acc["grad_norm"] = float(gnorm)
            for k, v in acc.items():
                sums[k] = sums.get(k, 0.0) + v
            n_updates += 1
    out = {k: v / max(1, n_updates) for k, v in sums.items()}
    out["updates"] = n_updates
    out["skipped_updates"] = skipped
    return out


def grpo_step(policy, ref_model, optimizer, engine, task, rewards, failures: RewardFailures, cfg: GRPOConfig,
              step: int, tokenizer, autocast=None, train_model=None) -> dict:
    """One GRPO step on this rank's share of the step's prompts. Returns the step's metrics."""
    t0 = time.time()
    examples = train_prompts(task, cfg, step)[rank():: world_size()]
    prompts = [render_example(cfg.template, ex, tokenizer, cfg.instruction) for ex in examples]
    sampling = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                              stop=tuple(cfg.stop), seed=(cfg.seed * 1_000_003 + step) * 101 + rank())
    rollouts = engine.generate(prompts, cfg.group_size, sampling)
    t_sample = time.time() - t0
    group_examples = [examples[r.prompt_index] for r in rollouts]
    t1 = time.time()
    totals, per_name = score_all(rewards, [r.text for r in rollouts], group_examples, cfg.reward_timeout_s, failures,
                                 [r.token_ids for r in rollouts])
    t_score = time.time() - t1
    rewards_PG = torch.tensor(totals, dtype=torch.float32).view(len(examples), cfg.group_size)
    metrics = rollout_stats(rollouts, group_examples, per_name, rewards_PG, cfg)
    metrics.update(general_monitor(rollouts, group_examples, per_name, task))
    samples = self_corrections(rollouts, group_examples, per_name, step)

    adv_PG = group_advantages(rewards_PG, scale=cfg.adv_scale)
    keep = torch.ones(len(rollouts), dtype=torch.bool)
    if cfg.dynamic_sampling:  # groups with equal rewards carry no signal (DAPO): their rows get no loss
        keep = (rewards_PG.std(dim=1) > 1e-8).repeat_interleave(cfg.group_size)
    loss_mask = [[0.0 if (not k or (cfg.mask_truncated and r.finish_reason == "length")) else 1.0] * len(r.token_ids)
                 for r, k in zip(rollouts, keep.tolist())]
    batch = build_batch([r.prompt_ids for r in rollouts], [r.token_ids for r in rollouts],
                        engine.pad_id, loss_mask).to(engine.device)
    adv_B = adv_PG.reshape(-1).to(engine.device)
    beh_lp = None
    if is_correction_on(cfg, engine.device):
        beh_lp = behaviour_logprobs(rollouts, batch.response.shape[1]).to(engine.device)

    t2 = time.time()
    upd: dict = {"updates": 0, "skipped_updates": 0}
    if all_reduce_sum(torch.tensor([float(keep.sum())]))[0] > 0:
        on_policy = cfg.mu == 1 and cfg.minibatches == 1
        old_lp = None if on_policy else batch_logprobs(policy, batch, cfg, autocast)
        ref_lp = None
        if ref_model is not None and cfg.kl_coef > 0:
            with reference_view(ref_model) as ref:  # a LoRA run's reference: the policy with its adapter off
                ref_lp = batch_logprobs(ref, batch, cfg, autocast)
        policy.train()
        upd = grpo_update(policy, optimizer, batch, adv_B, keep, old_lp, ref_lp, cfg, step, autocast, train_model,
                          beh_lp)
    t_train = time.time() - t2
    gen_tokens = sum(len(r.token_ids) for r in rollouts)
    train_tokens = float(batch.attention.sum()) if len(batch) else 0.0
    metrics.update(upd)
    metrics.update({
        "kept_rows": int(keep.sum()),
        "reward_errors": sum(failures.errors.values()),
        "reward_timeouts": sum(failures.timeouts.values()),
        "reward_invalid": sum(failures.invalid.values()),
        "reward_none": sum(failures.none.values()),
        "sample_s": t_sample, "score_s": t_score, "train_s": t_train, "step_s": time.time() - t0,
        "sample_tokens_per_s": gen_tokens / max(t_sample, 1e-9),
        "train_tokens_per_s": train_tokens * cfg.mu / max(t_train, 1e-9),
    })
    metrics = finish_monitor(all_reduce_mean(metrics))
    metrics["_samples"] = samples  # not a metric: run_grpo writes it to samples.jsonl
    every = cfg.log_completions_every
    metrics["_completions"] = (completion_rows(rollouts, group_examples, totals, per_name, adv_PG.reshape(-1), step)
                               if every > 0 and step % every == 0 else [])
    return metrics


def completion_rows(rollouts, examples, totals, per_name: dict, adv_B: torch.Tensor, step: int) -> list[dict]:
    """This rank's sampled completions of ``step``, each with its rewards and advantage (the table trackers show)."""
    adv = adv_B.tolist()
    return [{"step": step, "prompt": ex.prompt, "completion": r.text, "reward": totals[i],
             **{f"reward/{name}": scores[i] for name, scores in per_name.items()}, "advantage": adv[i]}
            for i, (r, ex) in enumerate(zip(rollouts, examples))]


def self_corrections(rollouts, examples, per_name: dict, step: int, limit: int = 1) -> list[dict]:
    """Up to ``limit`` responses of this step in which a self-correction turned a wrong written value into
    the right one and the final answer is right: the tiny world's "aha" responses, kept verbatim (the
    report quotes the first). Observed only, never rewarded."""
    accuracy = per_name.get("accuracy")
    if accuracy is None:
        return []
    out = []
    for r, ex, acc in zip(rollouts, examples, accuracy):
        if acc > 0.5 and has_effective_correction(r.text):
            out.append({"step": step, "kind": "self_correction", "id": ex.id, "prompt": ex.prompt,
                        "response": r.text, "reference": str(ex.reference)})
            if len(out) >= limit:
                break
    return out


def preflight(engine, task, rewards, cfg: GRPOConfig, tokenizer=None) -> dict:
    """Sample a small batch before RL and stop with a clear message when every reward is the same: then
    every advantage is 0 and nothing can be learnt (the silent trap of other trainers).

    A rare success is still a signal: while every reward so far is equal it samples another batch, on
    other prompts, up to ``preflight_batches`` in all."""
    n = min(cfg.preflight_prompts, cfg.prompts_per_step)
    pool = task.examples("train", n=n * cfg.preflight_batches, seed=cfg.seed * 1_000_003 - 1)
    totals, failures, per_name_all = [], RewardFailures(), {}
    for b in range(cfg.preflight_batches):
        examples = pool[b * n:(b + 1) * n]
        if not examples:
            break
        sampling = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                                  stop=tuple(cfg.stop), seed=cfg.seed + 99_991 + b)
        rollouts = engine.generate([render_example(cfg.template, e, tokenizer, cfg.instruction) for e in examples],
                                   cfg.group_size, sampling)
        batch, per_name = score_all(rewards, [r.text for r in rollouts], [examples[r.prompt_index] for r in rollouts],
                                    cfg.reward_timeout_s, failures, [r.token_ids for r in rollouts])
        totals += batch
        for k, v in per_name.items():
            per_name_all.setdefault(k, []).extend(v)
        if max(totals) - min(totals) >= 1e-8:
            break
    means = {k: sum(v) / len(v) for k, v in per_name_all.items()}
    if max(totals) - min(totals) < 1e-8:
        failed = {k: v for k, v in {**failures.errors, **failures.timeouts, **failures.invalid}.items() if v}
        raise UserError(
            f"preflight: all {len(totals)} sampled responses got the same reward ({totals[0]:g}; per reward: "
            + ", ".join(f"{k} {v:.3g}" for k, v in means.items())
            + (f"; failing rewards: {failed}" if failed else "")
            + "), so every advantage is 0 and GRPO cannot learn. Check the task, template, rewards and "
            "max_new_tokens, or set preflight=false to go on anyway.")
    return {"preflight_reward_mean": sum(totals) / len(totals), "preflight_responses": len(totals),
            **{f"preflight/{k}": v for k, v in means.items()}}


def check_reward_models(cfg: GRPOConfig, prefix: str = "") -> None:
    """Fail before any work when a user reward function cannot be imported, or the preference reward's model
    (``reward_options.preference.model``) is unusable."""
    from r1lab.models import check_reward_model
    from r1lab.rewards.user import is_user_reward, load_reward_function

    for name in cfg.rewards:
        if is_user_reward(name):
            load_reward_function(name)

    opts = cfg.reward_options.get("preference") if "preference" in cfg.rewards else None
    if isinstance(opts, dict) and opts.get("model"):
        check_reward_model(opts["model"], f"{prefix}reward_options.preference.model")


def setup_grpo(policy, tokenizer, task, cfg: GRPOConfig, device, autocast_factory=None):
    """Reference model, optimizer, sampler and rewards for a GRPO run on ``policy``."""
    ref_model = None
    if cfg.kl_coef > 0 and has_lora(policy):
        ref_model = AdapterOff(policy)  # the same weights with the adapter disabled: no second copy
    elif cfg.kl_coef > 0:
        ref_model = copy.deepcopy(policy).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    shard(policy, cfg.parallel)  # before the optimizer: it holds the sharded parameters (a no-op for DDP)
    if isinstance(ref_model, torch.nn.Module):
        shard(ref_model, cfg.parallel)
    optimizer = make_optimizer(policy, cfg.lora.lr_or(cfg.lr), cfg.weight_decay)
    engine = NativeEngine(policy, tokenizer, device=device, max_batch=cfg.max_batch,
                          autocast=sampler_autocast(cfg, device, autocast_factory))
    rewards = build_rewards(cfg.rewards, task, cfg.reward_options)
    return ref_model, optimizer, engine, rewards


def apply_schedule(optimizer, cfg: GRPOConfig, step: int) -> float:
    lr = lr_at(step, cfg.steps, cfg.lora.lr_or(cfg.lr), cfg.warmup, cfg.lr_schedule, cfg.min_lr_ratio)
    set_lr(optimizer, lr)
    return lr


def maybe_reset_reference(ref_model, policy, cfg: GRPOConfig, step: int) -> bool:
    """pi_ref <- pi_theta every ``ref_reset_every`` steps (R1: "Every 400 steps, we replace the reference model")."""
    if (not isinstance(ref_model, torch.nn.Module) or cfg.ref_reset_every <= 0 or step == 0
            or step % cfg.ref_reset_every != 0):
        return False
    ref_model.load_state_dict(policy.state_dict())
    return True
