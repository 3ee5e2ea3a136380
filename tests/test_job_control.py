"""Job control through yama-run: a program that stops itself stops the job the shell
waits for (the front stops with the same signal), a `fg` continues the program, and a
stopped program whose shell goes away goes too, as the kernel ends a stopped process
group that becomes orphaned (SIGHUP, then SIGCONT). Each run is a job of a small
job-control shell (tests/helpers/jobshell.py), the session leader of a pty."""
from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import HELPERS, requires_root

pytestmark = requires_root

JOBSHELL = str(HELPERS / "jobshell.py")
# A program that moves to a process group of its own first, as `bash -i` does,
# then stops itself.
OWN_GROUP = [sys.executable, "-c",
             "import os, signal; os.setpgid(0, 0); os.kill(os.getpid(), signal.SIGSTOP); "
             "print('resumed')"]


class Shell:
    """jobshell.py MODE yama-run -- COMMAND, in a pty of its own."""

    def __init__(self, mode: str, yama_run: Path, command: list[str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(sys.executable, [sys.executable, JOBSHELL, mode, str(yama_run),
                                      "--backend", "notify", "--", *command])
        self.out = ""

    def read_line(self, start: str, timeout: float = 30) -> str:
        """Everything read until a whole line that begins with start."""
        deadline = time.monotonic() + timeout
        while (not re.search(rf"^{start}.*\n", self.out, re.M)
               and time.monotonic() < deadline):
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.out += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:
                    break           # EIO: the terminal's last user is gone
        return self.out

    def close(self) -> int:
        os.close(self.fd)
        return os.waitpid(self.pid, 0)[1]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("command, stop", [
    (["sh", "-c", "kill -STOP $$; echo resumed"], signal.SIGSTOP),
    (["sh", "-c", "kill -TSTP $$; echo resumed"], signal.SIGTSTP),
    (OWN_GROUP, signal.SIGSTOP),
], ids=["sigstop", "sigtstp", "own-group"])
def test_a_program_that_stops_itself_stops_the_job_and_fg_resumes_it(installed, command, stop):
    shell = Shell("fg", installed, command)
    try:
        out = shell.read_line("exit ")
    finally:
        shell.close()
    assert f"stopped {int(stop)}" in out, out
    assert "resumed" in out, out
    assert "exit 0" in out, out


def test_a_program_killed_while_stopped_ends_the_job(installed):
    """The job's status is the program's (killed by SIGKILL: -9), without a `fg`."""
    shell = Shell("kill", installed, ["sh", "-c", "kill -STOP $$; echo resumed"])
    try:
        out = shell.read_line("(exit |still stopped|never stopped)")
    finally:
        shell.close()
    assert "stopped 19" in out, out
    assert "exit -9" in out, out
    assert "resumed" not in out, out


def test_a_stopped_program_goes_when_its_shell_goes(installed):
    shell = Shell("hangup", installed, OWN_GROUP)
    pids: list[int] = []
    try:
        out = shell.read_line("pids ")
        line = next(line for line in out.splitlines() if line.startswith("pids "))
        pids = [int(p) for p in line.split()[1:]]
        deadline = time.monotonic() + 5
        while any(map(alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in pids if alive(p)]
        assert not left, f"still there (front, supervisor, program): {left} of {pids}"
        assert "stopped 19" in out, out
    finally:
        for pid in pids:            # the old code's: ended by pid
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shell.close()
