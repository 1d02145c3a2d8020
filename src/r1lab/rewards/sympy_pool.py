"""math-verify in watched worker subprocesses: a time bound that needs no signals.

math-verify bounds its sympy work with ``signal.alarm``, which only works on the main thread, and sympy
itself cannot be interrupted from another thread. So the grader runs math-verify (with its timeouts
off) in a few persistent child interpreters and waits on their pipes with a deadline; a worker that
misses the deadline is killed and a replacement is started at once. Each worker also caps its own
address space (``WORKER_MEMORY_BYTES``) so that ``2^{2^{100}}`` dies of MemoryError instead of
swapping the machine.

A call's wall time is at most: the wait for a free worker (other callers' calls, each bounded the same
way) + a fresh worker's start-up (``STARTUP_TIMEOUT_S``, only after a kill or on first use) + ``timeout_s``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0     # a fresh worker imports sympy: seconds on a loaded machine
WORKER_MEMORY_BYTES = 2 << 30
MAX_STARTUP_FAILURES = 3     # then symbolic comparisons are given up (answer "not equal") with a warning
_CACHE_MAX = 8192

_cache: dict[tuple[str, str], bool] = {}
_cache_lock = threading.Lock()


def sympy_equal(pred: str, gold: str, timeout_s: float) -> bool | None:
    """math-verify's verdict on two LaTeX answers; None when it ran out of time or no worker could start."""
    key = (pred, gold)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    if timeout_s <= 0:
        return None
    verdict = pool().run(pred, gold, timeout_s)
    if verdict is not None:  # timeouts are not cached: they may come from a busy machine
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = verdict
    return verdict


def worker_command() -> list[str]:
    # A fresh interpreter rather than fork: forking a threaded trainer can copy held locks into the
    # child. -P keeps the caller's working directory off sys.path.
    return [sys.executable, "-P", "-m", "r1lab.rewards.sympy_pool"]


class Worker:
    """One child process (``worker_command()``): JSON lines ``[seq, pred, gold]`` in, ``seq 1``/``seq 0`` out.

    The child first prints ``ready``. Replies carry the request's ``seq`` so that a stray line on the
    pipe can never be taken for the answer to a later request. ``command`` replaces the worker in tests.
    """

    def __init__(self, command: list[str] | None = None) -> None:
        src = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p))
        # A new session: Ctrl-C in the terminal is the parent's to handle, not the workers'.
        self.proc = subprocess.Popen(
            command or worker_command(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True, start_new_session=True)
        self.ready = False
        self._seq = 0
        self._buf = b""
        self._sel = selectors.DefaultSelector()  # poll/epoll: no FD_SETSIZE limit, no signals
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:  # the worker died (memory cap, crash)
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def ask(self, pred: str, gold: str, timeout_s: float) -> bool | None:
        """The worker's verdict, or None when it did not answer in time (the caller then kills it)."""
        if not self.ready:
            if self._read_line(time.monotonic() + STARTUP_TIMEOUT_S) != b"ready":
                return None
            self.ready = True
        self._seq += 1
        try:
            self.proc.stdin.write((json.dumps([self._seq, pred, gold]) + "\n").encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return None
        deadline, want = time.monotonic() + timeout_s, f"{self._seq} ".encode()
        while (line := self._read_line(deadline)) is not None:
            if line.startswith(want):
                return line == want + b"1"
        return None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        self._sel.close()


class SympyPool:
    """Up to ``size`` persistent workers. A caller borrows one; one that times out is replaced at once."""

    def __init__(self, size: int, command: list[str] | None = None) -> None:
        self.size = max(1, size)
        self.command = command
        self.timeouts = 0  # workers killed for missing a deadline
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._count = 0
        self._startup_failures = 0

    @property
    def broken(self) -> bool:
        return self._startup_failures >= MAX_STARTUP_FAILURES

    def run(self, pred: str, gold: str, timeout_s: float) -> bool | None:
        worker = self._take()
        if worker is None:
            return None
        verdict = None
        try:
            verdict = worker.ask(pred, gold, timeout_s)
        finally:
            self._give(worker, verdict is not None)
        return verdict

    def _take(self) -> Worker | None:
        with self._cond:
            while True:
                if self.broken:
                    return None
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        return self._spawn()

    def _spawn(self) -> Worker | None:
        """A new worker for a slot already counted; on failure the slot is released."""
        try:
            return Worker(self.command)
        except Exception:
            with self._cond:
                self._count -= 1
                self._startup_failures += 1
                self._cond.notify_all()
            return None

    def _give(self, worker: Worker, healthy: bool) -> None:
        if healthy:
            with self._cond:
                self._startup_failures = 0
                self._idle.append(worker)
                self._cond.notify()
            return
        with self._cond:
            if worker.ready:
                self.timeouts += 1
            else:
                self._startup_failures += 1
                if self.broken:
                    log.warning("math grader: sympy workers fail to start; symbolic answers will score 0")
        worker.kill()
        if self.broken:
            with self._cond:
                self._count -= 1
                self._cond.notify_all()
            return
        fresh = self._spawn()  # start the replacement now, so its import overlaps the caller's work
        if fresh is not None:
            with self._cond:
                self._idle.append(fresh)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for w in idle:
            w.kill()


_pool: SympyPool | None = None
_pool_lock = threading.Lock()


def pool() -> SympyPool:
    """The process-wide pool; ``R1LAB_GRADER_WORKERS`` sets its size (default 2)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            try:
                size = int(os.environ.get("R1LAB_GRADER_WORKERS", "2"))
            except ValueError:
                size = 2
            _pool = SympyPool(size)
        return _pool


def _forget_after_fork() -> None:
    # The parent's workers and locks belong to the parent; a forked child (a DataLoader worker, say)
    # starts its own pool when it first needs one.
    global _pool, _pool_lock, _cache_lock
    _pool, _pool_lock, _cache_lock = None, threading.Lock(), threading.Lock()


def _close() -> None:
    if _pool is not None:
        _pool.close()


def worker_main() -> None:
    """Worker loop: math-verify with its signal timeouts off; the parent's deadline is the timeout."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except Exception:
        pass
    logging.disable(logging.CRITICAL)
    parent = os.getppid()

    def exit_with_parent() -> None:
        # stdin EOF ends an idle worker; this ends one stuck in sympy after its parent died (SIGKILL'd).
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    # Replies go to a private copy of the pipe; fd 1 now points at stderr (devnull), so anything a
    # library prints cannot reach the parent.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from math_verify import parse, verify

    def judge(pred: str, gold: str) -> bool:
        g = parse(f"${gold}$", parsing_timeout=None)
        p = parse(f"${pred}$", parsing_timeout=None)
        return bool(g and p and verify(g, p, timeout_seconds=None))

    judge("1", "1")  # load the LaTeX parser before reporting ready
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        seq, ok = 0, False
        try:
            seq, pred, gold = json.loads(line)
            ok = judge(str(pred), str(gold))
        except BaseException:  # MemoryError and RecursionError too: answer "not equal" and stay alive
            ok = False
        replies.write(f"{seq} {int(ok)}\n")
        replies.flush()


if __name__ == "__main__":
    worker_main()
else:
    os.register_at_fork(after_in_child=_forget_after_fork)
    atexit.register(_close)
