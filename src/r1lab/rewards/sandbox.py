"""Run untrusted Python in a sandbox and bring back plain values, never verdicts.

The caller (the *harness*) hands over a program and a list of *probe* expressions such as ``add(2, 3)``.
The sandbox runs the program, evaluates every probe, and sends back each value encoded as plain data
(exact ``None/bool/int/float/complex/str/bytes`` and ``list/tuple/set/frozenset/dict`` of those).
Expected values never enter the sandbox: ``r1lab.rewards.code`` compares the returned values itself, so
whatever the program does inside (override ``__eq__``, patch builtins, exit early, print, forge records
on the result pipe) it can at most report values it chose - which is what answering is.

Namespace mode (the default where the kernel allows it)::

    harness ── launcher L ── init I (pid 1 of a new pid namespace) ── worker W (runs the program)

L unshares user, mount, pid, net, ipc and uts namespaces; a helper it forked beforehand writes the id
maps (inside root = the caller's uid, or ``SANDBOX_ID`` when the caller is root, because the kernel never
applies RLIMIT_NPROC to real root). L mounts a small tmpfs as the new root holding read-only binds of
/usr, the library dirs, /etc/ld.so.cache and the Python install, four /dev nodes and a size-capped
tmpfs ``/sandbox`` (the cwd), pivots into it and detaches the old root; it sets the namespace's quotas of
nested user namespaces (which could mount an uncapped tmpfs) and of SysV/POSIX IPC to 0. I exists so that
a dying L takes everything down: I gets SIGKILL when L dies (``PR_SET_PDEATHSIG``), and the kernel kills
every process of a pid namespace when its init dies, even those that left the process group. W starts a
new session, sets the rlimits, drops every capability, sets ``no_new_privs``, installs a seccomp filter
and the audit hook, and runs the driver.

Hook mode (the fallback where namespaces are unavailable): L itself is the worker, with the same rlimits,
no capabilities, seccomp where the architecture has a table, and - when running as root - the uid
``SANDBOX_ID``; the audit hook is then the only file confinement. See ``docs/sandbox.md``.

Around both: a session and process group of its own, a cleared environment, stdin from /dev/null, an
empty temp dir, a wall-clock deadline after which the harness SIGKILLs the group and removes the dir.
The child code lives in ``sandbox_child.py`` and runs as ``python -s -S -B -c <its source>``.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ISOLATIONS = ("auto", "namespace", "hook")
_CHILD_FILE = Path(__file__).with_name("sandbox_child.py")
_CHILD_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONUTF8": "1",
              "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox run; ``cpu_s`` defaults to the wall-clock timeout rounded up, plus 1."""

    timeout_s: float = 5.0      # wall clock for the whole run (startup, program, all probes)
    memory_mb: int = 512        # RLIMIT_AS, per process
    cpu_s: int | None = None    # RLIMIT_CPU: SIGXCPU, then SIGKILL one second later
    file_size_mb: int = 8       # RLIMIT_FSIZE, per file (also bounds each tmpfs file)
    max_procs: int = 8          # RLIMIT_NPROC: processes + threads of the sandbox uid
    max_open_files: int = 64    # RLIMIT_NOFILE
    disk_mb: int = 32           # size of the /sandbox tmpfs (namespace mode)
    max_output_bytes: int = 8192       # tail of stdout+stderr kept
    max_result_bytes: int = 8 << 20    # result-pipe bytes kept (a flood is drained and dropped)

    def for_child(self) -> dict:
        cpu = self.cpu_s if self.cpu_s is not None else int(self.timeout_s + 0.999) + 1
        return {"cpu_s": max(1, cpu), "memory_mb": self.memory_mb, "file_size_mb": self.file_size_mb,
                "max_procs": self.max_procs, "max_open_files": self.max_open_files, "disk_mb": self.disk_mb}


@dataclass(frozen=True)
class SandboxResult:
    """One run. ``values[i]`` is ``("value", v)``, ``("raised", "ValueError: ...")``, ``("invalid", why)``
    or ``None`` (no result: timeout or crash). ``status``: "ok" (the driver finished), "timeout",
    "memory", "error" (the program raised at top level), "crashed" (died or exited early) or
    "sandbox_error" (the sandbox could not be set up; the program did not run). ``layers``: the
    protections the sandbox reported in place before the program started."""

    status: str
    values: tuple
    isolation: str
    layers: tuple = ()
    program_error: str | None = None
    detail: str = ""
    output_tail: str = ""
    elapsed_s: float = 0.0


_state: dict = {"namespace_error": None, "source": None}
_state_lock = threading.Lock()


