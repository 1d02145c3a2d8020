"""Llama-family models computed from their own modules, for the two hot paths HF's forward serves badly.

The rollout engine's decoder (``r1lab.rollout.engine``) and the training forward below share what it
means to be "Llama-like" (``llama_like``) and the per-layer computations (``qkv_rotary``,
``mlp_residual``: q, k, v as one matmul, rotary for q and k in one pass, gate/up as one matmul). Both
call the model's own submodules and weights, so biases, q/k norms (Qwen3) and rope scaling are the
model's; only the data layout and the attention are ours.

Training forward (``grouped_forward``): GRPO batches are G responses to each of P prompts. HF's forward
on a padded (B, prompt + response) batch computes every prompt G times and every response padded to
the longest; r1lab's packed layout (``train.batch.pack_by_prompt``) removes the repeats but still pads
packed rows, and needs a block attention mask that CPU SDPA handles slowly. Here every projection and
MLP runs on the flat list of real tokens (each prompt once, each response once, no padding); attention
runs per prompt (causal) and per response bucket (rows sorted by length, each row attending to its
prompt's keys and causally to its own tokens, padded to the bucket's longest row). On the first step of
the GRPO benchmark (8 prompts x 8 samples, 64 new tokens, the tiny default model) the linear layers see
2,737 tokens instead of 4,066 packed slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from r1lab.models.lora import linear_bias, linear_weight, lora_dropout_active

FAST_CLASSES = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"}
TABLE_ROPE = {"default", "linear", "llama3", "yarn"}  # rope types whose cos/sin depend on the position only

# Attention scores (and their softmax) are materialised per layer: above this many elements summed over
# heads and layers, callers take the packed path instead (see ``grouped_fits``).
GRID_MAX_SCORE_ELEMENTS = 96 * 2**20


def llama_like(model) -> bool:
    """True for the Llama-family models computed exactly here (full attention on every layer); their
    sequence-classification versions (a reward model: the same inner model, a scalar head) count too."""
    name = type(model).__name__.removeprefix("FSDP")  # fully_shard renames the class it shards
    if name.replace("ForSequenceClassification", "ForCausalLM") not in FAST_CLASSES:
        return False
    cfg = model.config
    layer_types = getattr(cfg, "layer_types", None) or []
    if any(t != "full_attention" for t in layer_types):
        return False
    if name == "MistralForCausalLM" and getattr(cfg, "sliding_window", None) is not None:
        return False
    inner = getattr(model, "model", None)
    return all(hasattr(inner, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb"))


def rms_norm(module, x):
    """``module(x)`` for an HF RMSNorm, as one fused op when that is exact: fp32 input and weight (HF
    computes in fp32; measured bitwise equal, 10 us instead of 15 a call on a decode step)."""
    w = getattr(module, "weight", None)
    eps = getattr(module, "variance_epsilon", None)
    if (eps is None or w is None or x.dtype != torch.float32 or w.dtype != torch.float32
            or not type(module).__name__.endswith("RMSNorm")):
        return module(x)
    return F.rms_norm(x, (x.shape[-1],), w, eps)


def rotate_half(x):
    """HF's rotary helper, (-x2, x1): the reference ``sign_folded`` is checked against."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


RESPONSE_BUCKETS = 4  # response rows are sorted by length and cut into this many attention buckets


@dataclass
class ResponseBucket:
    """Response rows of similar length: their queries attend to their prompt's keys, then causally to
    their own tokens. Padding is to the bucket's longest row, not the batch's."""

    idx: torch.Tensor     # (n, W + Rk) flat index of each row's keys: its prompt, then its own tokens
                          #   (0 on padding); its queries are the last Rk
    bias: torch.Tensor    # (n, 1, Rk, W + Rk) 0 where a query may attend, -inf elsewhere

    @property
    def width(self) -> int:
        return self.bias.shape[2]


