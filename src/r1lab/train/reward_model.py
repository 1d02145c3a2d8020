"""A preference reward model (Bradley–Terry), as R1 uses for general data in its last RL stage.

The RM is the policy's architecture with a scalar head (``AutoModelForSequenceClassification``,
``num_labels=1``), initialised from a language model, trained on (prompt, chosen, rejected) with
-log sigmoid(r_chosen - r_rejected). It reads the question and the response's summary only:
"For helpfulness, we focus exclusively on the final summary" (R1-v1 §2.3.4).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from r1lab.rewards.format import summary_of
from r1lab.runtime import MetricLogger, pick_device, seed_everything


@dataclass
class RewardModelConfig:
    # The tiny world's reward model must tell a right number from a near miss ("307" for "317") to be
    # of use on the policy's own answers. With 4000 generated pairs, 1 epoch (R1's count) at lr 1e-3 it
    # scored 88% on held-out generated pairs but ranked the policy's right answers above its wrong ones
    # only 52% of the time (chance), and the final stage learned to please it (general accuracy 44 -> 37);
    # with 8000 pairs, 5 epochs at lr 3e-4: 99% and 77%, and its top-scored sample of 8 is right 53% of
    # the time against 40% for a random one (measured on a demo's rejection-SFT policy, 200 held-out prompts).
    # Fewer epochs were measured for speed (the stage is ~15% of the demo) and not kept; from one demo's
    # rejection-SFT policy, its own right answers ranked above its wrong ones on 300 held-out general prompts
    # (1,161 pairs) and the top-scored of 8 right: 5 epochs 73.6% / 32.3% (30.5% on average); 3 epochs 74.4% /
    # 31.0%, but the final stage trained on it lost 3.6 points of general accuracy (5 epochs: +1.2); 2
    # epochs 71.2% / 30.3%; 2 epochs at lr 6e-4 60.1% / 28.3%; 2 epochs on 3000 generated + 9,108 on-policy
    # pairs 61.3% / 27.0%.
    train_pairs: int = 8000
    test_pairs: int = 400
    epochs: int = 5
    batch_size: int = 32
    lr: float = 3e-4
    seed: int = 0
    device: str = "auto"


def rm_text(prompt: str, summary: str) -> str:
    return f"User: {prompt}\nAssistant: {summary}"


class RewardModel:
    """Scores (question, response) pairs from the response's summary."""

    def __init__(self, model, tokenizer, device="cpu"):
        self.model, self.tokenizer, self.device = model.to(device).eval(), tokenizer, torch.device(device)

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> "RewardModel":
        from transformers import AutoModelForSequenceClassification

        from r1lab.models.load import check_reward_model, from_pretrained_checked, load_tokenizer

        p = check_reward_model(path)
        tok = load_tokenizer(p, "reward model")
        model = from_pretrained_checked(AutoModelForSequenceClassification, p, "reward model", num_labels=1)
        return cls(model, tok, device)

    def _encode(self, ids: list[list[int]]):
        width = max(len(x) for x in ids)
        pad = self.model.config.pad_token_id
        inp = torch.full((len(ids), width), pad, dtype=torch.long)
        for i, x in enumerate(ids):  # right padding: the head reads the last real token
            inp[i, : len(x)] = torch.tensor(x)
        if all(len(x) == width for x in ids):
            return inp.to(self.device), None, torch.full((len(ids),), width - 1, device=self.device)
        mask = (torch.arange(width)[None, :] < torch.tensor([len(x) for x in ids])[:, None]).long()
        return inp.to(self.device), mask.to(self.device), torch.tensor([len(x) - 1 for x in ids], device=self.device)

    def _scores(self, ids: list[list[int]]) -> torch.Tensor:
        inp, mask, last = self._encode(ids)
        hidden = self.model.model(input_ids=inp, attention_mask=mask).last_hidden_state
        picked = hidden[torch.arange(len(ids), device=self.device), last]
        return self.model.score(picked).squeeze(-1).float()

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Scalar scores (B,), differentiable, in the order of ``texts``.

        The texts run in chunks of similar length (``length_chunks``): the same scores as one right-padded
        batch, without its padding. Preference texts are short and uneven (23-125 tokens, mean 36, on a
        demo's pairs): one padded batch of 64 was half padding."""
        return self._forward_ids([self.tokenizer(t, add_special_tokens=False)["input_ids"][-512:] for t in texts])

    def _forward_ids(self, ids: list[list[int]]) -> torch.Tensor:
        chunks = length_chunks([len(x) for x in ids])
        scores = torch.cat([self._scores([ids[i] for i in chunk]) for chunk in chunks])
        order = torch.tensor([i for chunk in chunks for i in chunk], device=self.device)
        return scores[torch.argsort(order)]

    def pair_scores(self, prompts: list[str], chosen: list[str], rejected: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (differentiable) of ``rm_text(prompt, chosen)`` and ``rm_text(prompt, rejected)`` for each
        pair (the summaries are passed as given). The two texts of a pair share their tokens up to where
        they first differ (the question and more): with r1lab's grouped forward (``models/llama.py``) that
        prefix is computed once and each text's remainder attends to it, as GRPO's responses attend to their
        prompt; on the demo's pairs a third of the tokens. The same scores as ``forward`` on the texts
        (which other models, and pairs with no common first token, take)."""
        from r1lab.models.llama import grouped_fits, grouped_forward, grouped_ok

        texts = [t for p, c, r in zip(prompts, chosen, rejected) for t in (rm_text(p, c), rm_text(p, r))]
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        lay = self._pair_layout(ids) if grouped_ok(self.model) and all(len(x) <= 512 for x in ids) else None
        if lay is None or not grouped_fits(self.model, lay[0]):
            scores = self._forward_ids([x[-512:] for x in ids])
        else:
            lay, last = lay
            scores = self.model.score(grouped_forward(self.model, lay).index_select(0, last)).squeeze(-1).float()
        return scores[0::2], scores[1::2]

    def _pair_layout(self, ids: list[list[int]]):
        """The grouped layout of consecutive (chosen, rejected) token lists: each pair's common prefix as the
        prompt, each text's remainder plus one placeholder token as its response (the hidden state that
        predicts the placeholder is the text's last token's: what the head reads). Also the positions, among
        the forward's outputs, of those states, in row order. None when a pair has no common first token."""
        from r1lab.models.llama import grouped_layout

        pad = self.model.config.pad_token_id
        pad = 0 if pad is None else pad
        rows = []
        for a, b in zip(ids[0::2], ids[1::2]):
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            if n == 0:
                return None
            rows += [(a[:n], a[n:] + [pad]), (b[:n], b[n:] + [pad])]
        W0, R = max(len(p) for p, _ in rows), max(len(r) for _, r in rows)
        inp = torch.full((len(rows), W0 + R), pad, dtype=torch.long)
        att = torch.zeros((len(rows), W0 + R), dtype=torch.long)
        for i, (p, r) in enumerate(rows):  # prompts left-padded, responses right-padded
            inp[i, W0 - len(p): W0], att[i, W0 - len(p): W0] = torch.tensor(p), 1
            inp[i, W0: W0 + len(r)], att[i, W0: W0 + len(r)] = torch.tensor(r), 1
        lay = grouped_layout(inp.to(self.device), att.to(self.device), inp[:, W0:].to(self.device))
        if lay is None:
            return None
        rlen = att[:, W0:].sum(1).to(self.device)
        last = (lay.out_t == rlen[lay.out_b] - 1).nonzero().squeeze(-1)  # row-major: rows in order
        return lay, last

    @torch.no_grad()
    def score(self, prompts: list[str], responses: list[str], batch_size: int = 64) -> list[float]:
        texts = [rm_text(p, summary_of(r)) for p, r in zip(prompts, responses)]
        out = []
        for s in range(0, len(texts), batch_size):
            out.extend(self.forward(texts[s : s + batch_size]).tolist())
        return out


def length_chunks(lengths: list[int], waste: float = 0.15, min_rows: int = 8) -> list[list[int]]:
    """Indices of ``lengths`` grouped by length (shortest first) so that padding each group to its longest
    wastes at most ``waste`` of its slots; a group takes at least ``min_rows`` rows (small matmuls are slow)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    cur: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]  # sorted: n is the group's longest if added
        if len(cur) >= min_rows and (real + n) < (1 - waste) * n * (len(cur) + 1):
            chunks.append(cur)
            cur, real = [], 0
        cur.append(i)
        real += n
    if cur:
        chunks.append(cur)
    return chunks


def pair_accuracy(rm: RewardModel, pairs: list[dict]) -> float:
    """Share of pairs where the chosen response scores above the rejected one."""
    if not pairs:
        return float("nan")
    right = 0
    with torch.no_grad():
        for s in range(0, len(pairs), 64):
            batch = pairs[s: s + 64]
            c, r = rm.pair_scores([p["prompt"] for p in batch], [summary_of(p["chosen"]) for p in batch],
                                  [summary_of(p["rejected"]) for p in batch])
            right += int((c > r).sum())
    return right / len(pairs)


def train_reward_model(cfg: RewardModelConfig, init_dir: str | Path, train: list[dict], test: list[dict],
                       out_dir: str | Path, progress=None) -> dict:
    """Bradley–Terry training from the LM at ``init_dir``; saves ``out_dir/model`` (HF format)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    tok = AutoTokenizer.from_pretrained(str(init_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(init_dir), num_labels=1)
    model.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rm = RewardModel(model, tok, device)
    before = pair_accuracy(rm, test)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    logger = MetricLogger(out_dir / "metrics.jsonl")
    steps = cfg.epochs * ((len(train) + cfg.batch_size - 1) // cfg.batch_size)
    t0, step = time.time(), 0
    model.train()
    for epoch in range(cfg.epochs):
        order = list(range(len(train)))
        random.Random(cfg.seed + epoch).shuffle(order)
        for s in range(0, len(order), cfg.batch_size):
            batch = [train[i] for i in order[s : s + cfg.batch_size]]
            chosen, rejected = rm.pair_scores([p["prompt"] for p in batch], [summary_of(p["chosen"]) for p in batch],
                                              [summary_of(p["rejected"]) for p in batch])
            margin = chosen - rejected
            loss = -torch.nn.functional.logsigmoid(margin).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            logger.log({"step": step, "loss": float(loss.detach()), "margin": float(margin.mean().detach()),
                        "batch_accuracy": float((margin > 0).float().mean())})
            step += 1
            if progress is not None:
                progress(step, steps, loss=float(loss.detach()))
    model.eval()
    after = pair_accuracy(rm, test)
    model.save_pretrained(str(out_dir / "model"), safe_serialization=True)
    tok.save_pretrained(str(out_dir / "model"))
    return {"heldout_accuracy": after, "heldout_accuracy_before": before, "train_pairs": len(train),
            "test_pairs": len(test), "steps": step, "seconds": time.time() - t0}