def run_sandboxed(program: str, probes: list[str], *, limits: Limits = Limits(), isolation: str = "auto",
                  audit_hook: bool = True, seccomp: bool = True) -> SandboxResult:
    """Run ``program``, then evaluate each probe expression in its namespace, inside the sandbox.

    ``isolation``: "namespace" ("sandbox_error" where namespaces are unavailable), "hook" (no
    namespaces), or "auto" (namespaces, falling back to hook mode once they failed to set up here).
    ``audit_hook`` and ``seccomp`` switch those layers (tests turn them off to check the others alone).
    Never raises for anything the program does.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    mode = "hook" if isolation == "hook" or (isolation == "auto" and _state["namespace_error"]) else "namespace"
    result = _run_once(program, probes, limits, mode, audit_hook, seccomp)
    if isolation == "auto" and mode == "namespace" and result.detail.startswith("setup failed"):
        with _state_lock:  # the program never ran: setup failures come before it
            _state["namespace_error"] = result.detail
        result = _run_once(program, probes, limits, "hook", audit_hook, seccomp)
    return result


def isolation_available() -> tuple[str, str]:
    """("namespace", "") where namespaces work here, else ("hook", why not). Runs a trivial job once."""
    if _state["namespace_error"] is None:
        res = run_sandboxed("", [], limits=Limits(timeout_s=10.0), isolation="namespace")
        if res.status == "sandbox_error":
            with _state_lock:
                _state["namespace_error"] = res.detail or "namespace setup failed"
    err = _state["namespace_error"]
    return ("hook", err) if err else ("namespace", "")


def _child_source() -> str:
    if _state["source"] is None:
        _state["source"] = _CHILD_FILE.read_text(encoding="utf-8")
    return _state["source"]


def _run_once(program: str, probes: list[str], limits: Limits, mode: str, audit_hook: bool,
              seccomp: bool) -> SandboxResult:
    start = time.monotonic()
    deadline = start + limits.timeout_s
    base = tempfile.mkdtemp(prefix="r1lab-sandbox-")
    read_fd, write_fd = os.pipe()
    job = {"program": program, "probes": list(probes), "limits": limits.for_child(), "mode": mode, "base": base,
           "result_fd": write_fd, "env": _CHILD_ENV, "audit_hook": bool(audit_hook), "seccomp": bool(seccomp)}
    try:
        proc = subprocess.Popen(
            [os.path.realpath(sys.executable), "-s", "-S", "-B", "-c", _child_source()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=base,
            env=dict(_CHILD_ENV), pass_fds=(write_fd,), start_new_session=True)
    except OSError as e:
        os.close(read_fd)
        _remove_tree(base)
        return SandboxResult("sandbox_error", (None,) * len(probes), mode, detail=f"setup failed: {e}")
    finally:
        os.close(write_fd)
    try:
        records, tail, timed_out = _communicate(proc, json.dumps(job).encode(), read_fd, limits, deadline)
        timed_out = timed_out or not _wait_exit(proc.pid, deadline)
    finally:
        _kill_group(proc)
        os.close(read_fd)
        _remove_tree(base)
    return _summarise(records, tail, timed_out, proc.returncode, len(probes), mode, time.monotonic() - start)


def _communicate(proc, job: bytes, read_fd: int, limits: Limits, deadline: float):
    """Feed the job to stdin, drain stdout and the result pipe until EOF or the deadline (never blocks)."""
    sel = selectors.DefaultSelector()
    stdin_fd, out_fd = proc.stdin.fileno(), proc.stdout.fileno()
    for fd, events in ((stdin_fd, selectors.EVENT_WRITE), (out_fd, selectors.EVENT_READ),
                       (read_fd, selectors.EVENT_READ)):
        os.set_blocking(fd, False)
        sel.register(fd, events)
    pending, results, tail, reading = memoryview(job), bytearray(), bytearray(), 2
    try:
        while reading:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(results), bytes(tail), True
            for key, _ in sel.select(remaining):
                if key.fd == stdin_fd:
                    try:
                        pending = pending[os.write(stdin_fd, pending[:1 << 16]):]
                    except BlockingIOError:
                        continue
                    except OSError:  # the child is gone; its exit status will tell
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(stdin_fd)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    reading -= 1
                elif key.fd == read_fd:
                    if len(results) < limits.max_result_bytes:
                        results += chunk
                else:
                    tail += chunk
                    if len(tail) > 2 * limits.max_output_bytes:
                        del tail[:-limits.max_output_bytes]
        return bytes(results), bytes(tail[-limits.max_output_bytes:]), False
    finally:
        sel.close()


def _wait_exit(pid: int, deadline: float) -> bool:
    """Wait for ``pid`` to exit without reaping it (its pid, hence its process group, stays reserved)."""
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)


def _kill_group(proc) -> None:
    """SIGKILL the sandbox's process group (the leader is unreaped, so the id cannot be reused), then reap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for stream in (proc.stdin, proc.stdout):
        if stream is not None and not stream.closed:
            stream.close()
    proc.wait()


