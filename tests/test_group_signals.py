"""Group signals (kill(0), kill(-pgrp)) in yama-run's front's process group
with thousands of members, where the supervisor has few descriptors.

yama-run sends such a signal itself, to each member but its own processes,
through a pidfd per member (test_pid_pinning.py). A review found each call
pinning every member at once and walking /proc up to five times: a few calls
filled the supervisor's descriptor table, and then (1) a group signal from
inside reached the front (an unreadable /proc/FRONT/stat taken for "none of
ours in this group"), (2) a bystander's stat and open failed (EMFILE, ESRCH)
and waited while the receivers walked, and (3) a kill(0) answered 0 with a
third of the members never signalled (an unreadable member's stat taken for
"not a member"). tests/helpers/group_signal_load.c makes the load; yama-run
runs with RLIMIT_NOFILE 1,024 (a common limit), in a session of its own so
that the front leads the program's group and no signal reaches pytest."""
from __future__ import annotations

import re
import resource
import subprocess

import pytest

from conftest import BACKEND_ARGS, requires_root

pytestmark = requires_root

NOFILE = 1024


def _load(installed, helper, *args: str) -> str:
    """group_signal_load ARGS under the launcher (the front), with few
    descriptors; its output."""
    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

    r = subprocess.run([str(installed), *BACKEND_ARGS, "--", helper("group_signal_load"), *args],
                       capture_output=True, text=True, timeout=60, start_new_session=True,
                       preexec_fn=few_descriptors)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r.stdout


def test_a_group_signal_never_reaches_the_front_out_of_descriptors(installed, helper):
    """2,000 members in the front's group; the program leaves it, one process
    loops kill(-G, 0) (the supervisor pins members) and two kill(-G, SIGUSR2)
    for 4 s. The front passes on a signal it gets to the program: on the code
    before it got one 1-3 times, once the pins had filled the supervisor's
    table."""
    out = _load(installed, helper, "front", "2000", "4")
    assert "front-reached=0 " in out, out


def test_every_member_gets_a_group_signal_with_few_descriptors(installed, helper):
    """kill(0, SIGURG) of 3,000 members that catch it: each gets it, and the
    call answers 0 (on the code before: 0, and about 1,000 got it)."""
    out = _load(installed, helper, "count", "3000")
    assert "kill=OK got=3000 of 3000" in out, out


def test_group_signals_of_many_members_hold_up_no_bystander(installed, helper):
    """Four processes loop kill(0, 0) in a group of 3,000 for 3 s; a
    bystander stats and opens a file in rounds. None of its calls fails (on
    the code before: 8-20, EMFILE and ESRCH, the supervisor's table full of
    pins) and no round waits long (the calls walk /proc in receivers marked
    stalled, and the others serve the bystander: 46-77 ms measured, against
    390 ms on the code before with the default limit)."""
    out = _load(installed, helper, "bystander", "3000", "4", "3")
    m = re.search(r"rounds=(\d+) failed=(\d+) worst_ms=(\d+)", out)
    assert m, out
    rounds, failed, worst_ms = map(int, m.groups())
    assert failed == 0, out
    assert worst_ms < 1000, out
    assert rounds > 200, out


@pytest.mark.parametrize("call", ["setown", "pidfdpg", "prio"])
def test_group_owners_and_group_sets_of_many_members_hold_up_no_bystander(
        installed, helper, call):
    """The other calls that walk /proc for a group's members: four processes
    loop F_SETOWN of a pipe to -their group, pidfd_send_signal to their
    group (PIDFD_SIGNAL_PROCESS_GROUP, signal 0) or setpriority(PRIO_PGRP)
    in a group of 3,000 for 3 s, beside the same bystander. The walk was
    Python's, in receivers never marked stalled, so the loopers held them
    all: on the code before, 420-460 ms for the bystander's worst round and
    about 425 rounds (a review: 16 rounds in 5 s with four threads); now
    the walk is C's, marked costly first, as kill(0)'s: 35-55 ms measured,
    over 2,000 rounds."""
    out = _load(installed, helper, "bystander", "3000", "4", "3", call)
    m = re.search(r"rounds=(\d+) failed=(\d+) worst_ms=(\d+)", out)
    assert m, out
    rounds, failed, worst_ms = map(int, m.groups())
    assert failed == 0, out
    assert worst_ms < 200, out
    assert rounds > 1000, out
