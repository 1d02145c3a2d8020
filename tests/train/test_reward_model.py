from r1lab.tasks.general import preference_pairs
from r1lab.train.reward_model import RewardModel, RewardModelConfig, train_reward_model

from conftest import make_model


def test_reward_model_ranks_heldout_pairs_above_chance(tmp_path, tiny_tokenizer):
    init = tmp_path / "init"
    make_model(tiny_tokenizer).save_pretrained(str(init))
    tiny_tokenizer.save_pretrained(str(init))
    cfg = RewardModelConfig(epochs=3, batch_size=16, lr=3e-3)
    train = preference_pairs(480, "train")
    test = preference_pairs(120, "test")
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in test}
    info = train_reward_model(cfg, init, train, test, tmp_path / "rm")
    assert info["heldout_accuracy"] > 0.65, info  # chance is 0.5
    rm = RewardModel.load(tmp_path / "rm" / "model")
    a, b = rm.score(["Say hello to Ana."] * 2, ["<think>\n</think>\nHello, Ana!", "<think>\n</think>\nI can not help with that."])
    assert a > b
    # the RM reads the summary only: a different reasoning block does not change the score
    c, = rm.score(["Say hello to Ana."], ["<think>\nlots of reasoning here\n</think>\nHello, Ana!"])
    assert abs(a - c) < 1e-5


def test_length_chunks_partition_rows_and_bound_padding():
    from r1lab.train.reward_model import length_chunks

    lengths = [23, 125, 30, 31, 40, 23, 24, 60, 61, 33, 35, 36, 23, 90, 28, 29, 30, 26, 25, 27]
    chunks = length_chunks(lengths, waste=0.15, min_rows=4)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))  # every row once
    assert len(chunks) > 1
    for c in chunks[:-1]:  # the last chunk takes what is left, whatever its size
        assert len(c) >= 4
    for c in chunks:
        width = max(lengths[i] for i in c)
        # a chunk past its min_rows first rows stops growing before its padding passes the bound
        if len(c) > 4:
            assert sum(lengths[i] for i in c) >= 0.85 * width * len(c), (c, width)
    assert length_chunks([5] * 10, min_rows=4) == [list(range(10))]  # equal lengths: one chunk


def test_reward_model_scores_chunked_equal_one_padded_batch(tmp_path, tiny_tokenizer, monkeypatch):
    """Scores and gradients are those of one right-padded batch, in the caller's order."""
    import torch

    from r1lab.train import reward_model as rmod

    from transformers import AutoModelForSequenceClassification

    init = tmp_path / "init"
    make_model(tiny_tokenizer).save_pretrained(str(init))
    model = AutoModelForSequenceClassification.from_pretrained(str(init), num_labels=1)
    model.config.pad_token_id = tiny_tokenizer.eos_token_id
    rm = rmod.RewardModel(model, tiny_tokenizer)
    pairs = preference_pairs(24, "train", seed=3)
    texts = [rmod.rm_text(p["prompt"], p[k]) for p in pairs for k in ("chosen", "rejected")]
    assert len({len(tiny_tokenizer(t)["input_ids"]) for t in texts}) > 3  # uneven lengths
    model.zero_grad()
    chunked = rm.forward(texts)
    chunked.sum().backward()
    g_chunked = [p.grad.clone() for p in model.parameters()]
    with monkeypatch.context() as m:
        m.setattr(rmod, "length_chunks", lambda lengths, **kw: [list(range(len(lengths)))])  # one padded batch
        model.zero_grad()
        padded = rm.forward(texts)
        padded.sum().backward()
    assert torch.allclose(chunked, padded, atol=1e-5), (chunked - padded).abs().max()
    for a, p in zip(g_chunked, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5)
    # a different order of the same texts gives the same scores, permuted
    perm = list(reversed(range(len(texts))))
    assert torch.allclose(rm.forward([texts[i] for i in perm]), chunked.detach()[perm], atol=1e-5)


def test_pair_scores_share_the_prefix_and_equal_separate_texts(tmp_path, tiny_tokenizer, monkeypatch):
    """Training scores each pair's common prefix once (the grouped forward): the same scores and gradients
    as the texts scored apart, and the grouped path is the one taken."""
    import torch

    from r1lab.train import reward_model as rmod

    from transformers import AutoModelForSequenceClassification

    init = tmp_path / "init"
    make_model(tiny_tokenizer).save_pretrained(str(init))
    model = AutoModelForSequenceClassification.from_pretrained(str(init), num_labels=1)
    model.config.pad_token_id = tiny_tokenizer.eos_token_id
    torch.manual_seed(0)
    torch.nn.init.normal_(model.score.weight, std=0.5)  # a head that is not ~0, so the scores differ
    rm = rmod.RewardModel(model, tiny_tokenizer)
    pairs = preference_pairs(20, "train", seed=5)
    pairs.append({"prompt": pairs[0]["prompt"], "chosen": "42", "rejected": "42"})      # identical texts
    pairs.append({"prompt": pairs[1]["prompt"], "chosen": "12", "rejected": "123"})     # one a prefix of the other
    prompts, chosen, rejected = ([p[k] for p in pairs] for k in ("prompt", "chosen", "rejected"))
    texts = [t for p, c, r in zip(prompts, chosen, rejected) for t in (rmod.rm_text(p, c), rmod.rm_text(p, r))]

    model.zero_grad()
    apart = rm.forward(texts)
    (apart[0::2] - 2 * apart[1::2]).sum().backward()
    g_apart = [p.grad.clone() for p in model.parameters()]
    with monkeypatch.context() as m:
        m.setattr(rm, "_forward_ids", lambda ids: (_ for _ in ()).throw(AssertionError("fell back")))
        model.zero_grad()
        c, r = rm.pair_scores(prompts, chosen, rejected)
        (c - 2 * r).sum().backward()
    assert torch.allclose(c, apart[0::2], atol=1e-5) and torch.allclose(r, apart[1::2], atol=1e-5)
    assert c[-2] == r[-2]
    assert (c - r).abs().max() > 1e-2  # not all equal: the scores depend on the responses
    for a, p in zip(g_apart, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-4, rtol=1e-4), (a - p.grad).abs().max()


def test_reward_model_benchmark_prints_both_ways(tmp_path, tiny_tokenizer):
    """benchmarks/profile_reward_model.py runs both scorings on the same batches and prints their times."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    init = tmp_path / "init"
    make_model(tiny_tokenizer).save_pretrained(str(init))
    tiny_tokenizer.save_pretrained(str(init))
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "profile_reward_model.py"
    p = subprocess.run([sys.executable, str(script), "--model", str(init), "--steps", "2", "--warmup", "1",
                        "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["shared_prefix_step_s"] > 0 and out["texts_apart_step_s"] > 0 and out["steps"] == 2
    assert abs(out["speedup"] - out["texts_apart_step_s"] / out["shared_prefix_step_s"]) < 0.02
    assert out["mean_text_tokens"] > 10 and out["machine"].startswith("machine: ")