@dataclass
class GroupedLayout:
    """Where each real token of a batch of (prompt, response) rows lives: flat (for projections and MLPs)
    and for attention. Rows with the same prompt that follow each other form a group; each group's
    prompt is computed once."""

    ids: torch.Tensor           # (N,) every real token once: the P prompts, then every response
    positions: torch.Tensor     # (N,) rotary positions (a response continues its prompt)
    prompt_idx: torch.Tensor    # (P, W) flat index of prompt token j of group p (0 on padding)
    prompt_bias: torch.Tensor   # (P, 1, W, W) 0 where a prompt query may attend, -inf elsewhere
    buckets: list               # [ResponseBucket]
    gather_idx: torch.Tensor    # cat(prompt_idx, each bucket's idx), flattened: one gather a layer
    inv_idx: torch.Tensor       # (N,) where flat token n sits in cat(prompt grid, bucket 0, bucket 1, ...)
    pred: torch.Tensor          # (M,) flat index of the hidden state that predicts response token m
    target: torch.Tensor        # (M,) its token id
    out_b: torch.Tensor         # (M,) its row in the batch
    out_t: torch.Tensor         # (M,) its column in the response

    @property
    def score_elements(self) -> int:
        """Attention scores per head and layer (what the grid path materialises)."""
        P, W = self.prompt_idx.shape
        return P * W * W + sum(b.idx.shape[0] * b.width * b.idx.shape[1] for b in self.buckets)


def grouped_layout(input_ids: torch.Tensor, attention: torch.Tensor, response: torch.Tensor,
                   n_buckets: int = RESPONSE_BUCKETS) -> GroupedLayout | None:
    """The layout of a batch in r1lab's training format (left-padded prompts of width ``W0`` followed by
    right-padded responses of width R). None when some row has an empty prompt (nothing predicts its
    first token)."""
    dev = input_ids.device
    B, R = response.shape
    W0 = input_ids.shape[1] - R
    pmask = attention[:, :W0].bool()
    plen = pmask.sum(1)
    rlen = attention[:, W0:].sum(1)
    if B == 0 or W0 == 0 or int(plen.min()) == 0:
        return None
    new = torch.ones(B, dtype=torch.bool, device=dev)
    if B > 1:  # a row starts a new group unless its prompt equals the previous row's
        same = (plen[1:] == plen[:-1]) & ((input_ids[1:, :W0] == input_ids[:-1, :W0]) | ~pmask[1:]).all(-1)
        new[1:] = ~same
    gid = new.long().cumsum(0) - 1
    starts = new.nonzero().squeeze(-1)
    P = len(starts)
    gplen = plen[starts]
    W = int(gplen.max())
    ar_W, ar_R = torch.arange(W, device=dev), torch.arange(R, device=dev)

    # prompts, right-aligned in the batch, go to the left of their grid row
    p_valid = ar_W[None, :] < gplen[:, None]                                    # (P, W)
    col = (W0 - gplen[:, None] + ar_W[None, :]).clamp(max=W0 - 1)
    p_ids = input_ids[starts].gather(1, col)
    p_off = gplen.cumsum(0) - gplen
    n_prompt = int(gplen.sum())
    r_valid = ar_R[None, :] < rlen[:, None]                                     # (B, R)
    r_off = n_prompt + rlen.cumsum(0) - rlen

    ids = torch.cat([p_ids[p_valid], response[r_valid]])
    positions = torch.cat([ar_W.expand(P, W)[p_valid], (gplen[gid][:, None] + ar_R[None, :])[r_valid]])
    prompt_idx = torch.where(p_valid, p_off[:, None] + ar_W[None, :], 0)
    neg = float("-inf")
    causal_W = torch.ones(W, W, dtype=torch.bool, device=dev).tril_()
    # a padding query still sees key 0 (a real token), so no softmax row is empty
    prompt_bias = torch.zeros((P, 1, W, W), device=dev).masked_fill_(~(causal_W & p_valid[:, None, :])[:, None], neg)

    # response rows by length, in buckets of about equal row counts
    nonempty = (rlen > 0).nonzero().squeeze(-1)
    by_len = nonempty[torch.argsort(rlen[nonempty], stable=True)]
    row_base = torch.zeros(B, dtype=torch.long, device=dev)
    base = P * W
    buckets = []
    for rows in torch.tensor_split(by_len, min(n_buckets, len(by_len))) if len(by_len) else []:
        n, Rk = len(rows), int(rlen[rows].max())
        ar = torch.arange(Rk, device=dev)
        valid = ar[None, :] < rlen[rows][:, None]                                # (n, Rk)
        idx = torch.cat([prompt_idx[gid[rows]], torch.where(valid, r_off[rows][:, None] + ar[None, :], 0)], dim=1)
        own_ok = torch.ones(Rk, Rk, dtype=torch.bool, device=dev).tril_()[None] & valid[:, None, :]
        ok = torch.cat([p_valid[gid[rows]][:, None, :].expand(n, Rk, W), own_ok], dim=-1)
        bias = torch.zeros((n, 1, Rk, W + Rk), device=dev).masked_fill_(~ok[:, None], neg)
        buckets.append(ResponseBucket(idx, bias))
        row_base[rows] = base + torch.arange(n, device=dev) * Rk
        base += n * Rk
    grid_p = torch.arange(P * W, device=dev).view(P, W)
    inv_idx = torch.cat([grid_p[p_valid], (row_base[:, None] + ar_R[None, :])[r_valid]])

    out_b, out_t = r_valid.nonzero(as_tuple=True)
    last_prompt = (p_off + gplen - 1)[gid]                                       # (B,)
    pred = torch.where(out_t == 0, last_prompt[out_b], r_off[out_b] + out_t - 1)
    gather_idx = torch.cat([prompt_idx.reshape(-1)] + [b.idx.reshape(-1) for b in buckets])
    return GroupedLayout(ids, positions, prompt_idx, prompt_bias, buckets, gather_idx, inv_idx,
                         pred, response[out_b, out_t], out_b, out_t)


