"""Adversarial tests for the code sandbox and the test harness (r1lab.rewards.sandbox / code).

Host-harm attacks run under four configurations: the default namespace sandbox, namespaces alone (no
seccomp, no audit hook: the namespaces must hold by themselves), the hook-mode fallback, and the
fallback without seccomp (audit hook, rlimits and uid switch only). Each attack must be contained,
score 0, and leave the host untouched. The canary directory is world-writable and its secret
world-readable on purpose: plain file permissions would stop a program running as another user, so only
the sandbox itself may be what stops it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from r1lab.rewards import sandbox
from r1lab.rewards.code import code_reward, compile_test, extract_program, run_tests
from r1lab.rewards.sandbox import Limits, decode_value, isolation_available, run_sandboxed
from r1lab.rewards.sandbox_child import MAX_CREATES, encode_value

HAS_NAMESPACES = isolation_available()[0] == "namespace"
needs_ns = pytest.mark.skipif(not HAS_NAMESPACES, reason=f"no namespaces here: {isolation_available()[1]}")
CONFIGS = [
    pytest.param(dict(isolation="namespace"), id="namespace", marks=needs_ns),
    pytest.param(dict(isolation="namespace", audit_hook=False, seccomp=False), id="namespace-only", marks=needs_ns),
    pytest.param(dict(isolation="hook"), id="hook"),
    pytest.param(dict(isolation="hook", seccomp=False), id="hook-only"),
]
ADD_TESTS = ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(10, 5) == 15", "assert add(0, 0) == 0"]
CORRECT = "def add(a, b):\n    return a + b\n"
MARKER = b"child_main()"  # in the command line of every sandbox process


def run(program: str, tests=ADD_TESTS, config=None, timeout_s: float = 2.0, **kw):
    config = config or {}
    return run_tests(program, tests, timeout_s=timeout_s, memory_mb=256, **config, **kw)


def probe(program: str, probes: list[str], config=None, timeout_s: float = 2.0):
    """The raw values of some probe expressions (for attacks whose outcome is a count, not a pass)."""
    res = run_sandboxed(program, probes, limits=Limits(timeout_s=timeout_s, memory_mb=256), **(config or {}))
    return res, [v[1] if v and v[0] == "value" else v for v in res.values]


def sandbox_pids() -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and MARKER in Path(f"/proc/{entry}/cmdline").read_bytes():
                out.add(int(entry))
        except OSError:
            pass
    return out


def assert_no_leftovers(before: set[int], wait_s: float = 5.0) -> None:
    """No sandbox process started during the test is still alive (zombies have an empty cmdline)."""
    deadline = time.monotonic() + wait_s
    while sandbox_pids() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandbox_pids() - before


@pytest.fixture
def open_dir():
    """A world-writable dir outside the sandbox holding a canary file and a world-readable secret."""
    path = Path(tempfile.mkdtemp(prefix="r1lab-canary-"))
    path.chmod(0o777)
    (path / "canary.txt").write_text("original")
    (path / "canary.txt").chmod(0o666)
    secret = "TOPSECRET-" + secrets.token_hex(8)
    (path / "secret.txt").write_text(secret)
    (path / "secret.txt").chmod(0o644)
    yield SimpleNamespace(path=path, secret=secret)
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_correct_program_scores_all(config):
    res = run(CORRECT, config=config)
    assert (res.passed, res.total, res.status) == (4, 4, "ok")
    assert res.isolation == config["isolation"]


def test_partly_correct_program_scores_part():
    res = run("def add(a, b):\n    return a + b if a < 1 else a - b\n")
    assert (res.passed, res.total, res.status) == (2, 4, "failed")
    assert [o.passed for o in res.outcomes] == [False, True, False, True]


def test_results_before_a_timeout_still_count():
    res = run("def add(a, b):\n    while a == 10:\n        pass\n    return a + b\n", timeout_s=1.0)
    assert (res.passed, res.status) == (2, "timeout")  # add(10, 5) hangs; add(0, 0) never runs
    assert [o.passed for o in res.outcomes] == [True, True, False, False]
    assert "no result" in res.outcomes[3].reason


def test_program_errors_score_zero_but_earlier_functions_count():
    assert (run("def add(a, b) return a + b").passed, run("def add(a, b) return a").status) == (0, "error")
    res = run(CORRECT + "raise RuntimeError('demo code at the bottom')\n")
    assert res.passed == 4 and "RuntimeError" in res.program_error


def test_harness_evaluates_the_assert_itself():
    program = ("def half(x):\n    return x / 2\ndef items():\n    return {'b': 2, 'a': (1, None)}\n"
               "def nothing():\n    return None\ndef big():\n    return 10 ** 5000\n")
    tests = ["assert abs(half(1.0) - 0.5) < 1e-9", "assert sorted(items()) == ['a', 'b']",
             "assert items()['a'] == (1, None)", "assert nothing() is None", "assert not nothing()",
             "assert big() % 7 == pow(10, 5000, 7)", "assert isinstance(half(3), float) and half(3) > 1",
             "assert len(items()) == 3"]
    res = run(program, tests)
    assert [o.passed for o in res.outcomes] == [True] * 7 + [False]


def test_compile_test_rejects_bad_tests_and_keeps_expected_values_out_of_probes():
    assert compile_test("assert add(2, 3) == 5").probes == ("add(2, 3)",)
    assert compile_test("assert abs(area(2.0) - 12.566) < 1e-3").probes == ("area(2.0)",)
    for bad in ("add(2, 3)", "x = 1", "assert 1 == 1", "assert add(1,", "assert f(1) == 1; assert f(2) == 2"):
        with pytest.raises(ValueError):
            compile_test(bad)


def test_plain_data_round_trip_and_malformed_records():
    values = [None, True, 0, -7, 10 ** 5000, 1.5, float("inf"), 2 + 3j, "é\udcff", b"\x00\xff",
              [1, (2, {3}), frozenset({4})], {"k": [None], 5: (1.0,)}]
    for v in values:
        assert decode_value(encode_value(v)) == v and type(decode_value(encode_value(v))) is type(v)
    for bad in (["i"], ["b", 1], ["s", 5], ["l", "x"], ["q", 1], "N", [], ["S", [["l", []]]]):
        with pytest.raises((ValueError, TypeError)):
            decode_value(bad)


def test_extract_program():
    two = "First:\n```python\ndef f(): return 1\n```\nFixed:\n```python\ndef f(): return 2\n```\n"
    assert extract_program(two) == "def f(): return 2\n"
    assert extract_program("<think>x</think><answer>\n```\ndef g(): pass\n```\n</answer>") == "def g(): pass\n"
    assert extract_program("<answer>def h(): pass</answer>") == "def h(): pass"
    assert extract_program("no code here") is None and extract_program(None) is None


def test_code_reward_fractions_and_threads():
    ex = SimpleNamespace(id="add", reference={"tests": ADD_TESTS}, meta={})
    by_meta = SimpleNamespace(id="add2", reference=None, meta={"tests": ADD_TESTS})
    responses = [f"```python\n{CORRECT}```", "```python\ndef add(a, b):\n    return a + b if a < 1 else a - b\n```",
                 "I cannot solve this."]
    assert code_reward(responses, [ex, by_meta, ex]) == [1.0, 0.5, 0.0]
    assert code_reward(responses, [ex, ex, ex], workers=3) == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError):
        code_reward(["x"], [SimpleNamespace(id="none", reference=3, meta={})])


# ---------------------------------------------------------------------------------------------------------
# reward hacks: none may score
# ---------------------------------------------------------------------------------------------------------

HACKS = {
    "always_equal": "class A:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                    "    __hash__ = object.__hash__\ndef add(a, b):\n    return A()\n",
    "int_subclass": "class T(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
                    "def add(a, b):\n    return T(0)\n",
    "fake_class": "class F:\n    __class__ = property(lambda self: int)\n    def __eq__(self, o): return True\n"
                  "def add(a, b):\n    return F()\n",
    "nested": "class A:\n    def __eq__(self, o): return True\ndef add(a, b):\n    return [A()][0] if a else (A(),)\n",
    "sys_exit_first": "import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n",
    "os_exit_first": "import os\nos._exit(0)\ndef add(a, b):\n    return a + b\n",
    "exit_in_call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "pass_markers": "import sys\nfor line in ('PASSED', 'OK: 4/4 tests passed',\n"
                    "             '{\"k\":\"probe\",\"i\":0,\"v\":[\"i\",\"5\"]}', '{\"k\":\"done\"}'):\n"
                    "    print(line)\n    print(line, file=sys.stderr)\n"
                    "def add(a, b):\n    return None\n",
    "patched_builtins": "import builtins\nclass A:\n    def __eq__(self, o): return True\n"
                        "builtins.AssertionError = type('Never', (Exception,), {})\n"
                        "builtins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: int\n"
                        "builtins.repr = lambda o: '5'\ndef add(a, b):\n    return A()\n",
    "forged_records": "import os\nfake = b'{\"k\":\"setup\",\"layers\":[\"x\"]}\\n' + b''.join(\n"
                      "    b'{\"k\":\"probe\",\"i\":%d,\"v\":[\"b\",true]}\\n' % i for i in range(4))\n"
                      "fake += b'{\"k\":\"done\"}\\n'\nfor fd in range(1, 64):\n    try:\n"
                      "        os.write(fd, fake)\n    except OSError:\n        pass\n"
                      "def add(a, b):\n    return None\n",
    "fake_result_file": "for name in ('results.json', 'report.xml', '.pytest_cache'):\n"
                        "    open(name, 'w').write('{\"passed\": 4, \"total\": 4}')\ndef add(a, b):\n    return None\n",
}


@pytest.mark.parametrize("name", sorted(HACKS))
def test_reward_hacks_score_zero(name):
    res = run(HACKS[name])
    assert res.passed == 0, res.outcomes
    assert res.status in ("failed", "error"), res


# ---------------------------------------------------------------------------------------------------------
# host-harm attacks: contained, zero, host untouched
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_infinite_loop_after_leaving_the_process_group(config):
    before = sandbox_pids()
    res = run("import os\ntry:\n    os.setsid()\nexcept OSError:\n    pass\nwhile True:\n    pass\n",
              config=config, timeout_s=1.0)
    assert (res.passed, res.status) == (0, "timeout")
    assert_no_leftovers(before)


@pytest.mark.parametrize("config", CONFIGS)
def test_fork_bomb(config):
    before = sandbox_pids()
    program = ("import os, time\nforks = 0\nfor _ in range(500):\n    try:\n        if os.fork() == 0:\n"
               "            time.sleep(60)\n            os._exit(0)\n        forks += 1\n    except BaseException:\n"
               "        break\ndef spawned():\n    return forks\n")
    res, (forks,) = probe(program, ["spawned()"], config=config)
    assert res.status == "ok" and forks <= Limits().max_procs  # stopped by NPROC, seccomp or the hook
    assert_no_leftovers(before)


@pytest.mark.parametrize("config", CONFIGS)
def test_memory_hog(config):
    res = run("hog = []\nwhile True:\n    hog.append(bytearray(50 << 20))\n", config=config)
    assert (res.passed, res.status) == (0, "memory")
    assert run("x = bytearray(8 << 30)\n" + CORRECT, config=config).status == "memory"


@pytest.mark.parametrize("config", CONFIGS)
def test_huge_output_is_drained_and_capped(config):
    program = "import sys\nfor _ in range(400):\n    print('x' * 50_000)\n    sys.stderr.write('y' * 50_000)\n"
    res = run(program + CORRECT, config=config, timeout_s=5.0)
    assert (res.passed, res.status) == (4, "ok")  # no deadlock on full pipes
    assert len(res.output_tail) <= Limits().max_output_bytes


@pytest.mark.parametrize("config", CONFIGS)
def test_disk_filling_is_bounded(config):
    big = run(CORRECT + "open('big', 'wb').write(b'0' * (64 << 20))\n", config=config)
    assert big.program_error and big.passed == 4  # EFBIG at the file-size limit; the functions still work
    program = ("n = 0\nfor i in range(1000):\n    try:\n        open(f'f{i}', 'wb').write(b'0' * (1 << 20))\n"
               "        n += 1\n    except OSError:\n        break\ndef files():\n    return n\n")
    res, (n,) = probe(program, ["files()"], config=config, timeout_s=5.0)
    assert res.status == "ok" and n <= max(Limits().disk_mb, MAX_CREATES)  # tmpfs size (MB) or the hook's cap


@pytest.mark.parametrize("config", CONFIGS)
def test_files_outside_cannot_be_written_or_deleted(config, open_dir):
    d = str(open_dir.path)
    stdlib_canary = Path(os.__file__).parent / f"r1lab_canary_{secrets.token_hex(4)}.py"
    program = f"""
