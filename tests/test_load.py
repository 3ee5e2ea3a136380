"""Load: many processes and threads making hooked calls at once, every
answer counted (tests/helpers/load_probe.c): no notification lost (every call
returns), no hang (bounded time), every decision right."""
from __future__ import annotations

import os
import re

import pytest

from conftest import requires_root
from pinned_profile import yr


pytestmark = requires_root

AS_USER = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]
TALLY = re.compile(r"^(\w+) calls=(\d+) right=(\d+) wrong=(\d+) units=(\d+)$", re.M)
CALLS_PER_ROUND = 4
# the supervisor shielded by Landlock, or (kernels without it) by its own hooks
MODES = {"landlock": None, "hooks": {**os.environ, "YAMA_RUN_NO_LANDLOCK": "1"}}


@pytest.fixture
def workdir(tmp_path, sysctl):
    """Writable by uid 1001, with root's 0600 "secret"; the kernel's own
    protected_hardlinks off, so each EPERM on it is yama-run's."""
    sysctl("fs.protected_hardlinks", 0)
    tmp_path.chmod(0o777)
    (tmp_path / "secret").write_text("root only\n")
    (tmp_path / "secret").chmod(0o600)
    return tmp_path


def run_load(helper, workdir, *args, timeout, env=None):
    r = yr("--set", "ptrace.scope=1", "--set", "hardlinks.protected=1", "--",
                 *AS_USER, helper("load_probe"), *args, cwd=workdir, timeout=timeout, env=env)
    m = TALLY.search(r.stdout)
    assert m, r
    calls, right, wrong, units = map(int, m.groups()[1:])
    assert "internal error" not in r.stderr, r.stderr
    return r, calls, right, wrong, units


@pytest.mark.parametrize("mode", list(MODES))
def test_200_process_tree_every_decision_right(helper, workdir, mode):
    r, calls, right, wrong, units = run_load(helper, workdir, "tree", "200", "5", timeout=180,
                                             env=MODES[mode])
    assert (units, calls, right, wrong) == (200, 200 * 5 * CALLS_PER_ROUND,
                                            200 * 5 * CALLS_PER_ROUND, 0), r
    assert r.returncode == 0, r
    assert sorted(p.name for p in workdir.iterdir()) == ["secret"]     # no stray link


@pytest.mark.parametrize("mode", list(MODES))
def test_50_threads_every_decision_right(helper, workdir, mode):
    r, calls, right, wrong, units = run_load(helper, workdir, "threads", "50", "20",
                                             timeout=180, env=MODES[mode])
    assert (units, calls, right, wrong) == (50, 50 * 20 * CALLS_PER_ROUND,
                                            50 * 20 * CALLS_PER_ROUND, 0), r
    assert r.returncode == 0, r


@pytest.mark.slow
def test_soak_90_seconds(helper, workdir):
    """Trees of 20 processes beside 10 threads, again and again for 90 s."""
    r, calls, right, wrong, units = run_load(helper, workdir, "soak", "90", timeout=300)
    print(f"\nsoak: {calls} hooked calls in 90 s, {units} processes and threads, all right")
    assert wrong == 0 and calls == right > 10_000, r
    assert r.returncode == 0, r