class _GridAttention(torch.autograd.Function):
    """Attention of every real token of a grouped layout, from q, k, v stacked per token (N, H + 2 Hk, D)
    -> (N, H * D), with a hand-written backward.

    Forward: one gather (``index_select``) lays out the prompts and every bucket's rows (their prompt's
    tokens, then their own) at once; each block's queries, keys and values are copied head-major once;
    a query head group shares its kv head's matmul (GQA without expanding k and v); block outputs are
    written into one buffer, then put back in token order. Backward: each block's gradients are written
    straight into one buffer laid out like the gather, which one ``index_add_`` returns to the tokens.
    Autograd's own backward of the same forward concatenated the q/k/v gradients of every block, then all
    blocks, and zero-filled the unused queries of the buckets' prompt rows: a copy of the gathered tensor
    more per layer (forward + backward of the GRPO benchmark's steps: 3-5 ms faster of ~155 ms)."""

    @staticmethod
    def forward(ctx, qkv, lay, H: int, Hk: int, scaling: float):
        N, C, D = qkv.shape
        rep = H // Hk
        blocks = [(lay.prompt_idx.shape[0], lay.prompt_idx.shape[1], lay.prompt_bias)]
        blocks += [(b.idx.shape[0], b.idx.shape[1], b.bias) for b in lay.buckets]
        g = qkv.index_select(0, lay.gather_idx)                                    # (S, C, D)
        out = qkv.new_empty(sum(n * bias.shape[2] for n, _, bias in blocks), H * D)
        saved, s0, o0 = [], 0, 0
        for n, L, bias in blocks:
            Tq = bias.shape[2]
            x = g[s0 : s0 + n * L].view(n, L, C, D)
            # head-major copies: (n * Hk, rep * Tq, D) queries (query head h reads kv head h // rep), (n * Hk, L, D) k, v
            q = x[:, L - Tq :, :H].reshape(n, Tq, Hk, rep, D).permute(0, 2, 3, 1, 4).reshape(n * Hk, rep * Tq, D)
            k = x[:, :, H : H + Hk].transpose(1, 2).reshape(n * Hk, L, D)
            v = x[:, :, H + Hk :].transpose(1, 2).reshape(n * Hk, L, D)
            s = torch.bmm(q, k.transpose(1, 2)).mul_(scaling).view(n, Hk, rep, Tq, L)
            s = s.add_(bias.unsqueeze(2)) if s.dtype == bias.dtype else s + bias.unsqueeze(2)
            p = torch.softmax(s, dim=-1, dtype=torch.float32)
            o = torch.bmm(p.to(v.dtype).view(n * Hk, rep * Tq, L), v)
            out[o0 : o0 + n * Tq].view(n, Tq, Hk, rep, D).copy_(o.view(n, Hk, rep, Tq, D).permute(0, 3, 1, 2, 4))
            saved.append((q, k, v, p))
            s0, o0 = s0 + n * L, o0 + n * Tq
        ctx.lay, ctx.dims, ctx.blocks = lay, (N, C, D, H, Hk, scaling, g.shape[0], out.shape[0]), saved
        return out.index_select(0, lay.inv_idx)

    @staticmethod
    def backward(ctx, grad_out):
        lay = ctx.lay
        N, C, D, H, Hk, scaling, S, Q = ctx.dims
        rep = H // Hk
        with torch.autocast(grad_out.device.type, enabled=False):
            g_out = grad_out.new_zeros(Q, H * D).index_copy_(0, lay.inv_idx, grad_out)
            grad_g = grad_out.new_empty(S, C, D)
            s0 = o0 = 0
            for q, k, v, p in ctx.blocks:
                n = q.shape[0] // Hk
                Tq, L = p.shape[-2], p.shape[-1]
                dout = (g_out[o0 : o0 + n * Tq].view(n, Tq, Hk, rep, D).permute(0, 2, 3, 1, 4)
                        .reshape(n * Hk, rep * Tq, D).to(v.dtype))
                pv = p.to(v.dtype).view(n * Hk, rep * Tq, L)
                dv = torch.bmm(pv.transpose(1, 2), dout)                                  # (n * Hk, L, D)
                dp = torch.bmm(dout, v.transpose(1, 2)).view(p.shape).float()
                ds = torch._softmax_backward_data(dp, p, -1, torch.float32)
                ds = ds.to(q.dtype).mul_(scaling).view(n * Hk, rep * Tq, L)
                dq = torch.bmm(ds, k)                                                     # (n * Hk, rep * Tq, D)
                dk = torch.bmm(ds.transpose(1, 2), q)                                     # (n * Hk, L, D)
                x = grad_g[s0 : s0 + n * L].view(n, L, C, D)
                x[:, L - Tq :, :H].view(n, Tq, Hk, rep, D).copy_(dq.view(n, Hk, rep, Tq, D).permute(0, 3, 1, 2, 4))
                if Tq < L:  # a bucket's prompt rows: keys and values only
                    x[:, : L - Tq, :H].zero_()
                x[:, :, H : H + Hk].copy_(dk.view(n, Hk, L, D).transpose(1, 2))
                x[:, :, H + Hk :].copy_(dv.view(n, Hk, L, D).transpose(1, 2))
                s0, o0 = s0 + n * L, o0 + n * Tq
            grad_qkv = grad_g.new_zeros(N, C, D).index_add_(0, lay.gather_idx, grad_g)
        ctx.blocks = None
        return grad_qkv, None, None, None, None