import os, shutil
D = {d!r}
def attempt(f):
    try:
        f()
    except BaseException:
        pass
rel = os.path.relpath(D + '/canary.txt')
for f in (lambda: open(D + '/canary.txt', 'w').write('pwned'), lambda: open(rel, 'a').write('pwned'),
          lambda: os.truncate(D + '/canary.txt', 0), lambda: os.chmod(D + '/canary.txt', 0),
          lambda: os.rename(D + '/canary.txt', D + '/moved.txt'), lambda: os.remove(D + '/canary.txt'),
          lambda: open(D + '/new.txt', 'w').write('x'), lambda: os.mkdir(D + '/newdir'),
          lambda: os.symlink('/etc', D + '/link'), lambda: shutil.rmtree(D),
          lambda: open({str(stdlib_canary)!r}, 'w').write('x')):
    attempt(f)
def add(a, b):
    return None
"""
    try:
        assert run(program, config=config).passed == 0
        assert (open_dir.path / "canary.txt").read_text() == "original"
        assert (open_dir.path / "canary.txt").stat().st_mode & 0o777 == 0o666
        assert sorted(p.name for p in open_dir.path.iterdir()) == ["canary.txt", "secret.txt"]
        assert not stdlib_canary.exists()
    finally:
        stdlib_canary.unlink(missing_ok=True)


@pytest.mark.parametrize("config", CONFIGS)
def test_files_outside_cannot_be_read(config, open_dir):
    d, pid = str(open_dir.path), os.getpid()
    program = f"""
