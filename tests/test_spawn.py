"""The program's process before its exec (csrc/spawn.c): a child that shares
the supervisor's memory (CLONE_VM) and execs from an arena of its own, which
the supervisor reclaims once the kernel says the child left its memory."""
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, YAMA_RUN, tree_env, yama_run

ECHO = "import sys, os; sys.stdout.write(repr((sys.argv[1:], os.environ['BIG'])))"


def test_the_program_gets_its_arguments_and_environment_intact():
    """The exec is a notified call, answered after the spawn returned and its
    caller's buffers were freed: what the program gets is the arena's copy.
    Many arguments and a large variable, as the caller gave them."""
    args = [f"argument {i} " + "x" * (i % 50) for i in range(2000)] + ["", "é", "--"]
    big = "".join(chr(65 + i % 26) for i in range(100_000))
    r = yama_run("--", sys.executable, "-c", ECHO, *args, env=tree_env({"BIG": big}),
                 timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == repr((args, big))


SPAWN_LOOP = """
import posix, sys
sys.path.insert(0, {root!r})
from sandbox._yama import ffi, lib

def arenas():
    with open("/proc/self/maps") as maps:        # our arenas: a guard page, then rw
        return sum(1 for line in maps if " ---p 00000000 00:00 0" in line)

def spawn_true():
    keep = [ffi.new("char[]", b"/bin/true")]
    argv = ffi.new("char *[]", [keep[0], ffi.NULL])
    envp = ffi.new("char *[]", [ffi.NULL])
    out = ffi.new("struct yr_spawn_result *")
    assert lib.yr_spawn_path(keep[0], argv, envp, ffi.NULL, ffi.NULL, 0, 0, 0, out) == 0
    _, status = posix.waitpid(out.pid, 0)
    assert posix.read(out.status_fd, 8) == b""        # the exec succeeded
    posix.close(out.status_fd)
    assert posix.waitstatus_to_exitcode(status) == 0

spawn_true()
before = arenas()
for _ in range(50):
    spawn_true()
print(arenas() - before)
"""


def test_spawn_arenas_are_reclaimed():
    """Fifty programs spawned one after another by one process: each arena is
    unmapped at the next spawn, once its child has exec'd (the kernel cleared
    its tid word), so at most the last one is still mapped."""
    r = subprocess.run([sys.executable, "-c", SPAWN_LOOP.format(root=ROOT)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) <= 1


def test_a_program_not_found_is_said_from_the_arena():
    """The PATH search runs in the child on the arena's copy of PATH: a
    program on none of its entries is 127 and named, as natively."""
    env = tree_env({"PATH": "/nonexistent-a:/nonexistent-b:/usr/bin"})
    r = yama_run("--", "no-such-program-yr", env=env)
    assert r.returncode == 127
    assert "no-such-program-yr: No such file or directory" in r.stderr
    r = yama_run("--", "true", env=env)
    assert r.returncode == 0, r.stderr


def test_the_program_starts_with_the_dispositions_of_a_native_start(installed):
    """The child resets every handler of the supervisor's before it lets a
    signal in (a handler run there would act in the supervisor's memory),
    and the two signals Python ignores for itself (SIGPIPE, SIGXFSZ) to
    what the caller had (the next test), here the default. A
    signal its caller ignored (nohup's SIGHUP) stays ignored, and one its
    own shell ignores too. The program's ignored, caught and blocked signals
    are then a native start's, through the installed command as through
    `python3 -m sandbox.cli`."""
    show = "exec grep -E '^Sig(Ign|Cgt|Blk)' /proc/self/status"
    native = subprocess.run(["sh", "-c", f"trap '' HUP; {show}"], capture_output=True,
                            text=True, timeout=60)
    assert "SigIgn:\t0000000000000001\n" in native.stdout
    r = yama_run("--", "sh", "-c", f"trap '' HUP; {show}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == native.stdout
    for command in ([str(installed)], YAMA_RUN):     # the caller ignores SIGHUP
        r = subprocess.run(["sh", "-c", 'trap "" HUP; exec "$@"', "sh", *command, "--", "sh",
                            "-c", show], capture_output=True, text=True, timeout=60,
                           env=tree_env())
        assert r.returncode == 0, r.stderr
        assert r.stdout == native.stdout, command


@pytest.mark.parametrize("caller", ["ignores", "defaults"])
def test_sigpipe_and_sigxfsz_start_as_the_caller_had_them(installed, tmp_path, caller):
    """Python ignores SIGPIPE and SIGXFSZ for itself as it starts, so the
    supervisor cannot tell its caller's dispositions from its own: the
    launcher reads them first and the program starts with them. A caller
    that ignores both (a systemd service: IgnoreSIGPIPE=yes) runs `yes |
    head` with EPIPE (status 1, not killed: 141) and a write past `ulimit
    -f` with EFBIG (status 1, not killed by SIGXFSZ: 153), as natively; a
    caller that does not gets the defaults. The cold path, then the cached."""
    ignore = "trap '' PIPE XFSZ; " if caller == "ignores" else ""
    big = tmp_path / "big"
    script = (f'{ignore}$0 yes | head -1 >/dev/null; echo "yes ${{PIPESTATUS[0]}}"; '
              f'(ulimit -f 1024; $0 dd if=/dev/zero of={big} bs=1M count=2; '
              'echo "dd $?"); $0 grep SigIgn /proc/self/status')
    env = tree_env({"PATH": os.environ["PATH"], "XDG_CACHE_HOME": str(tmp_path / "cache"),
                    "HOME": str(tmp_path)})
    native = subprocess.run(["bash", "-c", script, "env"], capture_output=True, text=True,
                            timeout=60, env=env)
    want = {"ignores": ["yes 1", "dd 1"], "defaults": ["yes 141", "dd 153"]}[caller]
    assert native.stdout.splitlines()[:2] == want, native
    time.sleep(1.1)     # a plan is kept only when no input (HOME, new) changed in the last second
    for path in ("cold", "cached"):
        r = subprocess.run(["bash", "-c", script, f"{installed} -v"], capture_output=True,
                           text=True, timeout=60, env=env)
        assert r.stdout == native.stdout, (path, r.stderr)
        assert r.stderr.count("plan: from the cache") == (3 if path == "cached" else 0), r.stderr
