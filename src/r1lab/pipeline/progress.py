"""A progress bar for long loops (tqdm), silent off the main rank."""

from __future__ import annotations

import contextlib

from r1lab.runtime import is_main


@contextlib.contextmanager
def progress_bar(desc: str, total: int):
    """Yields ``update(done, total, **postfix)``; renders with tqdm on the main rank."""
    if not is_main():
        yield lambda *a, **k: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, dynamic_ncols=True, leave=True)

    def update(done: int, total_: int, **postfix):
        bar.update(done - bar.n)
        if postfix:
            bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False)

    try:
        yield update
    finally:
        bar.close()