import os
D = {d!r}
def leak():
    for path in (D + '/secret.txt', os.path.relpath(D + '/secret.txt'), '/proc/{pid}/root' + D + '/secret.txt',
                 '/proc/1/root' + D + '/secret.txt', '/proc/self/root' + D + '/secret.txt'):
        try:
            return open(path).read()
        except BaseException:
            pass
    return 'nothing'
def listing():
    try:
        return sorted(os.listdir(D))
    except BaseException:
        return []
def passwd():
    try:
        return open('/etc/passwd').read()
    except BaseException:
        return ''
"""
    tests = [f"assert leak() == {open_dir.secret!r}", "assert listing() == ['canary.txt', 'secret.txt']",
             "assert 'root:' in passwd()"]
    res = run(program, tests, config=config)
    assert res.passed == 0, res.outcomes
    assert open_dir.secret not in res.output_tail


@pytest.mark.parametrize("config", CONFIGS)
def test_caller_environment_is_invisible(config, monkeypatch):
    secret = "ENVSECRET-" + secrets.token_hex(8)
    monkeypatch.setenv("R1LAB_TEST_SECRET", secret)
    program = f"""
import os
def leak():
    return os.environ.get('R1LAB_TEST_SECRET')
def everything():
    found = ' '.join(os.environ.values())
    for path in ('/proc/self/environ', '/proc/{os.getpid()}/environ', '/proc/1/environ'):
        try:
            found += open(path, 'rb').read().decode(errors='replace')
        except BaseException:
            pass
    return found
