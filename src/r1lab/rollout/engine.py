"""The native rollout engine: batched sampling over any HF causal LM with a KV cache.

Per chunk of prompts: one prefill of the P distinct prompts (left-padded), whose cache the G samples of
each prompt then share. Each decode step samples one token per live row; rows that finish (EOS, a stop
string, or the length limit) leave the batch, and the cache is compacted with them. Returns per-token log-probabilities of the sampling distribution
(temperature-scaled, before top-p truncation), the convention of vLLM and of the policy-gradient losses.

Speed (profiled on CPU with py-spy and the torch profiler; benchmarks/rollout_speed.py compares it with
transformers ``generate``):

- Llama-family models (Llama, Mistral without a sliding window, Qwen2, Qwen3) decode through
  ``_LlamaDecoder``: the model's own modules on a preallocated KV cache instead of a DynamicCache that
  concatenates every step. Its prompt keys/values are shared by the group on a (prompt, sample) grid, so
  decode attention, which is bound by memory bandwidth on CPU, reads each prompt once instead of G times.
  Small caches also keep a copy of the prompt in each row, for one fused attention call a layer when few
  rows are live (per-operation overhead dominates there); from ``GRID_MIN_ROWS`` live rows on, the grid.
  Finished rows leave by swap-remove (live rows from the tail fill their slots: a compaction copies as
  many rows as finished). Other models run through ``_HFDecoder`` (the model's forward, DynamicCache).
- Sampling draws one uniform per row (inverse CDF) instead of one random number per vocabulary entry
  (``torch.multinomial``), and top-p is rejection sampling against the nucleus test with an exact sort
  only for rows that miss twice: multinomial and a full-vocabulary sort cost more than a model step.
- Bookkeeping stays in tensors (one ``.tolist()`` per generation, not per step); stop strings are checked
  only for rows whose new token can end one (a per-vocabulary table).
- Under CPU autocast only the projections run in bf16 (attention over the fp32 cache measured faster).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

import torch

from r1lab.models.forward import lm_forward, positions_from_mask
from r1lab.models.llama import (TABLE_ROPE, fused_gate_up, fused_qkv, llama_like, mlp_residual, qkv_rotary, rms_norm,
                                sign_folded)
from r1lab.models.lora import linear_weight, lora_active
from r1lab.runtime.fsdp import full_weights

# Top-p: rejection rounds before the exact (sorting) fallback; each round accepts with prob >= top_p.
_NUCLEUS_ROUNDS = 2
# Decode caches up to this size copy each prompt's keys/values into its rows (see _LlamaDecoder.prefill).
ROW_CACHE_BYTES = 64 * 2**20
# Small caches: while at least this many rows are live, decode attention over the prompts runs on the
# (prompt, sample) grid from the shared prompt cache (see _LlamaDecoder.step)
GRID_MIN_ROWS = 48
_SDPA_GQA = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5)  # SDPA's enable_gqa
_REASONS = ("length", "eos", "stop")


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Rollout:
    prompt_index: int
    prompt_ids: list[int]
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "eos", "stop" or "length"
    text: str = ""
    meta: dict = field(default_factory=dict)


def _inverse_cdf(weights_RV: torch.Tensor, generator) -> torch.Tensor:
    """One draw per row from unnormalised non-negative weights: a single uniform per row (inverse CDF)."""
    cum = weights_RV.cumsum(-1, dtype=torch.float64 if weights_RV.shape[-1] > 4096 else weights_RV.dtype)
    total = cum[:, -1:]
    u = torch.rand(cum.shape[0], 1, generator=generator, device=cum.device, dtype=cum.dtype)
    idx = torch.searchsorted(cum, u * total, right=True)
    # rounding can put u * total at the very end: never return a zero-weight token past the last positive one
    return torch.minimum(idx, (cum < total).sum(-1, keepdim=True)).squeeze(-1)


def _outside_nucleus(weights_RV, tokens_R, top_p: float) -> torch.Tensor:
    """True where the mass of tokens strictly more probable than the drawn one already reaches top_p."""
    w_tok = weights_RV.gather(-1, tokens_R.unsqueeze(-1))
    above = (weights_RV * (weights_RV > w_tok)).sum(-1)
    return above >= top_p * weights_RV.sum(-1)


def _nucleus_sample(weights_RV, tokens_R, top_p: float, generator) -> torch.Tensor:
    """Top-p sampling by rejection: redraw rows whose token is outside the nucleus (exact: p restricted to
    the nucleus), then sort only the rows still outside after ``_NUCLEUS_ROUNDS`` redraws."""
    bad = _outside_nucleus(weights_RV, tokens_R, top_p)
    for _ in range(_NUCLEUS_ROUNDS):
        if not bool(bad.any()):
            return tokens_R
        rows = bad.nonzero().squeeze(-1)
        w = weights_RV[rows]
        new = _inverse_cdf(w, generator)
        tokens_R[rows] = new
        bad[rows] = _outside_nucleus(w, new, top_p)
    if bool(bad.any()):
        rows = bad.nonzero().squeeze(-1)
        sorted_w, sorted_idx = weights_RV[rows].sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
        drop = (sorted_w.cumsum(-1) - sorted_w) >= top_p * sorted_w.sum(-1, keepdim=True)
        choice = _inverse_cdf(sorted_w.masked_fill(drop, 0.0), generator)
        tokens_R[rows] = sorted_idx.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
    return tokens_R


def sample_next(logits_RV: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None):
    """Sample one token per row. Returns (tokens_R, logprobs_R) under the temperature-scaled distribution
    (before top-p truncation); greedy (temperature <= 0) returns logprobs 0."""
    logits = logits_RV.float()
    if temperature <= 0:  # greedy
        tokens = logits.argmax(-1)
        return tokens, torch.zeros(tokens.shape, dtype=torch.float32, device=logits.device)
    if temperature != 1.0:
        logits = logits / temperature
    peak = logits.amax(-1, keepdim=True)
    weights = (logits - peak).exp_()  # unnormalised probabilities, max 1
    tokens = _inverse_cdf(weights, generator)
    if top_p < 1.0:
        tokens = _nucleus_sample(weights, tokens, top_p, generator)
    # log p = logit - logsumexp = (logit - peak) - log(sum weights): a gather, no (R, V) log-softmax
    log_z = weights.sum(-1).log()
    return tokens, logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - peak.squeeze(-1) - log_z


class _HFDecoder:
    """Any HF causal LM through its forward and a DynamicCache (the fallback decoder)."""

    def __init__(self, model):
        self.model = model

    def prefill(self, ids_PW, mask_PW, n: int, max_new: int) -> torch.Tensor:
        logits, self.cache = lm_forward(self.model, ids_PW, mask_PW, positions_from_mask(mask_PW), None,
                                        use_cache=True, logits_to_keep=1)
        self.mask = mask_PW
        if n > 1:  # share each prompt's prefill across its group
            self.cache.batch_repeat_interleave(n)
            self.mask = mask_PW.repeat_interleave(n, dim=0)
            logits = logits.repeat_interleave(n, dim=0)
        return logits[:, -1, :]

    def step(self, tok_R, pos_R) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(tok_R), 1))], dim=1)
        logits, self.cache = lm_forward(self.model, tok_R.unsqueeze(1), self.mask, pos_R.unsqueeze(1), self.cache,
                                        use_cache=True, logits_to_keep=1)
        return logits[:, -1, :]

    def select(self, keep_R) -> None:
        self.cache.batch_select_indices(keep_R)
        self.mask = self.mask[keep_R]


class _LlamaDecoder:
    """A Llama-family model's own modules on a preallocated KV cache, with the prompt cache shared by a group.

    The G samples of a prompt attend to one copy of its prompt keys/values (P, kv_heads, W, head_dim):
    their queries are laid out on a (prompt, sample) grid, so the prompt part of attention reads each
    prompt once per step instead of G times (decode attention is memory-bound on CPU: it streams the cache
    from DRAM every step). Generated tokens go to a per-row cache (layers, 2, R, kv_heads, max_new,
    head_dim) taken from a buffer the engine keeps across calls (a fresh multi-MB tensor costs page faults,
    measured at 10x a copy into a reused one). Finished rows leave by swap-remove: live rows from the tail
    move into their slots, so a compaction copies as many rows as finished, not the whole cache.
    """

    def __init__(self, model, buffer: dict):
        self.model, self.inner, self.buffer = model, model.model, buffer
        cfg = model.config
        self.layers = list(self.inner.layers)
        self.heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.rep = self.heads // self.kv_heads
        self.scaling = self.layers[0].self_attn.scaling
        self.qk_norm = hasattr(self.layers[0].self_attn, "q_norm")
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        self.rope_table = (rope.get("rope_type", rope.get("type", "default")) or "default") in TABLE_ROPE

    def _fuse_weights(self) -> None:
        """Per layer: q, k, v projections as one matrix, and gate/up as one (fewer, wider matmuls; a decode
        step's cost on CPU is mostly per-operation overhead). Built per generation, so they follow training.
        Under CPU autocast they are cast once here (autocast caches casts of parameters only)."""
        dtype = None
        if torch.is_autocast_enabled("cpu") and self.inner.embed_tokens.weight.device.type == "cpu":
            dtype = torch.get_autocast_dtype("cpu") if hasattr(torch, "get_autocast_dtype") else torch.bfloat16
        cast = (lambda t: t if t is None or dtype is None else t.to(dtype))  # noqa: E731
        self.fused = []
        for layer in self.layers:
            wqkv, bqkv = fused_qkv(layer.self_attn)
            gu = fused_gate_up(layer.mlp)
            # LoRA output and down projections as one effective weight each (W + s B A, built here once a
            # generation): no adapter matmuls per decoded token; plain layers keep their module call
            o, down = (linear_weight(m) if lora_active(m) else None for m in (layer.self_attn.o_proj, layer.mlp.down_proj))
            self.fused.append((cast(wqkv), cast(bqkv), cast(gu), cast(o), cast(down)))

    def _rope(self, x, pos_BT):
        """cos and sign-folded sin, (B, T, 1, D): ``rotate_half(x) * sin == roll(x, D/2) * sin_signed``."""
        if self.rope_table:
            return self.cos[pos_BT].unsqueeze(2), self.sin_signed[pos_BT].unsqueeze(2)
        cos, sin = self.inner.rotary_emb(x, pos_BT)
        return cos.unsqueeze(2), sign_folded(sin).unsqueeze(2)

    def _qkv(self, i, layer, x_BTd, cos_BT1D, sin_BT1D):
        """Queries (B, H, T, D) and keys, values (B, kv_heads, T, D) of one layer, rotary applied."""
        H = self.heads
        wqkv, bqkv = self.fused[i][:2]
        qk, v = qkv_rotary(layer, x_BTd, wqkv, bqkv, cos_BT1D, sin_BT1D, H, self.kv_heads, self.head_dim)
        # q contiguous: a batch-strided q (a slice of the stacked heads) measured 60% slower in the
        # attention matmuls
        q = qk[:, :, :H].transpose(1, 2).contiguous()
        k, v = qk[:, :, H:].transpose(1, 2), v.transpose(1, 2)
        dtype = self.kv_dtype or k.dtype
        return q, k.to(dtype), v.to(dtype)

    def _finish_layer(self, i, layer, x_BTd, attn_BTE):
        return mlp_residual(layer, x_BTd, attn_BTE, *self.fused[i][2:])

    def _on_grid(self, rows_BKRX, fn):
        """``fn`` over the rows laid out per prompt, (P, kv_heads, G*rep, X), then back to live rows."""
        B, Hk, rep, X = rows_BKRX.shape
        P, G = self.prompts, self.group
        full = B == P * G  # no row has left yet: rows are in grid order
        grid = rows_BKRX if full else rows_BKRX.new_zeros(P * G, Hk, rep, X).index_copy_(0, self.slot, rows_BKRX)
        out = fn(grid.view(P, G, Hk, rep, X).transpose(1, 2).reshape(P, Hk, G * rep, X))
        Y = out.shape[-1]
        out = out.view(P, Hk, G, rep, Y).transpose(1, 2).reshape(P * G, Hk, rep, Y)
        return out if full else out.index_select(0, self.slot)

    def prefill(self, ids_PW, mask_PW, n: int, max_new: int) -> torch.Tensor:
        P, W = ids_PW.shape
        dev = ids_PW.device
        self.prompts, self.group, self.t = P, n, 0
        # Under autocast on CPU only the projections run in bf16: decode attention (matrix-vector products)
        # measured 15% slower in bf16 there, so the cache stays fp32. On GPUs the cache and attention follow
        # the autocast dtype (decode attention is bandwidth-bound: half the bytes).
        self.no_autocast, self.kv_dtype = contextlib.nullcontext, None
        if torch.is_autocast_enabled(dev.type):
            if dev.type == "cpu":
                self.no_autocast = functools.partial(torch.autocast, dev.type, enabled=False)
            elif hasattr(torch, "get_autocast_dtype"):  # torch >= 2.5
                self.kv_dtype = torch.get_autocast_dtype(dev.type)
        self._fuse_weights()
        x = self.inner.embed_tokens(ids_PW)
        if self.rope_table:
            cos, sin = self.inner.rotary_emb(x, torch.arange(W + max_new, device=dev).unsqueeze(0))
            self.cos, self.sin_signed = cos[0], sign_folded(sin[0])
        cos, sin = self._rope(x, positions_from_mask(mask_PW))
        valid = mask_PW.bool()
        causal = torch.ones(W, W, dtype=torch.bool, device=dev).tril_()
        # pad queries see themselves so no softmax row is empty; real queries never see pad keys
        allowed = (causal & valid.unsqueeze(1)) | torch.eye(W, dtype=torch.bool, device=dev)
        bias = torch.zeros((P, 1, 1, W, W), device=dev).masked_fill_(~allowed[:, None, None], float("-inf"))
        self.prompt_kv = []
        Hk, rep, D = self.kv_heads, self.rep, self.head_dim
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(i, layer, x, cos, sin)
            self.prompt_kv.append((k.contiguous(), v.contiguous()))
            scores = torch.matmul(q.reshape(P, Hk, rep * W, D), k.transpose(-1, -2)).mul_(self.scaling)
            probs = torch.softmax(scores.view(P, Hk, rep, W, W) + bias, dim=-1, dtype=torch.float32)
            out = torch.matmul(probs.to(v.dtype).view(P, Hk, rep * W, W), v)
            x = self._finish_layer(i, layer, x, out.view(P, self.heads, W, D).transpose(1, 2).reshape(P, W, -1))
        logits = self.model.lm_head(rms_norm(self.inner.norm, x[:, -1]))
        self.prompt_bias = torch.zeros((P, W), device=dev).masked_fill_(~valid, float("-inf"))
        self.slot = torch.arange(P * n, device=dev)  # grid slot (prompt * n + sample) of each live row
        self.row_bias = self.prompt_bias.repeat_interleave(n, dim=0)[:, None, None, :]
        dtype = self.prompt_kv[0][0].dtype
        # Small caches: each row holds a copy of its prompt's keys/values before its own, and decode
        # attention is one fused SDPA call per layer (measured 18 us vs 111 us for the grid's dozen ops at
        # 12 rows on the tiny default model). Large caches keep the prompt shared on the grid (memory).
        rows, L = P * n, W + max_new
        self.own_prompt = (rows * L * Hk * D * 2 * len(self.layers) * dtype.itemsize <= ROW_CACHE_BYTES
                           and (rep == 1 or _SDPA_GQA))
        self.offset = W if self.own_prompt else 0
        shape = (len(self.layers), 2, rows, Hk, L if self.own_prompt else max_new, D)
        self.kv = self._buffer_view(shape, dtype, dev)
        if self.own_prompt:
            for i, (k, v) in enumerate(self.prompt_kv):
                self.kv[i, 0, :, :, :W] = k.repeat_interleave(n, dim=0)
                self.kv[i, 1, :, :, :W] = v.repeat_interleave(n, dim=0)
            self.row_bias = torch.cat([self.row_bias, self.row_bias.new_zeros(rows, 1, 1, max_new)], dim=-1)
        return logits.repeat_interleave(n, dim=0)

    def _buffer_view(self, shape, dtype, device) -> torch.Tensor:
        numel = 1
        for d in shape:
            numel *= d
        buf = self.buffer.get("kv")
        if buf is None or buf.numel() < numel or buf.dtype != dtype or buf.device != device:
            buf = self.buffer["kv"] = torch.empty(numel, dtype=dtype, device=device)
        return buf[:numel].view(shape)

    def step(self, tok_R, pos_R) -> torch.Tensor:
        B, t, Hk, rep = len(tok_R), self.t, self.kv_heads, self.rep
        x = self.inner.embed_tokens(tok_R.unsqueeze(1))
        cos, sin = self._rope(x, pos_R.unsqueeze(1))
        W = self.prompt_bias.shape[1]
        end = self.offset + t + 1
        # Many rows: attention over the prompts on the grid reads each prompt's cache once, not once per
        # sample (decode attention is bound by memory bandwidth here). Measured a decode step of the tiny
        # default model, 8 prompts x 8: 1.9 ms against 2.1-2.4 ms at 64 rows, even at 48, slower at 32;
        # 16 x 8: 3.8 against 4.7 ms at 128 rows, 3.1 against 3.7 ms at 96. Large caches have no row copy.
        on_grid = not self.own_prompt or (self.group > 1 and B >= GRID_MIN_ROWS)
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(i, layer, x, cos, sin)
            self.kv[i, 0, :B, :, end - 1] = k[:, :, 0]
            self.kv[i, 1, :B, :, end - 1] = v[:, :, 0]
            with self.no_autocast():
                if on_grid:  # own tokens from the row cache, the prompt from the shared copy
                    out = self._decode_attention(i, q.view(B, Hk, rep, self.head_dim),
                                                 self.kv[i, 0, :B, :, self.offset : end],
                                                 self.kv[i, 1, :B, :, self.offset : end], W)
                else:  # each row's own copy of its prompt, then its tokens: one fused call
                    out = torch.nn.functional.scaled_dot_product_attention(
                        q, self.kv[i, 0, :B, :, :end], self.kv[i, 1, :B, :, :end],
                        attn_mask=self.row_bias[:, :, :, :end], scale=self.scaling, enable_gqa=rep > 1)
            x = self._finish_layer(i, layer, x, out.reshape(B, 1, -1))
        self.t += 1
        return self.model.lm_head(rms_norm(self.inner.norm, x[:, -1]))

    def _decode_attention(self, i, q_BKRD, keys, vals, W):
        """One query per row over its prompt (shared, on the grid) and its own generated tokens."""
        pk, pv = self.prompt_kv[i]
        # keys @ q (a matrix-vector product per row) runs ~25% faster on CPU than q @ keys^T
        own = torch.matmul(keys, q_BKRD.transpose(-1, -2)).transpose(-1, -2)
        shared = self._on_grid(q_BKRD, lambda g: torch.matmul(g, pk.transpose(-1, -2)))
        scores = torch.cat([shared, own], dim=-1).mul_(self.scaling)
        scores[..., :W] += self.row_bias[..., :W]
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(vals.dtype)
        return self._on_grid(probs[..., :W], lambda g: torch.matmul(g, pv)) + torch.matmul(probs[..., W:], vals)

    def select(self, order_R) -> None:
        """Keep rows ``order_R`` (new row i <- old row order_R[i]); rows with order_R[i] == i stay put."""
        n = len(order_R)
        moved = (order_R != torch.arange(n, device=order_R.device)).nonzero().squeeze(-1)
        if len(moved):
            used = self.kv[:, :, :, :, : self.offset + self.t]
            used.index_copy_(2, moved, used.index_select(2, order_R[moved]))
        self.kv = self.kv[:, :, :n]
        self.slot, self.row_bias = self.slot[order_R], self.row_bias[order_R]


class NativeEngine:
    """Batched KV-cache sampler; ``max_batch`` bounds live rows (prompts are chunked to fit)."""

    def __init__(self, model, tokenizer, device: torch.device | str = "cpu", max_batch: int = 256,
                 autocast=None):
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_batch = max_batch
        self.autocast = autocast
        self.eos_ids = _eos_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else sorted(self.eos_ids)[0]
        self.fast = llama_like(model)
        self._tables: dict = {}
        self._buffer: dict = {}  # KV cache storage reused across calls

    def encode(self, prompts: list[str] | list[list[int]]) -> list[list[int]]:
        if prompts and isinstance(prompts[0], str):
            return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return [list(p) for p in prompts]

    @torch.no_grad()  # not inference_mode: rotary variants may update module buffers the trainer later uses
    def generate(self, prompts: list[str] | list[list[int]], n: int, sampling: SamplingParams,
                 on_tokens=None) -> list[Rollout]:
        """``n`` samples for each prompt, ordered prompt-major: [p0 s0, p0 s1, ..., p1 s0, ...].

        ``on_tokens(rows, tokens)``, when given, is called after every decoding step with the rows (indices
        into the returned list) that sampled a token and those tokens, as they are sampled (streaming)."""
        prompt_ids = self.encode(prompts)
        generator = None
        if sampling.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(sampling.seed)
        was_training = self.model.training
        self.model.eval()
        per_chunk = max(1, self.max_batch // max(n, 1))
        out: list[Rollout] = []
        try:
            # one autocast region for the whole generation, so weight casts are cached across steps;
            # an FSDP-sharded model is whole (all-gathered) while it generates
            with (self.autocast() if self.autocast is not None else contextlib.nullcontext()), full_weights(self.model):
                for start in range(0, len(prompt_ids), per_chunk):
                    chunk = prompt_ids[start : start + per_chunk]
                    out.extend(self._generate_chunk(chunk, start, n, sampling, generator, on_tokens))
        finally:
            self.model.train(was_training)
        return out

    def _lookup_tables(self, vocab: int, stops: tuple[str, ...]):
        """(is_eos_V, may_end_stop_V) boolean tables over the model's vocabulary, cached per stop set."""
        key = (vocab, stops, frozenset(self.eos_ids))
        if key not in self._tables:
            eos = torch.zeros(vocab, dtype=torch.bool)
            eos[[i for i in self.eos_ids if 0 <= i < vocab]] = True
            may_stop = None
            if stops:
                may_stop = torch.ones(vocab, dtype=torch.bool)
                # a stop string first appears with the token that adds its last character; whitespace ends and
                # partial UTF-8 pieces are not visible in a token's own text, so those stay always-checked
                if not any(s[-1].isspace() for s in stops):
                    n_tok = min(vocab, len(self.tokenizer))
                    pieces = self.tokenizer.batch_decode([[i] for i in range(n_tok)], skip_special_tokens=True)
                    last = {s[-1] for s in stops}
                    may_stop[:n_tok] = torch.tensor([("\ufffd" in t) or any(c in t for c in last) for t in pieces])
                may_stop = may_stop.to(self.device)
            self._tables[key] = (eos.to(self.device), may_stop)
        return self._tables[key]

    def _prefill_inputs(self, chunk: list[list[int]]):
        ids, mask = left_pad(chunk, self.pad_id)
        return ids.to(self.device), mask.to(self.device)

    def _generate_chunk(self, chunk, offset, n, sampling, generator, on_tokens=None) -> list[Rollout]:
        ids, mask = self._prefill_inputs(chunk)
        decoder = _LlamaDecoder(self.model, self._buffer) if self.fast else _HFDecoder(self.model)
        max_new = sampling.max_new_tokens
        logits = decoder.prefill(ids, mask, n, max_new)
        rows = len(chunk) * n
        is_eos, may_stop = self._lookup_tables(logits.shape[-1], tuple(sampling.stop))
        stop_tail = max((len(s) for s in sampling.stop), default=0)
        pos = mask.sum(-1).repeat_interleave(n)  # (R,) position id of the next token
        live = torch.arange(rows, device=self.device)  # original row of each batch row
        alive = torch.ones(rows, dtype=torch.bool, device=self.device)  # batch rows still generating
        out_tok = torch.full((rows, max_new), self.pad_id, dtype=torch.long, device=self.device)
        out_lp = torch.zeros((rows, max_new), dtype=torch.float32, device=self.device)
        ends = torch.full((rows,), max_new, dtype=torch.long, device=self.device)
        reasons = torch.zeros(rows, dtype=torch.long, device=self.device)  # index into _REASONS
        for step in range(max_new):
            tok, lp = sample_next(logits, sampling.temperature, sampling.top_p, generator)
            out_tok[live, step] = tok
            out_lp[live, step] = lp
            fin = is_eos[tok] & alive
            reasons[live[fin]] = 1
            if may_stop is not None:
                fin |= self._stop_rows(out_tok, live, may_stop[tok] & alive & ~fin, step, sampling.stop,
                                       stop_tail, reasons)
            if on_tokens is not None:  # every row in the batch is live here (finished rows left last step)
                on_tokens([offset * n + r for r in live.tolist()], tok.tolist())
            if bool(fin.any()):
                ends[live[fin]] = step + 1
                alive &= ~fin
            n_alive = int(alive.sum())
            if n_alive == 0 or step == max_new - 1:
                break
            if n_alive < len(live):  # finished rows leave: live rows from the tail fill their slots
                order = _swap_remove_order(alive, n_alive)
                decoder.select(order)
                live, tok, pos, alive = live[order], tok[order], pos[order], alive[order]
            logits = decoder.step(tok, pos)
            pos = pos + 1
        return self._rollouts(chunk, offset, n, out_tok, out_lp, ends, reasons)

    def _stop_rows(self, out_tok, live, cand, step, stops, stop_tail, reasons) -> torch.Tensor:
        """Batch rows whose text now contains a stop string (only ``cand`` rows are decoded)."""
        hit = torch.zeros_like(cand)
        if not bool(cand.any()):
            return hit
        lo = max(0, step + 1 - (stop_tail + 2))
        for j in cand.nonzero().squeeze(-1).tolist():
            r = int(live[j])
            if self._hit_stop(out_tok[r, lo : step + 1].tolist(), stops, stop_tail):
                hit[j] = True
                reasons[r] = 2
        return hit

    def _rollouts(self, chunk, offset, n, out_tok, out_lp, ends, reasons) -> list[Rollout]:
        ends_l, reasons_l = ends.tolist(), reasons.tolist()
        toks = [row[:e] for row, e in zip(out_tok.tolist(), ends_l)]
        lps = [row[:e] for row, e in zip(out_lp.tolist(), ends_l)]
        texts = self.tokenizer.batch_decode(toks, skip_special_tokens=True)
        return [Rollout(prompt_index=offset + r // n, prompt_ids=list(chunk[r // n]), token_ids=toks[r],
                        logprobs=lps[r], finish_reason=_REASONS[reasons_l[r]], text=texts[r])
                for r in range(len(toks))]

    def _hit_stop(self, toks: list[int], stops: tuple[str, ...], tail_chars: int) -> bool:
        # Decode only the last few tokens: enough characters to contain any stop string.
        tail = self.tokenizer.decode(toks[-(tail_chars + 2):], skip_special_tokens=True)
        return any(s in tail for s in stops)


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids, attention mask), both (B, longest), padded on the left (prompts end together)."""
    width = max(len(p) for p in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, p in enumerate(seqs):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids, mask


def _swap_remove_order(alive_R: torch.Tensor, n_alive: int) -> torch.Tensor:
    """Row order that keeps the ``n_alive`` live rows in the first slots, moving as few rows as possible:
    live rows past the first ``n_alive`` slots fill the dead slots before it."""
    order = torch.arange(n_alive, device=alive_R.device)
    holes = (~alive_R[:n_alive]).nonzero().squeeze(-1)
    fillers = alive_R[n_alive:].nonzero().squeeze(-1) + n_alive
    order[holes] = fillers
    return order


def _eos_ids(tokenizer, model) -> set[int]:
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_cfg = getattr(model, "generation_config", None)
    eos = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    return ids
