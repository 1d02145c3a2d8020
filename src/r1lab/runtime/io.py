"""Atomic writes (temp file + rename), reading the files a user names (JSONL with file:line error messages),
and checks that an output path can be written, all with one-line ``UserError`` messages naming the path."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

from r1lab.errors import UserError


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_user_text(path: str | os.PathLike, what: str) -> str:
    """The text of a file the user named (``what``: "config file", "data file"...). UserError naming the path
    when it is missing, a directory, not readable, or not UTF-8 text (a binary file passed by mistake)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} not found: {p}")
    if p.is_dir():
        raise UserError(f"{what} {p} is a directory, not a file")
    try:
        data = p.read_bytes()
    except PermissionError:
        raise UserError(f"{what} {p} is not readable (permission denied)") from None
    except OSError as e:
        raise UserError(f"{what} {p} cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is harmless
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(f"{what} {p}:{line} is not UTF-8 text (byte {data[e.start]:#04x}): a binary file, or text "
                        "in another encoding?") from None
    if "\0" in text:
        raise UserError(f"{what} {p} is binary, not text (it holds NUL bytes)")
    return text


def read_jsonl_numbered(path: str | os.PathLike, what: str = "data file") -> list[tuple[int, dict]]:
    """(line number, object) per non-blank line; a malformed line stops with ``file:line`` in the message."""
    path = Path(path)
    rows = []
    # split on "\n" only: str.splitlines also breaks at U+2028 and friends, which JSON strings may hold raw
    for lineno, line in enumerate(read_user_text(path, what).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg}; a line cut short?)") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append((lineno, row))
    if not rows:
        raise UserError(f"{what} is empty: {path}")
    return rows


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The objects of a JSONL file (see ``read_jsonl_numbered`` for the errors)."""
    return [row for _, row in read_jsonl_numbered(path)]


def _kind(p: Path) -> str:
    """"dir", "file", "missing", or "denied" (a folder above it cannot be searched); never raises."""
    try:
        return "dir" if stat.S_ISDIR(p.stat().st_mode) else "file"
    except PermissionError:
        return "denied"
    except OSError:  # no such file, or a file where a folder should be (ENOTDIR)
        return "missing"


def _check_writable_parent(p: Path, what: str, start: Path) -> None:
    """The nearest existing folder at or above ``start`` must be a writable directory (mkdir -p can go on
    from it); messages name ``p``."""
    base = next((q for q in [start, *start.parents] if _kind(q) != "missing"), Path("."))
    if _kind(base) == "file":
        raise UserError(f"{what} {p}: {base} is a file, not a directory")
    if _kind(base) == "denied" or not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"{what} {p} is not writable (permission denied on {base})")


def check_out_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """A run directory a command may create or write into; UserError naming it when it is a file, lies under
    a file, cannot be written, or is a model directory. Call it before writing anything."""
    p = Path(path)
    if _kind(p) == "file":
        raise UserError(f"{what} {p} is a file, not a directory (a run directory is a folder; choose another {what})")
    _check_writable_parent(p, what, start=p)
    if _kind(p / "config.json") == "file" and _kind(p / "config.yaml") == "missing":
        raise UserError(f"{what} {p} is a model directory (it holds config.json), not a run directory; choose "
                        f"another {what}")
    return p


def check_out_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """A file a command will write at its end (e.g. eval results); the same checks, made before the work."""
    p = Path(path)
    if _kind(p) == "dir":
        raise UserError(f"{what} {p} is a directory, not a file (give a file name such as results.json)")
    _check_writable_parent(p, what, start=p.parent)
    if _kind(p) == "file" and not os.access(p, os.W_OK):
        raise UserError(f"{what} {p} is not writable (permission denied)")
    return p
