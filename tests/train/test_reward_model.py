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
