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
