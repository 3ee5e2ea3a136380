"""The one reader of /proc/.../stat lines (csrc/procstat.c), which the
tracer's step limit, the front's job control, /dev/tty's terminal, the
walks of a group or a session and the exec notes all read through. A
process names itself (prctl PR_SET_NAME: any 15 bytes, ")" and spaces and
digits included) to make its line say something else: the fields are
counted from the last ")", which no later field can hold."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sandbox._yama import ffi, lib

LINE = b"4242 (%s) S 1 4242 4240 34817 4242 4194560 " + b" ".join(b"%d" % n for n in range(10, 53))


def fields(line: bytes, *want: int):
    out = ffi.new("long long[]", len(want))
    rc = lib.yr_stat_fields(line, ffi.new("int[]", list(want)), len(want), out)
    return None if rc < 0 else list(out)


@pytest.mark.parametrize("name", [b"bash", b") T 9 9 9 9", b"a) R 7 (b", b"x\ny) D 3", b"))", b" "])
def test_the_fields_are_counted_from_the_names_last_parenthesis(name):
    assert fields(LINE % name, 3, 4, 5, 6, 7, 22, 52) == [ord("S"), 1, 4242, 4240, 34817, 22, 52]


def test_a_line_that_lacks_a_field_wanted_is_refused():
    assert fields(b"4242 (a) S 1 2", 3, 4, 5) == [ord("S"), 1, 2]
    assert fields(b"4242 (a) S 1 2", 3, 4, 5, 6) is None
    assert fields(b"4242 (a) S 1 2\n", 7) is None
    assert fields(b"4242 a S 1 2 3", 3) is None         # no name: nothing to count from
    assert fields(b"4242 (a) S x 2", 4) is None         # not a number


def test_a_process_named_like_a_stopped_one_is_read_as_it_is():
    """A process that names itself ") T 1 1 1 1" sleeps: read S (the front
    would have mirrored a stop that never was), its parent ours."""
    child = subprocess.Popen([sys.executable, "-c", (
        "import ctypes, sys, time\n"
        "ctypes.CDLL(None).prctl(15, b') T 1 1 1 1', 0, 0, 0)\n"
        "print('named', flush=True)\n"
        "time.sleep(30)\n")], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"named\n"
        path = f"/proc/{child.pid}/stat".encode()
        deadline = time.monotonic() + 10
        while True:             # between its print and its sleep it still runs: R
            with open(path, "rb") as f:
                line = f.read()
            if not line.startswith(b"%d () T 1 1 1 1) R " % child.pid):
                break
            assert time.monotonic() < deadline, line
            time.sleep(0.01)
        assert line.startswith(b"%d () T 1 1 1 1) S " % child.pid), line
        assert lib.yr_stat_state(path) == b"S"
        assert fields(line, 4) == [os.getpid()]
    finally:
        child.kill()                # our own child, by its pid
        child.wait()
