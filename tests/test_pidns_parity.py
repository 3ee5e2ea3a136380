"""Calls that reach every process a pid namespace shows, made from a pid
namespace the program made itself (unshare -pf): the kernel limits them to
that namespace, where none of yama-run's processes and nothing outside the
sandbox has a number, so they go on as natively (a review found both refused
whole, EPERM: an init's shutdown left its children running)."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import requires_root, yama_run

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")]


def _both(probe: str, mode: str, *options: str) -> tuple[str, str]:
    native = subprocess.run(["unshare", "-pf", probe, mode], capture_output=True, text=True,
                            timeout=30)
    r = yama_run(*options, "--", "unshare", "-pf", probe, mode, timeout=60)
    assert native.returncode == 0 and r.returncode == 0, (native, r)
    return native.stdout, r.stdout


@pytest.mark.parametrize("options", [[], ["--no-profile"]], ids=["default", "no-profile"])
def test_kill_minus_one_from_an_init_reaches_its_namespace_as_natively(helper, options):
    native, boxed = _both(helper("pidns_init_calls"), "kill-all", *options)
    assert native == "kill -1: 0\nsleeper 0: signal TERM\nsleeper 1: signal TERM\n", native
    assert boxed == native


@pytest.mark.parametrize("options", [[], ["--profile", "strict"]], ids=["default", "strict"])
def test_prio_user_from_a_pid_namespace_of_its_own_goes_on_as_natively(helper, options):
    native, boxed = _both(helper("pidns_init_calls"), "prio-user", *options)
    assert native == "setpriority: 0\nioprio_set: 0\n", native
    assert boxed == native


@pytest.fixture
def container(helper):
    """A pid namespace outside any sandbox with two sleepers (a container's),
    and the handle of its namespace: (sleeper pids, "TYPE HEX")."""
    outer = subprocess.Popen(["unshare", "-pf", "sh", "-c", "sleep 60 & sleep 60 & wait"],
                             start_new_session=True)
    try:
        sleepers = []
        for _ in range(100):
            sleepers = [int(p) for p in subprocess.run(
                ["pgrep", "-s", str(outer.pid), "-x", "sleep"], capture_output=True,
                text=True).stdout.split()]
            if len(sleepers) == 2:
                break
            time.sleep(0.05)
        assert len(sleepers) == 2, sleepers
        handle = subprocess.run([helper("pidns_jump"), "handle", f"/proc/{sleepers[0]}/ns/pid"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
        if not handle or handle.startswith("name_to_handle_at"):
            pytest.skip(f"no handle of a pid namespace here: {handle}")
        yield sleepers, handle
    finally:
        for pid in sleepers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        outer.kill()
        outer.wait()


def _nice(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


@pytest.mark.parametrize("mode, env", [("prio", {}), ("kill", {"YAMA_RUN_NO_LANDLOCK": "1"})],
                         ids=["prio", "kill-hooks-alone"])
def test_a_contained_caller_in_a_containers_pid_namespace_never_reaches_it(helper, container,
                                                                           mode, env):
    """Contained, a child made in a pid namespace outside the sandbox (root
    inside opened it by its handle, read-only, and joined it with setns)
    reached the container's processes with kill(-1) and PRIO_USER, which go
    on to the kernel only from a pid namespace made inside (found by a
    review of this change): refused, the container's processes untouched."""
    sleepers, handle = container
    kind, hexa = handle.split()
    r = yama_run("--profile", "strict", "--", helper("pidns_jump"), "jump", kind, hexa, mode,
                 env={**os.environ, **env}, timeout=60)
    assert "setns: 0" in r.stdout, (r.stdout, r.stderr)
    assert ("kill -1: EPERM" if mode == "kill" else "setpriority: EPERM") in r.stdout, r.stdout
    assert all(os.path.exists(f"/proc/{pid}") for pid in sleepers)
    assert [_nice(pid) for pid in sleepers] == [0, 0]
