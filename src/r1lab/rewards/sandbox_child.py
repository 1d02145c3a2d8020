"""The inside of the sandbox: this file runs as ``python -s -S -B -c <this file>`` (see ``sandbox.py``).

It reads its job (program, probes, limits, mode) from stdin, isolates itself, runs the program, evaluates
each probe and writes one JSON record per probe to the result pipe. Stdlib only, and only small modules
at the top: whatever this file imports is in ``sys.modules`` when the program runs.

Layers, in the order they are set up (the harness's wall-clock kill and temp dir come on top):

- namespaces (namespace mode): user, mount, pid, net, ipc, uts; a tmpfs root with read-only binds of the
  system and Python runtime; init process I between launcher and worker (``_fork_init``);
- rlimits: CPU, address space, file size, processes, open files, core dumps;
- credentials: no capabilities (bounding set included), ``no_new_privs``; hook mode as root: ``SANDBOX_ID``;
- seccomp (x86_64, aarch64): no signals to other processes, no fork/exec (threads are fine), no sockets,
  no ptrace, mount or namespace calls, no memfd or SysV/POSIX IPC (memory outside the address space);
- the audit hook (``_audit_hook``): file paths, imports, and a second copy of the seccomp rules.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import signal
import sys

SANDBOX_ID = 65534           # uid/gid the program runs as when the caller is root ("nobody")
WORK_DIR = "/sandbox"        # the program's cwd in namespace mode
MAX_CREATES = 64             # files + dirs the audit hook lets a program create (hook mode: bounds disk use)

_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
_CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET, _CLONE_THREAD = 0x10000000, 0x20000000, 0x40000000, 0x10000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 1, 2, 4, 8, 32
_MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC = 1024, 2048, 4096, 16384
_MS_PRIVATE, _MS_RELATIME, _MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
_ST_RELATIME, _MNT_DETACH = 4096, 2
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_SECCOMP, _PR_CAPBSET_DROP = 1, 4, 22, 24
_PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, _CAP_VERSION_3 = 38, 47, 4, 0x20080522

_RO_SOURCES = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/etc/ld.so.cache")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_QUOTAS = ("user/max_user_namespaces", "kernel/shmall", "kernel/msgmni", "fs/mqueue/queues_max")
_DENIED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "os.kill", "os.killpg", "signal.pthread_kill", "os.symlink", "os.link", "os.chown",
    "resource.setrlimit", "resource.prlimit", "socket.__new__",
})
_DENIED_PREFIXES = ("ctypes.", "socket.", "_winapi.", "winreg.")
_DENIED_MODULES = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_testcapi",
                             "_testinternalcapi", "cffi", "_cffi_backend"})
_WRITE_EVENTS = {"os.mkdir": 2, "os.rmdir": 1, "os.remove": 1, "os.chmod": 2, "os.utime": 3,  # -> dir_fd arg
                 "os.truncate": None, "os.chflags": None, "os.setxattr": None, "os.removexattr": None}
_PREIMPORT = ("math", "cmath", "itertools", "functools", "collections", "heapq", "bisect", "re", "string",
              "random", "statistics", "fractions", "decimal", "operator", "copy", "typing", "datetime",
              "threading", "concurrent.futures")
_MAX_DEPTH, _MAX_NODES, _MAX_CHARS = 64, 200_000, 1_000_000

# Seccomp: audit arch, then syscall numbers (asm/unistd_64.h; aarch64 uses asm-generic/unistd.h).
# Order: kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal pidfd_open pidfd_getfd
# ptrace process_vm_readv process_vm_writev socket socketpair execve execveat unshare setns mount umount2
# pivot_root chroot memfd_create shmget msgget semget mq_open keyctl add_key request_key bpf userfaultfd
# perf_event_open open_by_handle_at name_to_handle_at io_uring_setup fsopen fsmount open_tree move_mount
# mount_setattr memfd_secret process_madvise [fork vfork]; then clone, clone3.
_SECCOMP = {
    "x86_64": (0xC000003E, (62, 200, 234, 129, 297, 424, 434, 438, 101, 310, 311, 41, 53, 59, 322, 272, 308,
                            165, 166, 155, 161, 319, 29, 68, 64, 240, 250, 248, 249, 321, 323, 298, 304, 303,
                            425, 430, 432, 428, 429, 442, 447, 440, 57, 58), 56, 435),
    "aarch64": (0xC00000B7, (129, 130, 131, 138, 240, 424, 434, 438, 117, 270, 271, 198, 199, 221, 281, 97,
                             268, 40, 39, 41, 51, 279, 194, 186, 190, 180, 219, 217, 218, 280, 282, 241, 265,
                             264, 425, 430, 432, 428, 429, 442, 447, 440), 220, 435),
}


# ---------------------------------------------------------------------------------------------------------
# the driver: run the program, evaluate the probes, report plain values
# ---------------------------------------------------------------------------------------------------------

class _NotPlain(Exception):
    """A probe value that is not plain data (or too large to send)."""


_type, _len, _format = type, len, format   # bound now: the program may rebind the builtins later


def encode_value(value, budget=None):
    """Tagged JSON for plain data of exact builtin types; raises ``_NotPlain`` for anything else.

    Exact ``type(v) is int`` checks (no ``isinstance``) reject subclasses, whose ``__eq__`` could lie,
    and objects that fake ``__class__``.
    """
    return _encode(value, [_MAX_NODES, _MAX_CHARS] if budget is None else budget, 0)


def _encode(v, budget, depth):
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        raise _NotPlain("value too large or too deeply nested")
    t = _type(v)
    if v is None:
        return ["N"]
    if t is bool:
        return ["b", v]
    if t is int:
        return ["i", _format(v, "x")]   # hex: str(int) refuses more than 4300 digits
    if t is float:
        return ["f", v.hex()]
    if t is complex:
        return ["c", v.real.hex(), v.imag.hex()]
    if t is str or t is bytes:
        budget[1] -= _len(v)
        if budget[1] < 0:
            raise _NotPlain("value too large")
        return ["s", v] if t is str else ["y", v.hex()]
    tag = {list: "l", tuple: "t", set: "S", frozenset: "F", dict: "d"}.get(t)
    if tag == "d":
        return ["d", [[_encode(k, budget, depth + 1), _encode(x, budget, depth + 1)] for k, x in v.items()]]
    if tag is not None:
        return [tag, [_encode(x, budget, depth + 1) for x in v]]
    raise _NotPlain(f"{_type_name(v)} is not plain data")


def _type_name(v) -> str:
    try:
        name = _type(v).__name__
        return name if _type(name) is str else "object"
    except BaseException:  # a hostile metaclass; only the message is at stake
        return "object"


def _safe_str(e) -> str:
    try:
        s = str(e)
        return s[:300] if _type(s) is str else ""
    except BaseException:
        return ""


def _emit(fd: int, record: dict) -> None:
    """Write one JSON line to the result pipe. Failures are the program's doing (it closed the pipe or
    patched what ``json`` uses); the record is then lost, and its probe scores nothing."""
    try:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[os.write(fd, data):]
    except BaseException:
        pass


def _compile_probe(expr: str, i: int):
    try:
        return compile(expr, f"<probe {i}>", "eval")
    except SyntaxError:
        return compile("(_ for _ in ()).throw(SyntaxError('probe does not compile'))", "<probe>", "eval")


def _run_driver(job: dict, fd: int) -> None:
    """Run the program, then evaluate each probe in its namespace and emit the encoded values."""
    codes = [_compile_probe(p, i) for i, p in enumerate(job["probes"])]
    ns = {"__name__": "__solution__", "__builtins__": builtins}  # not "__main__": demo blocks stay off
    try:
        exec(compile(job["program"], "<solution>", "exec"), ns)
    except BaseException as e:  # SystemExit too: functions defined before the exit are still tested
        _emit(fd, {"k": "program", "exc": _type_name(e), "msg": _safe_str(e)})
    for i, code in enumerate(codes):
        try:
            rec = {"k": "probe", "i": i, "v": encode_value(eval(code, ns))}
        except _NotPlain as e:
            rec = {"k": "probe", "i": i, "invalid": _safe_str(e)}
        except BaseException as e:
            rec = {"k": "probe", "i": i, "exc": _type_name(e), "msg": _safe_str(e)}
        _emit(fd, rec)
    _emit(fd, {"k": "done"})
    for stream in (sys.stdout, sys.stderr):  # the program may have replaced or closed them
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(0)  # skip atexit handlers and threads the program left behind


# ---------------------------------------------------------------------------------------------------------
# the audit hook
# ---------------------------------------------------------------------------------------------------------

def _audit_hook(workdir: str, read_roots: tuple, max_creates: int):
    """A ``sys.addaudithook`` hook: the only file confinement in hook mode, a second layer otherwise.

    Blocks: reading outside the work dir, the Python install and four /dev nodes; writing, creating,
    removing, renaming or chmod-ing outside the work dir, creating more than ``max_creates`` files, a
    ``dir_fd`` on those calls, ``chdir`` out of the work dir; process creation, signals, sockets, ctypes,
    links, chown, rlimit changes; importing ctypes, _posixsubprocess, cffi, _testcapi. Hooks cannot be
    removed. It cannot see calls that raise no audit event (``os.pidfd_open`` +
    ``signal.pidfd_send_signal``, ``os.memfd_create``, ``os.setsid``, ``dir_fd`` of ``os.open``), nor
    Python-level tricks that rebuild a module it hid: seccomp and the uid switch cover those.
    """
    realpath, fsdecode, lexists = os.path.realpath, os.fsdecode, os.path.lexists
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    created = [0]

    def within(p: str, roots) -> bool:
        return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)

    def check(path, write: bool) -> None:
        if _type(path) is int:  # an fd the program already holds, opened through this same check
            return
        p = realpath(fsdecode("." if path is None else path))
        if not write:
            if within(p, (workdir,) + read_roots) or p in _DEVICES:
                return
            raise PermissionError(f"sandbox: reading {p} is not allowed")
        if p == "/dev/null":
            return
        if not within(p, (workdir,)):
            raise PermissionError(f"sandbox: writing {p} is not allowed")
        if not lexists(p):
            created[0] += 1
            if created[0] > max_creates:
                raise PermissionError("sandbox: too many files created")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            write = (_type(mode) is str and any(c in mode for c in "wax+")) or bool(
                _type(flags) is int and flags & write_flags)
            check(path, write)
        elif event in ("os.listdir", "os.scandir"):
            check(args[0], False)
        elif event in _WRITE_EVENTS:
            at = _WRITE_EVENTS[event]
            if at is not None and args[at] not in (None, -1):  # -1: no dir_fd
                raise PermissionError(f"sandbox: {event} with dir_fd is not allowed")
            check(args[0], True)
        elif event == "os.rename":
            if args[2] not in (None, -1) or args[3] not in (None, -1):
                raise PermissionError("sandbox: os.rename with dir_fd is not allowed")
            check(args[0], True)
            check(args[1], True)
        elif event == "os.chdir":
            if _type(args[0]) is int or not within(realpath(fsdecode(args[0])), (workdir,)):
                raise PermissionError("sandbox: chdir out of the work dir is not allowed")
        elif event == "import":
            if str(args[0]).partition(".")[0] in _DENIED_MODULES:
                raise ImportError(f"sandbox: importing {args[0]} is not allowed")
        elif event in _DENIED_EVENTS or event.startswith(_DENIED_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed")

    return hook


def _install_audit_hook(workdir: str) -> None:
    for name in list(sys.modules):  # re-importing them must go through the "import" event
        if name.partition(".")[0] in _DENIED_MODULES:
            del sys.modules[name]
    for mod, name in ((os, "pidfd_open"), (signal, "pidfd_send_signal"), (os, "memfd_create")):
        if hasattr(mod, name):  # no audit event: hide them (seccomp is what really stops them)
            delattr(mod, name)
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    roots = tuple(sorted(prefixes | {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}))
    sys.addaudithook(_audit_hook(os.path.realpath(workdir), roots, max_creates=MAX_CREATES))


# ---------------------------------------------------------------------------------------------------------
# kernel mechanisms (ctypes)
# ---------------------------------------------------------------------------------------------------------

def _libc():
    import ctypes  # the audit hook forbids ctypes to the program
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, src, target, fstype, flags, data=None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _set_rlimits(limits: dict, extra_procs: int) -> None:
    mb, cpu = 1 << 20, int(limits["cpu_s"])
    for res, value in ((resource.RLIMIT_CPU, (cpu, cpu + 1)),  # SIGXCPU, then SIGKILL a second later
                       (resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2),
                       (resource.RLIMIT_FSIZE, (limits["file_size_mb"] * mb,) * 2),
                       (resource.RLIMIT_NPROC, (limits["max_procs"] + extra_procs,) * 2),
                       (resource.RLIMIT_NOFILE, (limits["max_open_files"],) * 2),
                       (resource.RLIMIT_CORE, (0, 0))):
        resource.setrlimit(res, value)


def _drop_capabilities(libc) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets; set no_new_privs."""
    import ctypes
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the kernel's last capability (EPERM: we never had any)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0), (ctypes.c_uint32 * 6)()
    _check(libc.capset(header, data), "capset")
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _seccomp_filter(arch: str) -> list[tuple[int, int, int, int]]:
    """Classic BPF: wrong arch -> kill; denied syscalls -> EPERM; clone without CLONE_THREAD -> EPERM;
    clone3 -> ENOSYS (its flags sit in memory BPF cannot read; glibc then falls back to clone)."""
    audit_arch, denied, clone, clone3 = _SECCOMP[arch]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill, eperm, enosys = 0x7FFF0000, 0x80000000, 0x00050000 | 1, 0x00050000 | 38
    prog: list = [(ld, 0, 0, 4), (jeq, 1, 0, audit_arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if arch == "x86_64":
        prog.append((jge, "deny", 0, 0x40000000))  # the x32 ABI
    prog += [(jeq, "deny", 0, nr) for nr in denied]
    prog += [(jeq, "enosys", 0, clone3), (jeq, "clone", 0, clone), (ret, 0, 0, allow)]
    labels = {"clone": len(prog), "deny": len(prog) + 3, "enosys": len(prog) + 4}
    prog += [(ld, 0, 0, 16), (jset, 0, 1, _CLONE_THREAD), (ret, 0, 0, allow), (ret, 0, 0, eperm),
             (ret, 0, 0, enosys)]
    return [(code, labels[jt] - i - 1 if isinstance(jt, str) else jt, jf, k)
            for i, (code, jt, jf, k) in enumerate(prog)]


def _install_seccomp(libc) -> bool:
    """Install ``_seccomp_filter`` (needs no_new_privs); False on an architecture without a table."""
    import ctypes
    arch = os.uname().machine
    if arch not in _SECCOMP:
        return False

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = _seccomp_filter(arch)
    raw = b"".join(code.to_bytes(2, sys.byteorder) + bytes([jt, jf]) + k.to_bytes(4, sys.byteorder)
                   for code, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = Fprog(len(prog), ctypes.addressof(buf))
    _check(libc.prctl(_PR_SET_SECCOMP, 2, ctypes.addressof(fprog), 0, 0), "seccomp")
    return True


# ---------------------------------------------------------------------------------------------------------
# namespace mode
# ---------------------------------------------------------------------------------------------------------

def _unshare_with_idmap(libc, outer_uid: int, outer_gid: int) -> None:
    """Enter new namespaces; a helper forked beforehand (still outside) maps inside 0 to the outer ids.

    The helper is needed when the caller is root: mapping to another uid takes CAP_SETUID in the parent
    namespace, which this process no longer has once it has unshared.
    """
    r, w = os.pipe()
    pid, helper = os.getpid(), os.fork()
    if helper == 0:
        os.close(w)
        ok = os.read(r, 1) == b"x"
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {outer_uid} 1"),
                               ("gid_map", f"0 {outer_gid} 1")):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(text)
        except OSError:
            ok = False
        os._exit(0 if ok else 1)
    os.close(r)
    try:
        flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS
        _check(libc.unshare(flags), "unshare")
        os.write(w, b"x")
    finally:
        os.close(w)
        _, status = os.waitpid(helper, 0)
    if status != 0:
        raise OSError("could not write the user namespace id maps")


def _bind_sources() -> list[tuple[str, bool]]:
    """(path, read_only) for everything the sandboxed interpreter needs, parents before children."""
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    out: list[tuple[str, bool]] = []
    for path in sorted(set(_RO_SOURCES) | prefixes):
        covered = any(path.startswith(p + "/") for p, _ in out if not os.path.islink(p))
        if os.path.lexists(path) and not covered:
            out.append((path, True))
    return out + [(d, False) for d in _DEVICES if os.path.exists(d)]


def _build_root(libc, base: str, limits: dict, fds: dict) -> None:
    """Mount the new root on ``base``: binds of ``fds`` (O_PATH fds, by path), /sandbox, nothing else."""
    _mount(libc, "tmpfs", base, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,nr_inodes=1024,mode=0755")
    for path, (fd, read_only) in fds.items():
        dst = base + path
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if fd is None:  # a symlink such as /lib -> usr/lib: recreate it
            os.symlink(os.readlink(path), dst)
            continue
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(dst, exist_ok=True)
        else:
            open(dst, "w").close()
        _mount(libc, f"/proc/self/fd/{fd}", dst, None, _MS_BIND | _MS_REC)
        if read_only:  # keep the source's locked flags, or the kernel refuses the remount
            st = os.statvfs(dst).f_flag
            keep = st & (_MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_NOATIME | _MS_NODIRATIME)
            keep |= _MS_RELATIME if st & _ST_RELATIME else (0 if st & _MS_NOATIME else _MS_STRICTATIME)
            _mount(libc, None, dst, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | keep)
    os.mkdir(base + WORK_DIR)
    _mount(libc, "tmpfs", base + WORK_DIR, "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={limits['disk_mb']}m,nr_inodes=1024,mode=0755")


def _can_become_sandbox_id() -> bool:
    """Root whose user namespace maps ``SANDBOX_ID`` (real root does; root of ``unshare -r`` does not,
    and is then an unprivileged user outside, which is enough)."""
    def mapped(name: str) -> bool:
        with open(f"/proc/self/{name}") as f:
            return any(int(a) <= SANDBOX_ID < int(a) + int(n) for a, _, n in (line.split() for line in f))
    return os.geteuid() == 0 and mapped("uid_map") and mapped("gid_map")


def _enter_namespaces(libc, job: dict) -> None:
    """In L: new namespaces, a minimal read-only root, cwd ``/sandbox``."""
    switch = _can_become_sandbox_id()
    if switch:
        os.setgroups([])
    _unshare_with_idmap(libc, *((SANDBOX_ID, SANDBOX_ID) if switch else (os.geteuid(), os.getegid())))
    # O_PATH fds, opened inside the new mount namespace (a bind source must belong to it) but before
    # setresuid, while the caller's directories (e.g. a 0700 home holding Python) are still searchable
    fds = {p: (None if os.path.islink(p) else os.open(p, os.O_PATH | os.O_CLOEXEC), ro)
           for p, ro in _bind_sources()}
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    for name in _QUOTAS:  # this namespace's quotas: nested user namespaces (an uncapped tmpfs), IPC memory
        try:
            with open(f"/proc/sys/{name}", "w") as f:
                f.write("0")
        except OSError:
            pass  # best effort: some kernels refuse some of them
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _build_root(libc, job["base"], job["limits"], fds)
    for fd, _ in fds.values():  # an O_PATH fd left open would lead back to the host tree via ".."
        if fd is not None:
            os.close(fd)
    os.chdir(job["base"])
    _check(libc.pivot_root(b".", b"."), "pivot_root")
    _check(libc.umount2(b".", _MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount(libc, None, "/", None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    os.chdir(WORK_DIR)


def _fork_init(libc) -> None:
    """In L: fork I (pid 1) and return in W, I's child; L and I only wait and pass the exit status on."""
    alive_r, alive_w = os.pipe()  # EOF on alive_r tells I that L is gone
    init = os.fork()
    if init:
        os.close(alive_r)
        os._exit(_wait_status(init))
    os.close(alive_w)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as pid 1, I then ignores every signal W can send
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # W (same uid) cannot ptrace I
    import select
    if select.select([alive_r], [], [], 0)[0]:  # L died before PDEATHSIG was armed
        os._exit(137)
    worker = os.fork()
    if worker:
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # the result pipe closes with W
        os._exit(_wait_status(worker))  # the kernel then kills everything left in the namespace
    os.close(alive_r)


def _wait_status(child: int) -> int:
    """Reap children until ``child`` ends (pid 1 also inherits orphans); its status as an exit code."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        if pid == child:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


# ---------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------

def _become_sandbox_user(workdir: str) -> None:
    """Hook mode as root: leave root for ``SANDBOX_ID`` (a real barrier if the hook is bypassed)."""
    os.chown(workdir, SANDBOX_ID, SANDBOX_ID)
    for name in _PREIMPORT:  # the install may sit in a 0700 home that SANDBOX_ID cannot read
        try:
            __import__(name)
        except ImportError:
            pass
    os.setgroups([])
    os.setresgid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID)
    os.setresuid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID)


def _close_fds_except(keep: int) -> None:
    """Close every fd above stderr except the result pipe."""
    os.closerange(3, keep)
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _isolate(job: dict, fd: int) -> tuple[str, list[str]]:
    """Set up every layer for ``job["mode"]``; returns (the program's cwd, the layers in place)."""
    if job["mode"] == "namespace":
        libc = _libc()
        _enter_namespaces(libc, job)
        _fork_init(libc)
        _close_fds_except(fd)
        os.setsid()  # W's own group: killpg(0) from the program reaches no one else
        _set_rlimits(job["limits"], extra_procs=2)  # L and I count too
        _drop_capabilities(libc)
        workdir, layers = WORK_DIR, ["namespaces", "rlimits", "no_caps"]
    else:
        workdir, layers = job["base"], ["rlimits"]
        _set_rlimits(job["limits"], extra_procs=0)
        try:
            libc = _libc()  # before leaving root: the install may be unreadable afterwards
        except (OSError, ImportError):
            libc = None
        if _can_become_sandbox_id():
            _become_sandbox_user(workdir)
            layers.append(f"uid {SANDBOX_ID}")
        if libc is not None:
            _drop_capabilities(libc)
            layers.append("no_caps")
    if libc is not None and job["seccomp"] and _install_seccomp(libc):
        layers.append("seccomp")
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    os.environ.clear()
    os.environ.update(job["env"], HOME=workdir, TMPDIR=workdir)
    return workdir, layers


def child_main() -> None:
    """Entry point of the sandbox process, reading its job from stdin."""
    job = json.loads(sys.stdin.buffer.read())
    fd = job["result_fd"]
    _close_fds_except(fd)
    try:
        workdir, layers = _isolate(job, fd)
    except Exception as e:
        _emit(fd, {"k": "setup_error", "error": f"{_type_name(e)}: {e}"})
        os._exit(3)
    if job["audit_hook"]:
        _install_audit_hook(workdir)
        layers.append("audit_hook")
    _emit(fd, {"k": "setup", "isolation": job["mode"], "layers": layers})
    _run_driver(job, fd)


if __name__ == "__main__":
    child_main()
