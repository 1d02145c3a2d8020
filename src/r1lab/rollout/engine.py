"""The native rollout engine: batched sampling over any HF causal LM with a KV cache.

Per chunk of prompts: one prefill of the P distinct prompts (left-padded), then the cache is expanded to
the G samples of each prompt, so a group shares its prompt's prefill. Each decode step samples one token
per live row; rows that finish (EOS, a stop string, or the length limit) leave the batch, and the cache
is compacted with them. Returns per-token log-probabilities of the sampling distribution
(temperature-scaled, before top-p truncation), the convention of vLLM and of the policy-gradient losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from r1lab.models.forward import lm_forward, positions_from_mask


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


def sample_next(logits_RV: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None):
    """Sample one token per row. Returns (tokens_R, logprobs_R) under the temperature-scaled distribution."""
    logits = logits_RV.float()
    if temperature <= 0:  # greedy
        tokens = logits.argmax(-1)
        logprobs = torch.zeros(tokens.shape, dtype=torch.float32, device=logits.device)
        return tokens, logprobs
    logits = logits / temperature
    logprobs_all = torch.log_softmax(logits, dim=-1)
    probs = logprobs_all.exp()
    if top_p < 1.0:
        sorted_p, sorted_idx = probs.sort(dim=-1, descending=True)
        cum = sorted_p.cumsum(-1)
        # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
        drop = (cum - sorted_p) >= top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_p, 1, generator=generator).squeeze(-1)
        tokens = sorted_idx.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
    else:
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logprobs_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


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

    def encode(self, prompts: list[str] | list[list[int]]) -> list[list[int]]:
        if prompts and isinstance(prompts[0], str):
            return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return [list(p) for p in prompts]

    @torch.no_grad()
    def generate(self, prompts: list[str] | list[list[int]], n: int, sampling: SamplingParams) -> list[Rollout]:
        """``n`` samples for each prompt, ordered prompt-major: [p0 s0, p0 s1, ..., p1 s0, ...]."""
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
            for start in range(0, len(prompt_ids), per_chunk):
                chunk = prompt_ids[start : start + per_chunk]
                out.extend(self._generate_chunk(chunk, start, n, sampling, generator))
        finally:
            self.model.train(was_training)
        return out

    def _prefill(self, chunk: list[list[int]]):
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, p in enumerate(chunk):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        logits, cache = self._forward(ids, mask, positions_from_mask(mask), None)
        return logits[:, -1, :], cache, mask

    def _forward(self, ids, mask, pos, cache):
        if self.autocast is not None:
            with self.autocast():
                return lm_forward(self.model, ids, mask, pos, cache, use_cache=True, logits_to_keep=1)
        return lm_forward(self.model, ids, mask, pos, cache, use_cache=True, logits_to_keep=1)

    def _generate_chunk(self, chunk, offset, n, sampling, generator) -> list[Rollout]:
        logits, cache, mask = self._prefill(chunk)
        rows = len(chunk) * n
        if n > 1:  # share each prompt's prefill across its group
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
        next_pos = mask.sum(-1)  # (R,) position id of the next token
        live = torch.arange(rows, device=self.device)  # original row index of each live row
        tokens: list[list[int]] = [[] for _ in range(rows)]
        logps: list[list[float]] = [[] for _ in range(rows)]
        reasons = ["length"] * rows
        stop_tail = max((len(s) for s in sampling.stop), default=0)
        for step in range(sampling.max_new_tokens):
            tok, lp = sample_next(logits, sampling.temperature, sampling.top_p, generator)
            tok_l, lp_l = tok.tolist(), lp.tolist()
            keep = []
            for j, r in enumerate(live.tolist()):
                tokens[r].append(tok_l[j])
                logps[r].append(lp_l[j])
                if tok_l[j] in self.eos_ids:
                    reasons[r] = "eos"
                elif stop_tail and self._hit_stop(tokens[r], sampling.stop, stop_tail):
                    reasons[r] = "stop"
                else:
                    keep.append(j)
                    continue
            if not keep or step == sampling.max_new_tokens - 1:
                break
            if len(keep) < len(live):  # finished rows leave the batch
                idx = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(idx)
                live, tok, mask, next_pos = live[idx], tok[idx], mask[idx], next_pos[idx]
            mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
            logits, cache = self._forward(tok.unsqueeze(1), mask, next_pos.unsqueeze(1), cache)
            logits = logits[:, -1, :]
            next_pos = next_pos + 1
        result = []
        for r in range(rows):
            p = r // n
            text = self.tokenizer.decode(tokens[r], skip_special_tokens=True)
            result.append(Rollout(prompt_index=offset + p, prompt_ids=list(chunk[p]), token_ids=tokens[r],
                                  logprobs=logps[r], finish_reason=reasons[r], text=text))
        return result

    def _hit_stop(self, toks: list[int], stops: tuple[str, ...], tail_chars: int) -> bool:
        # Decode only the last few tokens: enough characters to contain any stop string.
        tail = self.tokenizer.decode(toks[-(tail_chars + 2):], skip_special_tokens=True)
        return any(s in tail for s in stops)


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