def _grid_attention(qkv, lay: GroupedLayout, H: int, Hk: int, scaling: float) -> torch.Tensor:
    """Attention of every real token, from q, k, v stacked per token: ``qkv`` (N, H + 2 Hk, D) -> (N, H * D)."""
    return _GridAttention.apply(qkv, lay, H, Hk, scaling)


def grouped_forward(model, lay: GroupedLayout) -> torch.Tensor:
    """Final hidden states (M, hidden) of the positions that predict the response tokens (``lay.pred``),
    with the model's own modules; gradients flow as through the model's forward."""
    inner = model.model
    cfg = model.config
    x = inner.embed_tokens(lay.ids)
    cos, sin = inner.rotary_emb(x[None], lay.positions[None])
    cos, sin = cos[0][:, None, :], sin[0][:, None, :]                           # (N, 1, D)
    layers = list(inner.layers)
    H = cfg.num_attention_heads
    Hk = getattr(cfg, "num_key_value_heads", None) or H
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    sin = sign_folded(sin)
    for i, layer in enumerate(layers):
        # fused weights are rebuilt every forward: gradients flow back to the model's own parameters
        qk, v = qkv_rotary(layer, x, *fused_qkv(layer.self_attn), cos, sin, H, Hk, D)
        out = _grid_attention(torch.cat([qk, v], dim=1), lay, H, Hk, layer.self_attn.scaling)
        if i == len(layers) - 1:  # only the predicting positions go on: the last layer's output projection
            x, out = x.index_select(0, lay.pred), out.index_select(0, lay.pred)  # and MLP skip the others
        x = mlp_residual(layer, x, out, fused_gate_up(layer.mlp))
    return rms_norm(inner.norm, x)


