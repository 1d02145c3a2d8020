"""User reward functions with TRL's calling convention, named ``module:function`` or ``path/to/file.py:function``.

A TRL reward function is called with keyword arguments only::

    fn(prompts=list, completions=list, completion_ids=list[list[int]], **columns) -> list[float | None]

``columns`` are the example's data fields, each a list with one entry per completion (``answer`` and every
other column of the user's data). ``None`` means "no score for this sample". Coroutine functions are
awaited. The function is wrapped into r1lab's reward contract ``(responses, examples) -> list`` and runs
under the registry's fault isolation like any built-in reward.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Callable

from r1lab.errors import UserError

# Example.meta keys r1lab's own tasks use for bookkeeping; they are not user data columns.
_INTERNAL = {"split", "messages_prompt", "conversational"}


def is_user_reward(name: str) -> bool:
    """True for names that point at user code (``module:function``, ``file.py:function``, or a path)."""
    return ":" in name or name.endswith(".py") or "/" in name


def _import_module(spec: str, name: str):
    if spec.endswith(".py") or "/" in spec or spec.startswith("."):
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"reward {name!r}: no such file {path}")
        # a unique module name per file, so two files called rewards.py do not collide
        mod_name = f"r1lab_user_reward_{abs(hash(str(path.resolve())))}"
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.path.insert(0, str(path.resolve().parent))  # the file may import its neighbours
        try:
            loader_spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.resolve().parent))
        sys.modules[mod_name] = module
        return module
    # a module beside the user's files: the `r1lab` script's sys.path holds its own folder, not the working one
    added = os.getcwd() not in sys.path
    if added:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(spec)
    finally:
        if added:
            sys.path.remove(os.getcwd())


def load_reward_function(name: str) -> Callable:
    """The function ``name`` points at; a one-line UserError naming it when it cannot be imported."""
    module_spec, sep, fn_name = name.rpartition(":")
    if not sep or not module_spec or not fn_name:
        raise UserError(f"reward {name!r}: a user reward is named module:function or path/to/file.py:function "
                        "(the ':function' part is missing)")
    try:
        module = _import_module(module_spec, name)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure importing user code is a user error
        raise UserError(f"reward {name!r}: cannot import {module_spec!r} ({type(e).__name__}: {e})") from None
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise UserError(f"reward {name!r}: {module_spec!r} has no function {fn_name!r}")
    if not callable(fn):
        raise UserError(f"reward {name!r}: {module_spec}.{fn_name} is not callable")
    return fn


def _columns(examples: list) -> dict[str, list]:
    """One list per data column (``answer`` first), an entry per example; a column some rows lack is None there."""
    keys: list[str] = ["answer"]
    for ex in examples:
        for k in (getattr(ex, "meta", None) or {}):
            if k not in keys and k not in _INTERNAL:
                keys.append(k)
    out: dict[str, list] = {}
    for k in keys:
        if k == "answer":
            out[k] = [(ex.meta or {}).get("answer", ex.reference) for ex in examples]
        else:
            out[k] = [(ex.meta or {}).get(k) for ex in examples]
    return out


def _prompt_of(example):
    """The prompt as the user's data holds it: the list of turns for conversational data, else the text."""
    meta = example.meta or {}
    return meta["messages_prompt"] if meta.get("conversational") else example.prompt


def trl_reward(fn: Callable) -> Callable:
    """r1lab's ``(responses, examples, completion_ids=None) -> list`` around a TRL-style reward function."""
    is_async = inspect.iscoroutinefunction(fn)

    def wrapped(responses: list[str], examples: list, completion_ids: list[list[int]] | None = None) -> list:
        conversational = [bool((e.meta or {}).get("conversational")) for e in examples]
        # TRL hands conversational data's completions over as a list of one assistant turn
        completions = [[{"role": "assistant", "content": r}] if c else r for r, c in zip(responses, conversational)]
        kwargs = dict(prompts=[_prompt_of(e) for e in examples], completions=completions,
                      completion_ids=completion_ids if completion_ids is not None else [[] for _ in responses],
                      **_columns(examples))
        if is_async:
            return asyncio.run(fn(**kwargs))  # its own event loop: rewards run in a worker thread
        return fn(**kwargs)

    wrapped.takes_completion_ids = True
    wrapped.__name__ = getattr(fn, "__name__", "user_reward")
    return wrapped