def _remove_tree(base: str) -> None:
    """Delete the temp dir, first making every directory searchable (the program may chmod 000 them)."""
    try:
        os.chmod(base, 0o700)
    except OSError:
        pass
    for root, dirs, _ in os.walk(base):
        for d in dirs:
            try:
                os.chmod(os.path.join(root, d), 0o700, follow_symlinks=False)
            except OSError:
                pass
    shutil.rmtree(base, ignore_errors=True)


def decode_value(node):
    """Inverse of ``sandbox_child.encode_value``; raises ``ValueError`` on anything malformed (records
    can be forged, so nothing here trusts their shape)."""
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise ValueError("malformed value")
    tag, rest = node[0], node[1:]
    if tag == "N" and not rest:
        return None
    if tag == "b" and rest and isinstance(rest[0], bool):
        return rest[0]
    if tag == "s" and rest and isinstance(rest[0], str):
        return rest[0]
    scalar = {"i": lambda x: int(x, 16), "f": float.fromhex, "y": bytes.fromhex}
    if tag in scalar and len(rest) == 1 and isinstance(rest[0], str):
        return scalar[tag](rest[0])
    if tag == "c" and len(rest) == 2 and all(isinstance(x, str) for x in rest):
        return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
    if tag in ("l", "t", "S", "F", "d") and len(rest) == 1 and isinstance(rest[0], list):
        if tag == "d":
            return {decode_value(k): decode_value(v) for k, v in rest[0]}
        items = [decode_value(x) for x in rest[0]]
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
    raise ValueError(f"malformed value with tag {tag!r}")


def _probe_value(rec: dict):
    if "v" in rec:
        try:
            return ("value", decode_value(rec["v"]))
        except (ValueError, TypeError, RecursionError, OverflowError):
            return ("invalid", "malformed value")
    if "invalid" in rec:
        return ("invalid", str(rec["invalid"]))
    return ("raised", f"{rec.get('exc')}: {rec.get('msg')}")


def _summarise(raw: bytes, tail: bytes, timed_out: bool, returncode, n_probes: int, mode: str,
               elapsed: float) -> SandboxResult:
    """Turn the result-pipe records into a ``SandboxResult``; the first record is the sandbox's own
    setup report, written before the program started (later records may be forged; see the docstring)."""
    values: list = [None] * n_probes
    setup, program_error, done, memory = None, None, False, False
    for line in raw.split(b"\n"):
        try:
            rec = json.loads(line)
            kind = rec["k"] if isinstance(rec, dict) else None
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if setup is None:
            if kind not in ("setup", "setup_error"):
                break
            setup = rec
        elif kind == "program" and program_error is None:
            program_error = f"{rec.get('exc')}: {rec.get('msg')}"
            memory |= rec.get("exc") == "MemoryError"
        elif kind == "probe" and type(rec.get("i")) is int and 0 <= rec["i"] < n_probes:
            values[rec["i"]] = values[rec["i"]] or _probe_value(rec)  # the first record counts
            memory |= rec.get("exc") == "MemoryError"
        elif kind == "done":
            done = True
    text = tail.decode("utf-8", "replace")
    sig = -returncode if returncode is not None and returncode < 0 else (
        returncode - 128 if returncode is not None and returncode > 128 else 0)
    layers = tuple(setup.get("layers") or ()) if setup and setup.get("k") == "setup" else ()
    if not layers:
        why = setup.get("error") if setup else (text[-500:] or f"exit code {returncode}")
        status, detail = ("timeout", "timed out during setup") if timed_out and not setup else (
            "sandbox_error", f"setup failed: {why}")
    elif done:
        status, detail = ("memory" if memory else "error" if program_error else "ok"), ""
    elif timed_out or sig == signal.SIGXCPU:
        status, detail = "timeout", "wall-clock timeout" if timed_out else "CPU time limit"
    else:
        status = "memory" if memory else "crashed"
        detail = f"killed by signal {sig}" if sig else f"exited with code {returncode} before finishing"
    return SandboxResult(status, tuple(values), mode, layers, program_error, detail, text, elapsed)