def qkv_rotary(layer, x, wqkv, bqkv, cos, sin, H: int, Hk: int, D: int):
    """One layer's queries and keys, rotated and stacked (..., H + Hk, D), and values (..., Hk, D), from
    hidden states (..., hidden): normed, projected by the stacked q/k/v weights (``fused_qkv``), q/k-normed
    where the model has that (Qwen3), rotary applied to q and k at once (``sin`` from ``sign_folded``;
    ``cos`` and ``sin`` broadcast over the heads dimension). Splits, never slices: see _grid_attention."""
    attn = layer.self_attn
    qkv = F.linear(rms_norm(layer.input_layernorm, x), wqkv, bqkv)
    qkv = qkv.view(*qkv.shape[:-1], H + 2 * Hk, D)
    if hasattr(attn, "q_norm"):
        q, k, v = qkv.split([H, Hk, Hk], dim=-2)
        qk = torch.cat([attn.q_norm(q), attn.k_norm(k)], dim=-2)
    else:
        qk, v = qkv.split([H + Hk, Hk], dim=-2)
    return qk * cos + torch.roll(qk, D // 2, dims=-1) * sin, v


def mlp_residual(layer, x, attn_out, gate_up=None, o_weight=None, down_weight=None):
    """The rest of a layer after attention: output projection and residual, then the MLP and residual
    (gate and up as one matmul when ``gate_up``, from ``fused_gate_up``, is given; the output and down
    projections by ``o_weight`` / ``down_weight`` when given, the sampler's LoRA effective weights)."""
    o_proj, down_proj = layer.self_attn.o_proj, layer.mlp.down_proj
    x = x + (o_proj(attn_out) if o_weight is None else F.linear(attn_out, o_weight, linear_bias(o_proj)))
    h = rms_norm(layer.post_attention_layernorm, x)
    if gate_up is None:
        return x + layer.mlp(h)
    gate, up = F.linear(h, gate_up).chunk(2, dim=-1)
    act = layer.mlp.act_fn(gate) * up
    return x + (down_proj(act) if down_weight is None else F.linear(act, down_weight, linear_bias(down_proj)))


def sign_folded(sin):
    """sin with its first half negated: ``rotate_half(x) * sin == roll(x, D/2, -1) * sign_folded(sin)``
    exactly (negation is exact), in one roll instead of two slices, a negation and a concatenation."""
    half = sin.shape[-1] // 2
    return torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)


def fused_qkv(attn):
    """(weight, bias) of q, k and v stacked: one matmul instead of three. LoRA layers contribute their
    effective weight W + s B A (``models/lora.py``)."""
    projections = (attn.q_proj, attn.k_proj, attn.v_proj)
    w = torch.cat([linear_weight(m) for m in projections])
    if linear_bias(attn.q_proj) is None:
        return w, None
    return w, torch.cat([linear_bias(m) for m in projections])


def fused_gate_up(mlp):
    """Gate and up projections stacked, for the standard gated MLP without biases; else None."""
    if not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        return None
    if linear_bias(mlp.gate_proj) is not None or linear_bias(mlp.up_proj) is not None:
        return None
    return torch.cat([linear_weight(mlp.gate_proj), linear_weight(mlp.up_proj)])


def grouped_fits(model, lay: GroupedLayout | None) -> bool:
    """Whether the attention scores of ``lay`` over all heads and layers stay under
    ``GRID_MAX_SCORE_ELEMENTS`` (else callers take the packed path, which leaves attention to SDPA)."""
    cfg = model.config
    return lay is not None and lay.score_elements * cfg.num_attention_heads * cfg.num_hidden_layers <= GRID_MAX_SCORE_ELEMENTS


def grouped_ok(model) -> bool:
    """Whether ``grouped_forward`` computes this model exactly: Llama-like, and no attention or LoRA dropout
    while training (the grid attention has none; fused projections apply one effective weight)."""
    return (llama_like(model) and not (model.training and float(getattr(model.config, "attention_dropout", 0.0)) > 0)
            and not lora_dropout_active(model))
