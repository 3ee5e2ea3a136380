"""Attacks on the program's process before its exec (csrc/spawn.c). Started
by root, it runs in the supervisor's memory (CLONE_VM) until the exec, which
the supervisor answers after it made itself non-dumpable; started by anyone
else it is forked. Each test attempts the attack and asserts that the
forbidden effect never happens."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from as_user import as_user  # noqa: F401  (fixture)
from conftest import yama_run


@pytest.fixture
def planted(sysctl):
    """A stranger's (uid 1002) symlink to /bin/true in a sticky world-writable
    directory, the kernel's own protection off: the symlinks module (level 1)
    refuses to follow it for uid 1001 and root, whatever call follows it.
    Root only: the link is another uid's."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the link is another uid's")
    sysctl("fs.protected_symlinks", 0)
    d = Path(tempfile.mkdtemp(prefix="yr-planted-", dir="/tmp"))
    d.chmod(0o1777)
    os.symlink("/bin/true", d / "tool")
    os.lchown(d / "tool", 1002, 1002)
    yield d
    shutil.rmtree(d, ignore_errors=True)


DENIED = 126


@pytest.mark.parametrize("userns", ["auto", "never"])
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_the_first_exec_does_not_follow_a_planted_link(as_user, planted, userns, how):
    """A user runs `yama-run -- /tmp/shared/tool` where another user planted
    `tool` as a symlink. The first exec is the program's process's own
    notified execve, walked by the supervisor while that process still
    shares its memory, after the supervisor made that memory non-dumpable:
    the walk must still open the process's root and cwd, not give up and let
    the kernel follow the link. Any later exec is refused; so is the first."""
    program = str(planted / "tool") if how == "absolute" else "./tool"
    r = as_user.run(f"--userns={userns}", "--", program, cwd=str(planted))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    assert "Permission denied" in r.stderr
    # The same exec made by the program itself: refused, as it always was.
    r = as_user.run(f"--userns={userns}", "--", "/bin/sh", "-c", f"exec {program}",
                    cwd=str(planted))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    # And a program that is no planted link starts (the walk's fallback is
    # not a refusal of every first exec).
    r = as_user.run(f"--userns={userns}", "--", "/bin/true", cwd=str(planted))
    assert r.returncode == 0, r.stderr
    r = as_user.run(f"--userns={userns}", "--", "true", cwd=str(planted),
                    env={"PATH": f"{planted}/none:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


def test_roots_first_exec_does_not_follow_a_planted_link(planted):
    """The same planted link run by root, whose program's process shares the
    supervisor's memory until its exec: the first exec is walked from that
    process's /proc root and cwd, which root opens though the memory is
    non-dumpable by then, and the link is refused (the symlinks rule has no
    capability override, as the kernel's)."""
    r = yama_run("--", str(planted / "tool"), cwd=str(planted))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    assert "Permission denied" in r.stderr
    r = yama_run("--", "/bin/true", cwd=str(planted))
    assert r.returncode == 0, r.stderr


NONDUMPABLE_EXEC = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(4, 0, 0, 0, 0) == 0                  # PR_SET_DUMPABLE 0
how, link, marker = sys.argv[1:]
try:
    if how == "path":
        os.execv(link, [link, marker])
    elif how == "cwd":                                 # relative to the cwd
        os.chdir(os.path.dirname(link))
        os.execv("./tool", ["tool", marker])
    else:                                              # execveat from a directory fd
        dirfd = os.open(os.path.dirname(link), os.O_PATH | os.O_DIRECTORY)
        argv = (ctypes.c_char_p * 3)(b"tool", marker.encode(), None)
        envp = (ctypes.c_char_p * 1)(None)
        libc.syscall(322, dirfd, b"tool", argv, envp, 0)   # x86-64 execveat
        raise OSError(ctypes.get_errno(), "execveat")
except OSError as e:
    print(e.errno)
    sys.exit(3)
"""


@pytest.mark.parametrize("how", ["path", "cwd", "dirfd"])
@pytest.mark.parametrize("userns", ["auto", "never"])
def test_a_nondumpable_program_does_not_exec_through_a_planted_link(as_user, planted, userns,
                                                                      how):
    """A program that made itself non-dumpable (as ssh-agent, browsers do)
    execs a stranger's link: by its path, relative to its cwd, and by
    execveat from a directory descriptor. Without a user namespace the
    supervisor cannot open the caller's /proc/PID/root, cwd or fd/N to walk
    the path: its calls fail closed (docs/everyday.md), a checked call too,
    never continued unchecked."""
    marker = planted / "ran"
    (planted / "tool").unlink()
    os.symlink(shutil.which("touch"), planted / "tool")     # the link runs touch MARKER
    os.lchown(planted / "tool", 1002, 1002)
    r = as_user.run(f"--userns={userns}", "--", "/usr/bin/python3", "-c", NONDUMPABLE_EXEC,
                    how, str(planted / "tool"), str(marker))
    assert not marker.exists()
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.strip() in ("1", "13"), r.stdout      # EPERM (not served) or EACCES
