"""Supervised fine-tuning with the loss on the response only (cold start, rejection-sampling SFT,
distillation). R1-v2 B.4.2: 2–3 epochs, cosine decay to a tenth of the initial LR."""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1lab.config import DataConfig, require
from r1lab.errors import UserError
from r1lab.models.lora import LoraSettings, attach_lora, save_trained_model
from r1lab.runtime import (MetricLogger, all_reduce_sum, any_rank, autocast_ctx, pick_device, print0, rank,
                           seed_everything, world_size)
from r1lab.runtime.fsdp import PARALLEL_MODES, local_norm, shard, wrap
from r1lab.runtime.checkpoint import Checkpointer, Interrupted, StopFlag, resume_latest
from r1lab.runtime.memory import peak_rss_mb
from r1lab.runtime.tracking import resolve_report_to
from r1lab.train.batch import build_batch, response_logprobs
from r1lab.tasks.templates import join_text
from r1lab.train.schedule import lr_at, make_optimizer, set_lr


@dataclass
class SFTConfig:
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1        # cosine to a tenth of the initial LR (R1-v2 B.4.2/B.4.3)
    warmup: int = 10
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    max_len: int = 384               # prompt + response tokens; longer pairs are dropped (and counted)
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 50
    optimizer: str = "adamw"         # adamw | sgd
    parallel: str = "ddp"            # under torchrun: ddp or fsdp (runtime/fsdp.py)
    # "token": the NLL's mean over every response token of the batch (long responses weigh more);
    # "sequence": each example's token-mean NLL, averaged over examples (a 10-token answer weighs as much
    # as a 200-token chain of thought: short non-reasoning answers in a reasoning-heavy mix are learned)
    loss_agg: str = "token"
    lora: LoraSettings = field(default_factory=LoraSettings)  # lora.r > 0: train a LoRA adapter (models/lora.py)
    data: DataConfig = field(default_factory=DataConfig)  # `r1lab sft`'s data (--data sets data.path)
    report_to: list[str] | None = None  # tensorboard, wandb, trackio, mlflow; None: tensorboard when installed

    def validate(self) -> None:
        resolve_report_to(self.report_to)
        require(self.epochs >= 1, "epochs", "must be at least 1")
        require(self.batch_size >= 1, "batch_size", "must be at least 1")
        require(self.lr > 0, "lr", "must be positive")
        require(self.optimizer in ("adamw", "sgd"), "optimizer", "must be adamw or sgd")
        require(self.loss_agg in ("token", "sequence"), "loss_agg", "must be token or sequence")
        require(self.parallel in PARALLEL_MODES, "parallel", f"must be one of {', '.join(PARALLEL_MODES)}")
        self.lora.validate()
        require(not self.lora.enabled or self.parallel == "ddp", "lora.r",
                "LoRA runs with parallel=ddp (FSDP sharding of adapters is not supported)")


def encode_pairs(tokenizer, pairs: list[dict], max_len: int) -> tuple[list[tuple[list[int], list[int]]], int]:
    """Token ids of (prompt, response + EOS) for each {"prompt", "response"}; returns (kept, dropped)."""
    prompts = tokenizer([p["prompt"] for p in pairs], add_special_tokens=False)["input_ids"]
    resps = tokenizer([join_text(p["prompt"]) + p["response"] for p in pairs], add_special_tokens=False)["input_ids"]
    kept, dropped = [], 0
    for p, r in zip(prompts, resps):
        r = r + [tokenizer.eos_token_id]  # the model learns to stop after the response
        if len(p) + len(r) > max_len:
            dropped += 1
            continue
        kept.append((p, r))
    return kept, dropped