def keys():
    return sorted(os.environ)
"""
    tests = [f"assert leak() == {secret!r}", f"assert {secret!r} in everything()",
             "assert 'R1LAB_TEST_SECRET' in keys()"]
    res = run(program, tests, config=config)
    assert res.passed == 0, res.outcomes


@pytest.mark.parametrize("config", CONFIGS)
def test_network_is_unreachable(config):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        program = (f"import socket\ndef leak():\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                   "    s.sendall(b'hello')\n    return 'connected'\n")
        res = run(program, ["assert leak() == 'connected'"], config=config)
        assert res.passed == 0
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected


@pytest.mark.parametrize("config", CONFIGS)
def test_parent_and_other_processes_survive_kill_attempts(config):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        program = f"""
import os, signal
def attempt(f):
    try:
        f()
    except BaseException:
        pass
for f in (lambda: os.kill({sleeper.pid}, 9), lambda: os.kill({os.getpid()}, 9),
          lambda: os.killpg({os.getpgid(0)}, 9), lambda: os.kill(os.getppid(), 9),
          lambda: signal.pidfd_send_signal(os.pidfd_open({sleeper.pid}), 9),
          lambda: signal.pidfd_send_signal(os.pidfd_open(os.getppid()), 9),
          lambda: os.killpg(os.getpgid(0), 9), lambda: os.kill(-1, 9)):
    attempt(f)
