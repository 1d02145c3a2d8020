"""Tasks: data + verifier. Importing this package registers every built-in task family."""

from r1lab.tasks import arithmetic as _arithmetic  # noqa: F401  (registers "arith")
from r1lab.tasks import benchmarks as _benchmarks  # noqa: F401  (math500, aime24, amc23, gsm8k)
from r1lab.tasks import data as _data  # noqa: F401  (data, jsonl: user files)
from r1lab.tasks import code as _code  # noqa: F401  (code)
from r1lab.tasks import countdown as _countdown  # noqa: F401  (countdown, countdown_gen)
from r1lab.tasks import general as _general  # noqa: F401  (general)
from r1lab.tasks import mixture as _mixture  # noqa: F401  (mixture)
from r1lab.tasks.base import TASKS, Example, Task, Verdict, get_task, register_task

__all__ = ["TASKS", "Example", "Task", "Verdict", "get_task", "register_task"]