def sft(cfg: SFTConfig, model, tokenizer, pairs: list[dict], out_dir: str | Path, progress=None) -> dict:
    """Fine-tune ``model`` in place on ``pairs`` ({"prompt": rendered prompt, "response": text}).

    Saves ``out_dir/model``; checkpoints every ``checkpoint_every`` steps and resumes from them. With
    ``lora.r`` > 0 a LoRA adapter trains instead, and ``model`` ends with it merged (``model_adapter/`` too).
    """
    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    model.to(device)
    data, dropped = encode_pairs(tokenizer, pairs, cfg.max_len)
    if not data:
        raise ValueError("no SFT pairs fit in max_len")
    world = world_size()
    if cfg.batch_size % world:
        raise UserError(f"config key 'batch_size' ({cfg.batch_size}) must divide evenly over {world} ranks")
    # under torchrun every rank needs rows in every step: the last incomplete batch is dropped there
    steps_per_epoch = (len(data) + cfg.batch_size - 1) // cfg.batch_size if world == 1 else len(data) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    model = attach_lora(model, cfg.lora)  # in place; unchanged without lora.r
    shard(model, cfg.parallel)  # before the optimizer: it holds the sharded parameters (a no-op for DDP)
    opt = make_optimizer(model, cfg.lora.lr_or(cfg.lr), cfg.weight_decay, kind=cfg.optimizer)
    logger = MetricLogger(out_dir / "metrics.jsonl")
    ckpt = Checkpointer(out_dir / "checkpoints", keep=1)
    start = resume_latest(ckpt, model, opt, logger, label="sft")["step"]
    logger.track(cfg.report_to, cfg, start)
    print0(f"sft: {len(data)} pairs ({dropped} longer than {cfg.max_len} dropped), {cfg.epochs} epochs, {total} steps")
    t0 = time.time()
    model.train()
    train_model = wrap(model, cfg.parallel)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    loss_val = float("nan")
    with StopFlag() as stop, contextlib.closing(logger):  # trackers closed (flushed) however the run ends
        for step in range(start, total):
            epoch, k = divmod(step, steps_per_epoch)
            order = list(range(len(data)))
            random.Random(cfg.seed * 1009 + epoch).shuffle(order)  # a function of the epoch: resumable
            idx = order[k * cfg.batch_size : (k + 1) * cfg.batch_size][rank():: world]  # this rank's rows
            batch = build_batch([data[i][0] for i in idx], [data[i][1] for i in idx], pad).to(device)
            set_lr(opt, lr_at(step, total, cfg.lora.lr_or(cfg.lr), cfg.warmup, "cosine", cfg.min_lr_ratio))
            autocast = (lambda: autocast_ctx(device, cfg.precision)) if cfg.precision != "fp32" else None
            lp, _ = response_logprobs(train_model, batch, autocast=autocast)
            # token-mean NLL over the *global* batch: each rank divides its sum by the global token count
            # (times the world size, since DDP averages gradients over ranks)
            nll_B = -(lp * batch.mask).sum(-1)
            nll_sum = nll_B.sum()
            tokens = float(all_reduce_sum(torch.tensor([float(batch.mask.sum())]))[0])
            if cfg.loss_agg == "sequence":  # the same global normalisation, over examples
                per_seq = nll_B / batch.mask.sum(-1).clamp(min=1)
                rows = float(all_reduce_sum(torch.tensor([float(len(idx))]))[0])
                loss = per_seq.sum() * world / max(rows, 1.0)
            else:
                loss = nll_sum * world / max(tokens, 1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = local_norm(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            if torch.isfinite(gnorm):
                opt.step()
            loss_val = float(all_reduce_sum(nll_sum.detach().reshape(1))[0]) / max(tokens, 1.0)
            logger.log({"step": step, "epoch": epoch, "loss": loss_val, "grad_norm": float(gnorm),
                        "lr": opt.param_groups[0]["lr"], "tokens": tokens, "peak_rss_mb": peak_rss_mb()})
            if progress is not None:
                progress(step + 1, total, loss=loss_val)
            done = step + 1
            stopping = any_rank(stop.requested)  # every rank saves (FSDP gathers) and stops together
            if done < total and (stopping or done % cfg.checkpoint_every == 0):
                ckpt.save(done, model, opt)
            if stopping and done < total:
                raise Interrupted(f"stopped after step {done} of {total}; checkpoint in {ckpt.dir}")
    save_trained_model(model, tokenizer, out_dir / "model")  # with LoRA: merged, and model_adapter/
    return {"pairs": len(data), "dropped": dropped, "steps": total, "final_loss": loss_val,
            "seconds": time.time() - t0, "resumed_from": start}
