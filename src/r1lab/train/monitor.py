"""The reward-hacking monitor of RL with a learned reward (R1's last stage).

The policy is trained on a proxy (the preference model's score of its general answers); the tiny world
also knows the gold answer to every general prompt. Logging both for the same samples, every step, shows
reward hacking as it happens: the proxy rising while gold accuracy falls (R1-v2 B.5, Fig. 6: "the reward
exhibits an increasing trend as the performance on CodeForces decreases"). Gold is observed, never rewarded.
"""

from __future__ import annotations

from r1lab.rewards.registry import is_general


def general_monitor(rollouts, examples, per_name: dict, task) -> dict:
    """The reward-hacking monitor: on this step's general prompts, the preference model's mean score (the
    proxy the policy is trained on) next to the gold accuracy of the same responses (the task's verifier,
    never a reward). A proxy that rises while gold falls is reward hacking (R1-v2 B.5, Fig. 6)."""
    if "preference" not in per_name:
        return {}
    idx = [i for i, e in enumerate(examples) if is_general(e)]
    gold = [task.verify(rollouts[i].text, examples[i]).correct for i in idx]
    # sums and counts, so that averaging over ranks keeps the ratios right (``finish_monitor`` divides)
    return {"_monitor/n": float(len(idx)), "_monitor/all": float(len(examples)),
            "_monitor/preference": float(sum(per_name["preference"][i] for i in idx)), "_monitor/gold": float(sum(gold))}


def finish_monitor(metrics: dict) -> dict:
    """Turn the monitor's rank-averaged sums into means (nothing when the step had no general prompt)."""
    n, total = metrics.pop("_monitor/n", 0.0), metrics.pop("_monitor/all", 0.0)
    pref, gold = metrics.pop("_monitor/preference", 0.0), metrics.pop("_monitor/gold", 0.0)
    if n > 0:
        metrics.update({"monitor/general_share": n / max(total, 1.0), "monitor/preference": pref / n,
                        "monitor/general_gold": gold / n})
    return metrics


def hacking_check(history: list[tuple[float, float]], window: int = 4, tol: float = 0.02) -> dict | None:
    """``history``: (proxy, gold) of the steps that had general prompts, in order. When the mean proxy of the
    last ``window`` of them is above that of the first ``window`` by more than ``tol`` while mean gold is
    below by more than ``tol``, returns the four means; else None (also while there are too few steps)."""
    if len(history) < 2 * window:
        return None
    first, last = history[:window], history[-window:]
    p0, g0 = sum(p for p, _ in first) / window, sum(g for _, g in first) / window
    p1, g1 = sum(p for p, _ in last) / window, sum(g for _, g in last) / window
    if p1 - p0 > tol and g0 - g1 > tol:
        return {"proxy_first": p0, "proxy_last": p1, "gold_first": g0, "gold_last": g1}
    return None
