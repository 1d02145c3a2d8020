import torch

from r1lab.core import sft_loss
from r1lab.train.batch import build_batch, response_logprobs
from r1lab.train.sft import SFTConfig, encode_pairs, sft

from conftest import make_model


def test_loss_mask_covers_response_and_eos_only(tiny_tokenizer):
    pairs = [{"prompt": "User: Say hello to Ana.\nAssistant:", "response": "<think>\n</think>\nHello, Ana!"}]
    (p, r), = encode_pairs(tiny_tokenizer, pairs, max_len=256)[0]
    assert r[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(r[:-1]) == " <think>\n</think>\nHello, Ana!"
    batch = build_batch([p, p[:3]], [r, r[:2]], pad_id=0)
    assert batch.mask[0].sum() == len(r) and batch.mask[1].sum() == 2  # padding never counts


def test_loss_is_the_mean_nll_of_response_tokens_only(tiny_tokenizer):
    """The masked SFT loss equals the NLL of exactly the response tokens (+EOS) computed by hand from a
    plain forward over the unpadded sequence: no prompt token is predicted, no response token is missed."""
    model = make_model(tiny_tokenizer)
    pairs = [{"prompt": "Question: Compute 5+7\nAnswer:", "response": "12"},
             {"prompt": "User: Say hello to Ana.\nAssistant:", "response": "<think>\n</think>\nHello, Ana!"}]
    data, _ = encode_pairs(tiny_tokenizer, pairs, 256)
    batch = build_batch([p for p, _ in data], [r for _, r in data], pad_id=0)
    with torch.no_grad():
        lp, _ = response_logprobs(model, batch)
        loss, _ = sft_loss(lp, batch.mask)
        nll, count = 0.0, 0
        for p, r in data:
            ids = torch.tensor([p + r])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            for t in range(len(p), len(p) + len(r)):  # token t is predicted at position t-1
                nll -= float(logprobs[t - 1, ids[0, t]])
                count += 1
    assert count == int(batch.mask.sum())
    assert abs(float(loss) - nll / count) < 1e-4


def test_sft_learns_and_saves(tmp_path, tiny_tokenizer):
    model = make_model(tiny_tokenizer)
    pairs = [{"prompt": f"Question: Say hello to {n}.\nAnswer:", "response": f"Hello, {n}!"} for n in ("Ana", "Bo", "Mo")] * 8
    cfg = SFTConfig(epochs=3, batch_size=8, lr=3e-3, warmup=1, precision="fp32")
    (p, r), = encode_pairs(tiny_tokenizer, pairs[:1], 256)[0]
    before, _ = response_logprobs(model, build_batch([p], [r], 0))
    info = sft(cfg, model, tiny_tokenizer, pairs, tmp_path)
    after, _ = response_logprobs(model, build_batch([p], [r], 0))
    assert info["steps"] == 9 and (tmp_path / "model" / "config.json").is_file()
    assert float(after.detach().mean()) > float(before.detach().mean()) + 0.5


def _one_sgd_step(tmp_path, tokenizer, agg):
    import copy
    model = make_model(tokenizer)
    start = copy.deepcopy(model)
    pairs = [{"prompt": "Question: Compute 5+7\nAnswer:", "response": "12"},
             {"prompt": "Question: Say hello to Ana.\nAnswer:", "response": "Hello, Ana! " * 6}]
    cfg = SFTConfig(epochs=1, batch_size=2, lr=0.1, warmup=0, grad_clip=1e9, optimizer="sgd", precision="fp32",
                    loss_agg=agg)
    sft(cfg, model, tokenizer, pairs, tmp_path / agg)
    return start, model, pairs


def test_sequence_loss_weighs_each_example_equally(tmp_path, tiny_tokenizer):
    """One SGD step under loss_agg="sequence" equals a step on the mean over examples of each example's
    token-mean NLL (a 3-token answer weighs as much as a 70-token one); the token mean is another step."""
    start, stepped, pairs = _one_sgd_step(tmp_path, tiny_tokenizer, "sequence")
    data, _ = encode_pairs(tiny_tokenizer, pairs, 256)
    lp, _ = response_logprobs(start, build_batch([p for p, _ in data], [r for _, r in data], pad_id=0))
    mask = build_batch([p for p, _ in data], [r for _, r in data], pad_id=0).mask
    per_example = -(lp * mask).sum(-1) / mask.sum(-1)
    per_example.mean().backward()
    name = next(n for n, _ in start.named_parameters() if "down_proj" in n)
    w = dict(start.named_parameters())[name]
    expected = w.detach() - 0.1 * w.grad
    got = dict(stepped.named_parameters())[name].detach()
    assert torch.allclose(got, expected, atol=1e-5)
    _, token_stepped, _ = _one_sgd_step(tmp_path, tiny_tokenizer, "token")
    assert not torch.allclose(dict(token_stepped.named_parameters())[name].detach(), expected, atol=1e-4)


def test_sft_config_rejects_unknown_loss_agg():
    import pytest

    from r1lab.errors import UserError
    with pytest.raises(UserError, match="loss_agg"):
        SFTConfig(loss_agg="tokens").validate()
