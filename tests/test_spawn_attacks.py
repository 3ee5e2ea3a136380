"""Attacks on the program's process before its exec (csrc/spawn.c): it runs
in the supervisor's memory (CLONE_VM) until the exec, which the supervisor
answers after it made itself non-dumpable. Each test attempts the attack and
asserts that the forbidden effect never happens."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from as_user import as_user  # noqa: F401  (fixture)


@pytest.fixture
def planted(sysctl):
    """A stranger's (uid 1002) symlink to /bin/true in a sticky world-writable
    directory, the kernel's own protection off: the symlinks module (level 1)
    refuses to follow it for uid 1001, whatever call follows it."""
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


NONDUMPABLE_EXEC = """
import ctypes, os, sys
assert ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) == 0     # PR_SET_DUMPABLE 0
try:
    os.execv(sys.argv[1], [sys.argv[1], sys.argv[2]])
except OSError as e:
    print(e.errno)
    sys.exit(3)
"""


@pytest.mark.parametrize("userns", ["auto", "never"])
def test_a_nondumpable_program_does_not_exec_through_a_planted_link(as_user, planted, userns):
    """A program that made itself non-dumpable (as ssh-agent, browsers do)
    execs a stranger's link. Without a user namespace the supervisor cannot
    open the caller's /proc/PID/root to walk the path: its calls fail closed
    (docs/everyday.md), a checked call too, never continued unchecked."""
    marker = planted / "ran"
    (planted / "tool").unlink()
    os.symlink(shutil.which("touch"), planted / "tool")     # the link runs touch MARKER
    os.lchown(planted / "tool", 1002, 1002)
    r = as_user.run(f"--userns={userns}", "--", "/usr/bin/python3", "-c", NONDUMPABLE_EXEC,
                    str(planted / "tool"), str(marker))
    assert not marker.exists()
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.strip() in ("1", "13"), r.stdout      # EPERM (not served) or EACCES
