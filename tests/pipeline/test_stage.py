import pytest

from r1lab.errors import UserError
from r1lab.pipeline.stage import config_changes, run_stage
from r1lab.runtime.checkpoint import Interrupted
from r1lab.train.sft import SFTConfig


def test_stage_runs_once_then_skips(tmp_path):
    calls = []

    def work(d):
        calls.append(d)
        (d / "artifact.txt").write_text("x")
        return {"model": str(d / "artifact.txt")}

    a = run_stage(tmp_path, "s", work, SFTConfig())
    b = run_stage(tmp_path, "s", work, SFTConfig())
    assert a == b and len(calls) == 1 and (tmp_path / "s" / "DONE").is_file()


def test_interrupted_stage_resumes_and_refuses_a_changed_config(tmp_path):
    def boom(d):
        (d / "checkpoints").mkdir()
        raise Interrupted("stopped")

    with pytest.raises(Interrupted):
        run_stage(tmp_path, "s", boom, SFTConfig(epochs=2))
    saved = (tmp_path / "s" / "config.yaml").read_text()
    with pytest.raises(UserError, match=r"started with a different config \(epochs: 2 -> 3\)"):
        run_stage(tmp_path, "s", lambda d: {}, SFTConfig(epochs=3))
    assert (tmp_path / "s" / "config.yaml").read_text() == saved  # nothing overwritten
    assert (tmp_path / "s" / "checkpoints").is_dir()
    done = run_stage(tmp_path, "s", lambda d: {"ok": 1}, SFTConfig(epochs=2))
    assert done.pop("wall_seconds") >= 0 and done == {"ok": 1}  # the stage's artifacts and its wall time
    assert not (tmp_path / "s" / "checkpoints").exists()  # dropped once the stage is done


def test_config_changes_lists_keys(tmp_path):
    run_stage(tmp_path, "s", lambda d: {}, SFTConfig())
    assert config_changes(tmp_path / "s", SFTConfig()) == []
    assert config_changes(tmp_path / "s", SFTConfig(lr=0.5, epochs=9)) == ["epochs: 2 -> 9", "lr: 0.001 -> 0.5"]


def test_finished_stage_with_a_changed_config_is_refused_naming_the_keys(tmp_path):
    calls = []
    run_stage(tmp_path, "s", lambda d: calls.append(d) or {"ok": 1}, SFTConfig(epochs=2))
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    with pytest.raises(UserError, match=r"finished with a different config \(epochs: 2 -> 3\); remove .*s "):
        run_stage(tmp_path, "s", lambda d: calls.append(d) or {"ok": 2}, SFTConfig(epochs=3))
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()} == before  # nothing rewritten
    done = run_stage(tmp_path, "s", lambda d: calls.append(d) or {"ok": 3}, SFTConfig(epochs=2))
    assert done["ok"] == 1
    assert len(calls) == 1  # the same config skips the finished stage


def test_a_key_added_after_a_stage_finished_is_no_change_at_its_default(tmp_path):
    """A run directory written before a config key existed: the key at its default is not a change (the
    stage is skipped), at another value it is (refused)."""
    import yaml

    from r1lab.errors import UserError
    from r1lab.train.sft import SFTConfig

    run_stage(tmp_path, "s", lambda d: {"ok": 1}, SFTConfig(epochs=2))
    saved = yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())
    del saved["loss_agg"]  # as an older r1lab wrote it
    (tmp_path / "s" / "config.yaml").write_text(yaml.safe_dump(saved))
    assert run_stage(tmp_path, "s", lambda d: {"ok": 2}, SFTConfig(epochs=2))["ok"] == 1
    with pytest.raises(UserError, match="loss_agg"):
        run_stage(tmp_path, "s", lambda d: {"ok": 3}, SFTConfig(epochs=2, loss_agg="sequence"))


def test_cached_evaluation_is_recomputed_when_made_with_other_settings(tmp_path):
    import json

    from r1lab.pipeline.stage import cached_json
    from r1lab.pipeline.zero import EvalConfig, same_eval

    calls = []

    def evaluation(ev, asked=None):
        calls.append(ev.samples)
        return {"pass@1": 0.5, "examples": 7, "settings": {"samples": ev.samples, "temperature": ev.temperature,
                "top_p": ev.top_p, "max_new_tokens": ev.max_new_tokens, "seed": ev.seed,
                "examples_asked": asked or ev.examples}}

    path = tmp_path / "eval.json"
    ev8 = EvalConfig(samples=8)
    first = cached_json(path, lambda: evaluation(ev8), same_eval(ev8))
    assert cached_json(path, lambda: evaluation(ev8), same_eval(ev8)) == first and calls == [8]
    # other samples a problem, another seed, more problems asked: the stored numbers are not these
    ev16 = EvalConfig(samples=16)
    assert cached_json(path, lambda: evaluation(ev16), same_eval(ev16))["settings"]["samples"] == 16
    assert calls == [8, 16]
    ev_seed = EvalConfig(samples=16, seed=7)
    cached_json(path, lambda: evaluation(ev_seed), same_eval(ev_seed))
    assert calls == [8, 16, 16]
    # fewer problems in the split than asked (7 of 300) is still the same evaluation
    cached_json(path, lambda: evaluation(ev_seed, 300), same_eval(ev_seed, 300))
    assert cached_json(path, lambda: evaluation(ev_seed, 300), same_eval(ev_seed, 300))["examples"] == 7
    assert calls == [8, 16, 16, 16]
    # an evaluation written before settings were compared (no examples_asked) is made again once
    stale = {**first, "settings": {k: v for k, v in first["settings"].items() if k != "examples_asked"}}
    path.write_text(json.dumps(stale))
    cached_json(path, lambda: evaluation(ev8), same_eval(ev8))
    assert calls == [8, 16, 16, 16, 8]
    # without a check, whatever is stored is returned
    assert cached_json(path, lambda: evaluation(ev16))["settings"]["samples"] == 8 and len(calls) == 5


def test_stored_evaluation_with_another_token_budget_is_made_again(tmp_path):
    """The general split is sampled with its own token budget: an evaluation stored with the reasoning
    budget is not the general one's, and the general one's is reused under its own budget."""
    from r1lab.pipeline.stage import cached_json
    from r1lab.pipeline.zero import EvalConfig, same_eval

    calls = []

    def evaluation(ev, budget):
        calls.append(budget)
        return {"pass@1": 0.0, "settings": {"samples": ev.samples, "temperature": ev.temperature, "top_p": ev.top_p,
                                            "max_new_tokens": budget, "seed": ev.seed, "examples_asked": 300}}

    ev = EvalConfig()
    assert ev.general_max_new_tokens < ev.max_new_tokens
    path = tmp_path / "eval_general.json"
    cached_json(path, lambda: evaluation(ev, ev.max_new_tokens), same_eval(ev, 300))
    cached_json(path, lambda: evaluation(ev, ev.general_max_new_tokens), same_eval(ev, 300, ev.general_max_new_tokens))
    cached_json(path, lambda: evaluation(ev, ev.general_max_new_tokens), same_eval(ev, 300, ev.general_max_new_tokens))
    assert calls == [ev.max_new_tokens, ev.general_max_new_tokens]
