"""An attack beside a bystander, with the supervisor's resources sampled
(issue 13): shared by tests/test_stall.py and tests/test_ptrace.py.

The bystander (tests/helpers/stall_probe.c bystander: prctl, open+close and
stat back to back) measures its worst wait on the supervisor; the
supervisor's threads and descriptors are read from /proc before the attack,
at its peak and after the attacker is gone (docs/stall.md: the bounds, the
errnos and the allowance for the caches)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import YAMA_RUN, public_copy

STALL_BOUND_US = 1_000_000      # the bound on a bystander's worst wait
# Descriptors that an attack's callers leave in the supervisor's bounded
# per-caller caches (the identity cache's pidfd, /proc/TID and root per recent
# caller, /proc/PID/stat of ancestors): released when their slots are reused.
# Each receiver has an identity cache of its own, and two serve (csrc/pool.c).
RECEIVERS = 2
CALLER_CACHES = 10 * RECEIVERS
IDENTITY_CACHE_FDS = 192 * RECEIVERS    # csrc/caller.c: 64 callers, 3 each, per receiver


@pytest.fixture(scope="session")
def stall(helper):
    exe, where = public_copy(helper("stall_probe"), "stall_probe")
    yield exe
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def starter(request):
    """Who starts yama-run: root (None: the usual command), or uid 1001."""
    if request.param == "root":
        return None
    return request.getfixturevalue("user_yama_run")


def supervisor_of(front: int, deadline: float) -> int:
    """The supervisor: the child the front forks (its command line is the
    front's) once it serves (threads of its own), not a short-lived child
    (a library's ldconfig, a fork that probes something)."""
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{front}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{front}/task/{front}/children") as f:
                kids = f.read().split()
            for kid in kids:
                with open(f"/proc/{kid}/cmdline", "rb") as f:
                    if f.read() == cmdline and sample(int(kid))[0] > 1:
                        return int(kid)
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError("no supervisor")


def sample(pid: int) -> tuple[int, int]:
    """The supervisor's (threads, descriptors)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        return threads, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return 0, 0


def parse(text: str) -> dict:
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def attack_with_bystander(stall, attack: str, starter=None, prefix=(), profile=None) -> dict:
    """Run `attack` (a shell command; {dir} is a directory every uid may
    write) in a sandbox beside the bystander: with `profile` (a path), else
    --no-profile (every module, so opens and stats are routed). Returns the
    bystander's and the attacker's outputs, the samples (before, peak,
    after) and yama-run's stderr."""
    where = Path(tempfile.mkdtemp(prefix="yama-run-stall-"))
    where.chmod(0o777)
    choice = ["--profile", profile] if profile else ["--no-profile"]
    try:
        return _attack(stall, where, attack.format(dir=where), starter, prefix, choice)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _attack(stall, d: Path, attack: str, starter, prefix, choice) -> dict:
    by, att = d / "bystander.out", d / "attack.out"
    script = (f"{stall} bystander {d}/stop > {by} & "
              f"while [ ! -e {d}/go ]; do sleep 0.05; done; "
              f"{attack} > {att} 2>&1; touch {d}/done; wait")
    cmd = [*(starter or YAMA_RUN), *choice, "-q", "--", *prefix, "sh", "-c", script]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd="/")
    try:
        sup = supervisor_of(proc.pid, time.monotonic() + 10)
        time.sleep(1.0)
        before = sample(sup)
        (d / "go").touch()
        peak = before
        deadline = time.monotonic() + 150
        while not (d / "done").exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            now = sample(sup)
            peak = (max(peak[0], now[0]), max(peak[1], now[1]))
            time.sleep(0.05)
        time.sleep(1.5)          # what the attacker's end releases is released by now
        after = sample(sup)
        (d / "stop").touch()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    proc.stderr.close()
    result = {"bystander": parse(by.read_text()), "attack": parse(att.read_text()),
              "before": before, "peak": peak, "after": after, "stderr": stderr}
    print(f"\n{attack[:60]}: worst {result['bystander'].get('WORST_US')} us, threads/fds "
          f"before {before} peak {peak} after {after}; attacker {result['attack']}")
    return result


def assert_unharmed(r: dict, cached: int = IDENTITY_CACHE_FDS + CALLER_CACHES) -> None:
    """The bystander was never held up a second; the supervisor is back to
    its baseline once the attacker is gone (but for descriptors of dead
    callers left in bounded caches: the identity cache keeps the callers it
    served, a slot is reused, not emptied, when its caller dies); nothing
    reached the terminal."""
    assert int(r["bystander"]["WORST_US"]) < STALL_BOUND_US, r
    assert int(r["bystander"]["CALLS"]) > 100, r
    # at most as many threads as before: a thread that was starting or ending
    # when the baseline was taken (a short-lived one acting as a caller) is
    # no leak
    assert r["after"][0] <= r["before"][0], r
    assert r["after"][1] <= r["before"][1] + cached, r
    assert "Traceback" not in r["stderr"], r["stderr"]