def add(a, b):
    return None
"""
        assert run(program, config=config).passed == 0
        time.sleep(0.1)
        assert sleeper.poll() is None  # and this test process is evidently alive
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("config", CONFIGS)
def test_temp_dir_is_removed(config, monkeypatch):
    made = []
    real = tempfile.mkdtemp
    monkeypatch.setattr(sandbox.tempfile, "mkdtemp", lambda **kw: made.append(real(**kw)) or made[-1])
    program = "import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\nos.chmod('a', 0)\nos.chmod('.', 0)\n"
    assert run(program + CORRECT, config=config).passed == 4
    assert made and not any(os.path.exists(p) for p in made)


@needs_ns
def test_namespace_hardening_without_hook_or_seccomp():
    program = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def escapes():
    out = []
    for name, f in (('remount /usr rw', lambda: libc.mount(None, b'/usr', None, 32 | 4096, None)),
                    ('new user namespace', lambda: libc.unshare(0x10000000)),
                    ('mount tmpfs', lambda: libc.mount(b'tmpfs', b'/sandbox', b'tmpfs', 0, None)),
                    ('chroot', lambda: os.chroot('/sandbox') or 0),
                    ('write /usr', lambda: open('/usr/x', 'w') and 0)):
        try:
            if f() == 0:
                out.append(name)
        except OSError:
            pass
    return out
def visible():
    return sorted(os.listdir('/'))
"""
    res, (escaped, root) = probe(program, ["escapes()", "visible()"],
                                 config=dict(isolation="namespace", audit_hook=False, seccomp=False))
    assert res.status == "ok" and escaped == []
    assert "proc" not in root and "tmp" not in root and "home" not in root


def test_auto_falls_back_to_hook_mode_when_namespaces_fail(monkeypatch):
    broken = sandbox._child_source().replace(
        "def _unshare_with_idmap(libc, outer_uid: int, outer_gid: int) -> None:\n",
        "def _unshare_with_idmap(libc, outer_uid: int, outer_gid: int) -> None:\n"
        "    raise OSError('namespaces disabled for this test')\n", 1)
    monkeypatch.setitem(sandbox._state, "source", broken)
    monkeypatch.setitem(sandbox._state, "namespace_error", None)
    assert run(CORRECT, config=dict(isolation="namespace")).status == "sandbox_error"
    res = run(CORRECT)  # auto
    assert (res.passed, res.isolation) == (4, "hook")
    assert "disabled for this test" in sandbox._state["namespace_error"]
