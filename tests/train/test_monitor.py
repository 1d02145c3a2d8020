"""The reward-hacking monitor: proxy vs gold of the same general samples."""

from types import SimpleNamespace

from r1lab.tasks.base import Example, Verdict
from r1lab.train.monitor import finish_monitor, general_monitor, hacking_check


class _Gold:
    def verify(self, response, example):
        return Verdict(correct=response == example.reference, answer=response)


def test_monitor_reads_general_samples_only_and_survives_rank_averaging():
    exs = [Example("g1", "q", "a", {"kind": "general"}), Example("m1", "q", 5, {}),
           Example("g2", "q", "b", {"kind": "general"}), Example("g3", "q", "c", {"kind": "general"})]
    outs = [SimpleNamespace(text=t) for t in ("a", "5", "x", "c")]
    per_name = {"preference": [0.5, 0.0, 1.5, 1.0]}
    m = general_monitor(outs, exs, per_name, _Gold())
    assert m == {"_monitor/n": 3.0, "_monitor/all": 4.0, "_monitor/preference": 3.0, "_monitor/gold": 2.0}
    # two ranks, the other with no general prompt: averaged sums still give the pooled means
    other = {"_monitor/n": 0.0, "_monitor/all": 4.0, "_monitor/preference": 0.0, "_monitor/gold": 0.0}
    avg = {k: (m[k] + other[k]) / 2 for k in m}
    assert finish_monitor(dict(avg)) == {"monitor/general_share": 3 / 8, "monitor/preference": 1.0,
                                         "monitor/general_gold": 2 / 3}
    assert finish_monitor(dict(other)) == {}
    assert general_monitor(outs, exs, {"accuracy": [1.0] * 4}, _Gold()) == {}


def test_hacking_check_needs_proxy_up_and_gold_down():
    rising_proxy_falling_gold = [(0.1 * i, 0.9 - 0.05 * i) for i in range(8)]
    assert hacking_check(rising_proxy_falling_gold) is not None
    both_rise = [(0.1 * i, 0.5 + 0.05 * i) for i in range(8)]
    assert hacking_check(both_rise) is None
    assert hacking_check(rising_proxy_falling_gold[:7]) is None  # too few steps to tell
    flat = [(0.5, 0.8)] * 8
    assert hacking_check(flat) is None
