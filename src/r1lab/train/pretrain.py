"""Pretraining the tiny base model from scratch on the world's corpus (plain next-token prediction)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1lab.models.tiny import tiny_config
from r1lab.models.tokenizer import train_tokenizer
from r1lab.runtime import MetricLogger, autocast_ctx, is_main, pick_device, print0, seed_everything
from r1lab.runtime.checkpoint import Checkpointer, Interrupted, StopFlag, resume_latest
from r1lab.runtime.memory import peak_rss_mb
from r1lab.tasks.corpus import CorpusMix, documents
from r1lab.tasks.templates import join_text
from r1lab.train.schedule import lr_at, make_optimizer, set_lr


@dataclass
class PretrainConfig:
    size: str = "1m"                 # a key of r1lab.models.tiny.SIZES
    vocab_size: int = 1024           # BPE target size (the trainer may stop earlier)
    tokenizer_docs: int = 20000      # documents the tokenizer is trained on
    steps: int = 3000
    batch_size: int = 16             # sequences per step
    seq_len: int = 256               # packed sequence length (documents joined by EOS)
    lr: float = 5e-3
    warmup: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"          # auto | bf16 | fp32
    device: str = "auto"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 250      # steps between checkpoints (also written on SIGINT/SIGTERM)
    mix: CorpusMix = field(default_factory=CorpusMix)
    report_to: list[str] | None = None  # tensorboard, wandb, trackio, mlflow; None: tensorboard when installed

    def validate(self) -> None:
        from r1lab.runtime.tracking import resolve_report_to

        resolve_report_to(self.report_to)


def encode_document(tokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Prompt and response are tokenized separately, exactly as the rollout engine sees them."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(join_text(prompt) + response, add_special_tokens=False)["input_ids"]
    return p, r


def packed_batches(tokenizer, cfg: PretrainConfig, eos_id: int) -> torch.Tensor:
    """All training tokens for ``cfg.steps`` steps as a (steps * batch, seq_len + 1) tensor."""
    need = cfg.steps * cfg.batch_size * cfg.seq_len + 1
    buf: list[int] = []
    docs = documents(10**9, seed=cfg.seed + 1, mix=cfg.mix)
    while len(buf) < need + cfg.seq_len:
        chunk = [next(docs) for _ in range(2000)]
        prompts = tokenizer([d["prompt"] for d in chunk], add_special_tokens=False)["input_ids"]
        resps = tokenizer([join_text(d["prompt"]) + d["response"] for d in chunk], add_special_tokens=False)["input_ids"]
        for p, r in zip(prompts, resps):
            buf.extend(p)
            buf.extend(r)
            buf.append(eos_id)
    rows = cfg.steps * cfg.batch_size
    data = torch.tensor(buf[: rows * cfg.seq_len + 1], dtype=torch.long)
    # overlapping windows of seq_len + 1 so every row has inputs and shifted targets
    starts = torch.arange(rows) * cfg.seq_len
    return torch.stack([data[s : s + cfg.seq_len + 1] for s in starts.tolist()])


def build_tokenizer(cfg: PretrainConfig):
    texts = []
    for d in documents(cfg.tokenizer_docs, seed=cfg.seed, mix=cfg.mix):
        texts.append(d["prompt"])
        texts.append(join_text(d["prompt"]) + d["response"])
    return train_tokenizer(texts, cfg.vocab_size)


def pretrain(cfg: PretrainConfig, out_dir: str | Path, progress=None) -> dict:
    """Train tokenizer and model; save both to ``out_dir/model``. Returns a summary dict.

    Resumable: the tokenizer is saved first (``out_dir/tokenizer``), the packed data is a function of the
    seed, and model + optimizer are checkpointed every ``checkpoint_every`` steps and on SIGINT/SIGTERM.
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    t0 = time.time()
    tok_dir = out_dir / "tokenizer"
    if (tok_dir / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    else:
        tokenizer = build_tokenizer(cfg)
        tokenizer.save_pretrained(str(tok_dir))
    eos_id = tokenizer.eos_token_id
    model_cfg = tiny_config(cfg.size, len(tokenizer), max_positions=max(1024, cfg.seq_len))
    model_cfg.eos_token_id = eos_id
    model_cfg.pad_token_id = eos_id
    model_cfg.bos_token_id = eos_id
    model = LlamaForCausalLM(model_cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print0(f"pretrain: {n_params / 1e6:.2f}M parameters, vocab {len(tokenizer)}, {cfg.steps} steps")
    data = packed_batches(tokenizer, cfg, eos_id)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    logger = MetricLogger(out_dir / "metrics.jsonl")
    ckpt = Checkpointer(out_dir / "checkpoints", keep=1)
    start = resume_latest(ckpt, model, opt, logger, label="pretrain")["step"]
    logger.track(cfg.report_to, cfg, start)
    model.train()
    tokens_seen, t_train = start * cfg.batch_size * cfg.seq_len, time.time()
    loss_val = float("nan")
    with StopFlag() as stop, contextlib.closing(logger):  # trackers closed (flushed) however the run ends
        for step in range(start, cfg.steps):
            set_lr(opt, lr_at(step, cfg.steps, cfg.lr, cfg.warmup, "cosine", cfg.min_lr_ratio))
            batch = data[step * cfg.batch_size : (step + 1) * cfg.batch_size].to(device)
            with autocast_ctx(device, cfg.precision):
                logits = model(input_ids=batch[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                     batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            tokens_seen += batch[:, :-1].numel()
            loss_val = float(loss.detach())
            if progress is not None:
                progress(step + 1, cfg.steps, loss=loss_val)
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                logger.log({"step": step, "loss": loss_val, "grad_norm": float(gnorm), "lr": opt.param_groups[0]["lr"],
                            "tokens": tokens_seen, "tokens_per_s": (tokens_seen - start * cfg.batch_size * cfg.seq_len)
                            / max(time.time() - t_train, 1e-9), "peak_rss_mb": peak_rss_mb()})
            done = step + 1
            if is_main() and done < cfg.steps and (stop.requested or done % cfg.checkpoint_every == 0):
                ckpt.save(done, model, opt)
            if stop.requested and done < cfg.steps:
                raise Interrupted(f"stopped after step {done} of {cfg.steps}; checkpoint in {ckpt.dir}")
    model_dir = out_dir / "model"
    model.save_pretrained(str(model_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(model_dir))
    return {"params": n_params, "vocab": len(tokenizer), "final_loss": loss_val, "tokens": tokens_seen,
            "seconds": time.time() - t0, "resumed_from": start}
