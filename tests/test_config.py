import pytest

from r1lab.config import load_config, parse_overrides
from r1lab.errors import UserError
from r1lab.pipeline.zero import ZeroRecipe
from r1lab.train.grpo import GRPOConfig


def test_overrides_nested_and_typed(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("zero:\n  steps: 5\n  rewards: {accuracy: 1.0}\n")
    cfg = load_config(ZeroRecipe, f, ["zero.lr=1e-3", "zero.group_size=4", "pretrain.steps=7", "zero.clip_eps_high=0.28"])
    assert cfg.zero.steps == 5 and cfg.zero.lr == 1e-3 and cfg.zero.group_size == 4
    assert cfg.pretrain.steps == 7 and cfg.zero.rewards == {"accuracy": 1.0} and cfg.zero.clip_eps_high == 0.28
    assert parse_overrides(["a.b=[1, 2]", "c=x"]) == {"a": {"b": [1, 2]}, "c": "x"}


@pytest.mark.parametrize("overrides,match", [
    (["zero.stpes=3"], r"unknown config key 'zero.stpes' \(did you mean 'steps'\?\)"),
    (["zero.steps=three"], r"'zero.steps': expected an integer, got 'three'"),
    (["zero.lr=fast"], r"'zero.lr': expected a number"),
    (["zero.dynamic_sampling=maybe"], r"expected true or false"),
    (["zero.group_size=1"], r"'group_size' must be at least 2"),
    (["zero.prompts_per_step=4", "zero.group_size=3", "zero.minibatches=5"], r"'minibatches'.*must divide"),
    (["zero.top_p=1.5"], r"'top_p' must be in"),
    (["zero"], r"not of the form key=value"),
])
def test_bad_values_name_the_key(overrides, match):
    with pytest.raises(UserError, match=match):
        load_config(ZeroRecipe, None, overrides)


def test_rl_only_controls_must_be_student_sizes():
    from r1lab.pipeline.r1 import R1Recipe

    assert load_config(R1Recipe, None, ["distill.rl_sizes=[0.25m, 0.5m]"]).distill.rl_sizes == ["0.25m", "0.5m"]
    with pytest.raises(UserError, match=r"'distill.rl_sizes' must be among distill.student_sizes"):
        load_config(R1Recipe, None, ["distill.rl_sizes=[1m]"])


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("zero:\n  steps: 3\n  lr: [1e-3\n")
    with pytest.raises(UserError, match=r"malformed YAML in .*bad.yaml:\d+"):
        load_config(ZeroRecipe, f)
    with pytest.raises(UserError, match="config file not found"):
        load_config(ZeroRecipe, tmp_path / "missing.yaml")
    g = tmp_path / "list.yaml"
    g.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        load_config(ZeroRecipe, g)


def test_defaults_are_the_paper_values_where_they_apply():
    cfg = GRPOConfig()
    assert cfg.kl_coef == 0.001 and cfg.temperature == 1.0 and cfg.ref_reset_every == 400
    assert cfg.adv_scale == "group" and cfg.loss_agg == "seq-mean-token-mean"


def test_shipped_config_matches_the_defaults():
    import dataclasses
    from pathlib import Path

    shipped = load_config(ZeroRecipe, Path(__file__).parents[1] / "configs" / "zero_tiny.yaml")
    assert dataclasses.asdict(shipped) == dataclasses.asdict(ZeroRecipe())
