"""The caller's memory is reached only while it is the caller's (csrc/caller.c).

A call can be held up for as long as its caller likes (a path in a
userfaultfd page nobody fills, a walk through its own FUSE mount); meanwhile
the caller may be killed and reaped, and its number taken by another task: a
process outside, or a new thread of the supervisor's. What the supervisor
writes back (a stat's result) must then reach nobody. Found by a review: a
root-started yama-run wrote a stalled stat's 144 bytes, at the address the
dead caller chose, into an outside process that took its number, and into
its own memory (a worker thread took it)."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from conftest import YAMA_RUN, requires_root, tree_env
from test_escape_caches import spawn_as_pid


@pytest.mark.parametrize("profile", [["--profile", "strict"], []], ids=["strict", "default"])
@requires_root
def test_a_stalled_stat_never_writes_into_the_task_that_took_its_callers_number(
        helper, tmp_path, profile):
    attacker, victim = helper("stalled_stat"), helper("fixed_buffer_victim")
    with open(tmp_path / "big", "wb") as f:
        f.truncate(0x4142434445)              # its size is what the stat would write
    for attempt in range(5):
        for name in ("pid", "victim"):
            (tmp_path / name).unlink(missing_ok=True)
        run = subprocess.Popen([*YAMA_RUN, "-q", *profile, "--", attacker, str(tmp_path)],
                               env=tree_env(None), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 20
            while not (tmp_path / "pid").exists():
                assert run.poll() is None, run.communicate()[0]
                assert time.monotonic() < deadline, "the caller never stalled the supervisor"
                time.sleep(0.02)
            time.sleep(0.05)                   # the whole number written
            dead = int((tmp_path / "pid").read_text())
            outside = spawn_as_pid(dead, [victim, str(tmp_path), "2"])
            if outside is None:
                continue                       # another process of the machine took it
            status = outside.wait(timeout=20)
            assert status == 0, "the dead caller's stat result was written into " \
                                "the outside process that took its number"
            assert run.wait(timeout=30) == 0
            return
        finally:
            if run.poll() is None:
                run.kill()
            run.wait()
    pytest.skip("no try gave the dead caller's number to the outside process")
