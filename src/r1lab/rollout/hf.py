"""Transformers ``generate`` behind the RolloutEngine call: the reference engine, and the baseline the
native engine is benchmarked against."""

from __future__ import annotations

import torch

from r1lab.rollout.engine import Rollout, SamplingParams, _eos_ids, left_pad


class HFEngine:
    def __init__(self, model, tokenizer, device: torch.device | str = "cpu", max_batch: int = 256, autocast=None):
        self.model, self.tokenizer = model, tokenizer
        self.device = torch.device(device)
        self.max_batch = max_batch
        self.autocast = autocast
        self.eos_ids = _eos_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else sorted(self.eos_ids)[0]

    @torch.no_grad()
    def generate(self, prompts: list[str] | list[list[int]], n: int, sampling: SamplingParams) -> list[Rollout]:
        if prompts and isinstance(prompts[0], str):
            prompt_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        else:
            prompt_ids = [list(p) for p in prompts]
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        per_chunk = max(1, self.max_batch // max(n, 1))
        out = []
        for start in range(0, len(prompt_ids), per_chunk):
            out.extend(self._chunk(prompt_ids[start : start + per_chunk], start, n, sampling))
        return out

    def _chunk(self, chunk, offset, n, sampling):
        ids, mask = left_pad(chunk, self.pad_id)
        greedy = sampling.temperature <= 0
        kwargs = dict(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
            max_new_tokens=sampling.max_new_tokens, do_sample=not greedy, num_return_sequences=n,
            return_dict_in_generate=True, output_logits=True, pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
        )
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        if self.autocast is not None:
            with self.autocast():
                gen = self.model.generate(**kwargs)
        else:
            gen = self.model.generate(**kwargs)
        new = gen.sequences[:, ids.shape[1]:].cpu()
        logits = torch.stack(gen.logits, dim=1).float().cpu()  # (R, T, V) raw logits
        temp = sampling.temperature if not greedy else 1.0
        lps = torch.log_softmax(logits / temp, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        result = []
        for r in range(new.shape[0]):
            toks, reason = [], "length"
            for t, tok in enumerate(new[r].tolist()):
                toks.append(tok)
                if tok in self.eos_ids:
                    reason = "eos"
                    break
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
            if reason == "length" and sampling.stop and any(s in text for s in sampling.stop):
                reason = "stop"
            p = r // n
            result.append(Rollout(prompt_index=offset + p, prompt_ids=list(chunk[p]), token_ids=toks,
                                  logprobs=lps[r, : len(toks)].tolist(), finish_reason=reason, text=text))
        return result
