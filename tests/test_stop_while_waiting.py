"""A process whose open waits in a worker (a FIFO without a writer, a
terminal, a device: csrc/worker.c) can be stopped, as natively.

The caller waits in seccomp's killable wait, which only a fatal signal ends;
its worker looked, every 100 ms, only for a pending signal the program
catches, so Ctrl-Z on `cat fifo` did nothing: the process stayed in D and
ran on once the open completed. Natively it stops at once and the open is
restarted after SIGCONT. The worker now also answers ERESTARTSYS for a
pending stop signal at its default action, and for a stop of the process
already in progress (another thread took the signal and stopped)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from as_user import AS_USER
from conftest import TEST_BACKEND, public_copy, requires_root, yama_run

pytestmark = requires_root

SIGNALS = {"SIGTSTP": signal.SIGTSTP, "SIGSTOP": signal.SIGSTOP}
# alone: the child has one thread; leader: its main thread opens while
# another runs; thread: another thread opens while the main one runs (the
# main thread takes the signal, a group stop reaches the waiting thread)
MODES = ["alone", "leader", "thread"]


@pytest.fixture
def probe(helper):
    """The probe and a FIFO nobody writes, where uid 1001 may use them."""
    exe, where = public_copy(helper("stop_while_waiting"), "stop_while_waiting")
    fifo = os.path.join(where, "fifo")
    os.mkfifo(fifo, 0o666)
    os.chmod(fifo, 0o666)
    yield exe, fifo
    shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sig", list(SIGNALS))
@pytest.mark.parametrize("where", ["native", "yama-run"])
def test_a_stop_signal_stops_a_process_waiting_in_an_open(probe, where, sig, mode):
    """uid 1001 (under a yama-run started by root, and natively): a child
    waits in an open of a FIFO without a writer and is sent SIGTSTP (at its
    default action) or SIGSTOP. Its parent sees it stopped within a second
    (waitpid WUNTRACED, every thread in state T), continues it, and opens
    the FIFO for writing: the child's open, restarted, returns a descriptor
    (not EINTR) and the child exits 0. Before, under yama-run, the child
    was never seen stopped."""
    if where == "yama-run" and TEST_BACKEND == "ptrace":
        pytest.skip("the ptrace backend's tracee stops only once its open is answered")
    exe, fifo = probe
    command = [*AS_USER, exe, fifo, str(int(SIGNALS[sig])), mode]
    if where == "native":
        r = subprocess.run(command, capture_output=True, text=True, timeout=60)
    else:
        r = yama_run("--", *command, timeout=60)
    facts = dict(word.split("=", 1) for word in r.stdout.split() if "=" in word)
    assert r.returncode == 0 and "exit" in facts, r.stdout + r.stderr
    assert facts["stopped"] != "no", r.stdout
    assert float(facts["stopped"]) < 1.0, r.stdout
    assert facts["states"] and set(facts["states"]) == {"T"}, r.stdout
    assert facts["exit"] == "0", r.stdout        # the open returned a descriptor


@pytest.fixture
def sigchld_probe(helper):
    """The SIGCHLD probe and two FIFOs nobody writes, where uid 1001 may use them."""
    exe, where = public_copy(helper("leader_open_sigchld"), "leader_open_sigchld")
    fifos = [os.path.join(where, name) for name in ("fifoA", "fifoB")]
    for fifo in fifos:
        os.mkfifo(fifo, 0o666)
        os.chmod(fifo, 0o666)
    yield exe, fifos
    shutil.rmtree(where, ignore_errors=True)


# other: the SIGCHLD is another thread's (it forked the child, and does not
# block it): the leader's open waits on and returns a descriptor. blocked:
# that thread blocks SIGCHLD, so the kernel offers it to the leader, whose
# open (no SA_RESTART) fails with EINTR once the handler ran. (Whether the
# other thread took its SIGCHLD before the leader's open returned is the
# scheduler's: not asserted in "other".)
SIGCHLD_EXPECTED = {"other": {"leader": "ok"}, "blocked": {"leader": "errno:4", "handled": "1"}}


@pytest.mark.parametrize("mode", list(SIGCHLD_EXPECTED))
@pytest.mark.parametrize("where", ["native", "yama-run"])
def test_a_leader_waiting_in_an_open_is_interrupted_only_by_a_sigchld_it_was_offered(
        sigchld_probe, where, mode):
    """uid 1001 (under a yama-run started by root, and natively): the
    leader of a two-threaded process waits in an open of a FIFO without a
    writer while the other thread forks a child that exits. The kernel
    offers a SIGCHLD to the thread that forked (do_notify_parent), so the
    leader's open goes on and returns a descriptor once a writer comes
    ("other"); only where that thread blocks SIGCHLD is it offered to the
    leader, whose open then fails with EINTR ("blocked"). Before, under
    yama-run, the leader's open failed with errno 512 in "other": its
    worker answered ERESTARTSYS for a process-wide signal the kernel had not
    woken the leader for."""
    exe, (fifo_a, fifo_b) = sigchld_probe
    command = [*AS_USER, exe, fifo_a, fifo_b, mode]
    if where == "native":
        r = subprocess.run(command, capture_output=True, text=True, timeout=60)
    else:
        r = yama_run("--", *command, timeout=60)
    facts = dict(word.split("=", 1) for word in r.stdout.split() if "=" in word)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = SIGCHLD_EXPECTED[mode]
    assert {key: facts.get(key) for key in expected} == expected, r.stdout + r.stderr
