"""The whole run's remaining time (RunClock) and the calibration line."""

import torch

from r1lab.pipeline import progress
from r1lab.pipeline.progress import RunClock, fmt_duration
from r1lab.runtime.calibrate import calibrate, calibration_line


class FakeTime:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_run_clock_scales_by_speed_then_by_what_the_run_measured(tmp_path, monkeypatch):
    clock_time = FakeTime()
    monkeypatch.setattr(progress.time, "time", clock_time)
    expected = {"a": 100.0, "b": 200.0, "c": 300.0}
    clock = RunClock(tmp_path, expected, reference_gflops=100.0, gflops=50.0)  # a machine half as fast
    assert clock.remaining() == 1200.0
    clock.finish("a", skipped=True)                       # a finished stage of an earlier run costs nothing
    assert clock.remaining() == 1000.0
    clock.start("b")
    clock_time.now += 100.0
    assert clock.remaining() == 300.0 + 600.0             # b's estimate (400 s) less the 100 s it has run
    assert clock.remaining(fraction=0.5) == 100.0 + 600.0  # halfway after 100 s: 100 s more, then c
    clock_time.now += 200.0
    clock.finish("b")                                     # b took 300 s against 200 s expected: 1.5x
    assert clock.remaining() == 450.0
    assert clock.owns(tmp_path, "c") and not clock.owns(tmp_path / "student", "c") and not clock.owns(tmp_path, "x")


def test_run_clock_beside_another_process(tmp_path, monkeypatch):
    """Stages another process runs count for nothing here; this process's stage meanwhile takes its estimate
    times the slowdown and does not calibrate the clock (it ran on fewer threads)."""
    clock_time = FakeTime()
    monkeypatch.setattr(progress.time, "time", clock_time)
    clock = RunClock(tmp_path, {"a": 100.0, "side": 50.0, "b": 200.0}, reference_gflops=100.0, gflops=100.0)
    clock.beside(["side"], 1.5)
    clock.start("a")
    assert clock.remaining() == 150.0 + 200.0
    clock_time.now += 300.0
    clock.finish("a")                                     # 300 s on one thread: not a slow machine
    clock.beside((), 1.0)
    assert clock.remaining() == 200.0 and clock.scale() == 1.0


def test_stages_report_whole_run_time_and_wall_seconds(tmp_path, monkeypatch, capsys):
    from r1lab.pipeline.stage import read_done, run_stage

    progress.set_run_clock(RunClock(tmp_path, {"one": 60.0, "two": 120.0}, 100.0, 100.0))
    try:
        run_stage(tmp_path, "one", lambda d: {"x": 1})
        assert "[one] running (whole run: about 3 min left)" in capsys.readouterr().out
        assert read_done(tmp_path / "one")["wall_seconds"] >= 0.0
        run_stage(tmp_path, "two", lambda d: {})
        assert "whole run: about <1 min left" in capsys.readouterr().out  # corrected by how fast "one" went
    finally:
        progress.set_run_clock(None)


def test_fmt_duration():
    assert (fmt_duration(20), fmt_duration(61), fmt_duration(3 * 3600 + 5 * 60)) == ("<1 min", "1 min", "3 h 05 min")


def test_calibration_names_the_instruction_set_cores_and_matmul_speed():
    c = calibrate(seconds=0.05)
    assert c["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert c["cores"] >= 1 and c["torch_threads"] == torch.get_num_threads()
    assert 0.1 < c["matmul_gflops"] < 1e6
    line = calibration_line(c)
    assert line.startswith(f"machine: {c['cpu_capability']}, {c['cores']} cores") and "GFLOP/s" in line


def test_expected_stage_times_follow_the_configs_work():
    from r1lab.config import build
    from r1lab.pipeline.progress import scaled_seconds
    from r1lab.pipeline.r1 import DEMO_SECONDS, R1Recipe, demo_work
    from r1lab.pipeline.zero import ZERO_SECONDS, ZeroRecipe, zero_work

    ref = demo_work(R1Recipe(prebuilt=False))  # the reference times pretrained their bases
    assert scaled_seconds(DEMO_SECONDS, ref, ref) == DEMO_SECONDS  # the reference config: its own times
    assert set(ref) == set(DEMO_SECONDS)                          # every stage the demo runs has a work measure
    cfg = build(R1Recipe, {"pretrain": {"steps": 1500}, "reasoning_rl": {"steps": 160}, "eval": {"samples": 2},
                           "ablate_language_reward": False})
    got = scaled_seconds(DEMO_SECONDS, demo_work(cfg), ref)
    assert got["base"] == DEMO_SECONDS["base"] / 2 and got["reasoning_rl"] == DEMO_SECONDS["reasoning_rl"] * 2
    assert got["report"] == DEMO_SECONDS["report"] / 2 and got["zero_lc"] == 0.0
    assert got["zero"] == DEMO_SECONDS["zero"] and got["reward_model"] == DEMO_SECONDS["reward_model"]
    # the default config starts from the shipped bases: no pretraining, the students' SFT only
    shipped = scaled_seconds(DEMO_SECONDS, demo_work(R1Recipe()), ref)
    assert shipped["base"] == 0.0 and 0 < shipped["student_0.5m"] < DEMO_SECONDS["student_0.5m"] / 4
    # starting from an existing model: no pretraining to wait for
    assert scaled_seconds(ZERO_SECONDS, zero_work(build(ZeroRecipe, {"base_model": "m"})), zero_work(ZeroRecipe(prebuilt=False)))["base"] == 0.0
    # a stage without a work measure keeps its reference time
    assert scaled_seconds({"x": 5.0, "base": 10.0}, {"base": 2.0}, {"base": 1.0}) == {"x": 5.0, "base": 20.0}
