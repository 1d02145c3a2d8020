"""A mixture of tasks: each example comes from one component (by weight) and is verified by it.

R1's last RL stage samples prompts "from all scenarios": reasoning prompts with rule rewards and
general prompts with a preference reward (R1-v1 §2.3.4). ``meta["task"]`` names the component.
"""

from __future__ import annotations

import copy
import random
from dataclasses import replace

from r1lab.tasks.base import Example, Verdict, get_task, register_task


@register_task("mixture")
class MixtureTask:
    name = "mixture"

    def __init__(self, components: dict[str, float], options: dict[str, dict] | None = None):
        if not components:
            raise ValueError("a mixture needs at least one component task")
        self.weights = dict(components)
        self.tasks = {name: get_task(name, **(options or {}).get(name, {})) for name in components}

    def without(self, *names: str) -> "MixtureTask":
        """The same mixture with the components ``names`` left out (the others keep their weights)."""
        rest = copy.copy(self)
        rest.weights = {k: w for k, w in self.weights.items() if k not in names}
        if not rest.weights:
            raise ValueError(f"leaving out {list(names)} leaves no component of the mixture")
        return rest

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        if n is None:
            raise ValueError("a mixture is drawn by weight: pass n")
        rng = random.Random(f"mixture:{split}:{seed}")
        names = list(self.weights)
        picks = rng.choices(names, weights=[self.weights[k] for k in names], k=n)
        counts = {k: picks.count(k) for k in names}
        pools = {k: iter(self.tasks[k].examples(split, n=c, seed=seed)) for k, c in counts.items() if c}
        return [replace(ex, meta={**ex.meta, "task": k}) for k in picks for ex in [next(pools[k])]]

    def solution(self, example: Example, layout: str = "r1") -> str:
        """The component task's own worked solution (for tasks that write one)."""
        task = self.tasks[example.meta["task"]]
        if not hasattr(task, "solution"):
            raise ValueError(f"task {example.meta['task']!r} writes no solutions")
        return task.solution(example, layout)

    def verify(self, response: str, example: Example) -> Verdict:
        return self.tasks[example.meta["task"]].verify(response, example)
