"""The second lane (pipeline/lanes.py): when it cannot run or fails, its stages run in this process."""

import torch

from r1lab.config import build
from r1lab.pipeline.lanes import lane_possible, side_lane, side_stages
from r1lab.pipeline.quick import QUICK
from r1lab.pipeline.r1 import R1Recipe


def _cfg(**kw):
    return build(R1Recipe, {**QUICK, **kw})


def test_lane_only_with_two_threads_on_cpu_and_something_to_run(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert side_stages(_cfg()) == ["zero_lc", "rl_only_0.5m"]
    assert lane_possible(_cfg()) == (not torch.cuda.is_available())
    assert not lane_possible(_cfg(side_lane=False))
    assert not lane_possible(_cfg(ablate_language_reward=False, distill={**QUICK["distill"], "rl_sizes": []}))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert not lane_possible(_cfg())


def test_failed_second_process_leaves_its_stages_to_this_one(tmp_path, capsys):
    if not lane_possible(_cfg()):
        import pytest
        pytest.skip("needs two CPU threads")
    (tmp_path / "side_lane.log").mkdir()  # the second process cannot open its log: it exits at once
    threads = torch.get_num_threads()
    with side_lane(_cfg(), tmp_path, tmp_path / "no-base") as beside:
        assert beside and torch.get_num_threads() == threads - threads // 2
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    assert "the second process stopped (exit code 1" in out and "its unfinished stages run here" in out
    assert not (tmp_path / "zero_lc" / "DONE").exists()
