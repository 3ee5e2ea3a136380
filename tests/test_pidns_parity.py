"""Calls that reach every process a pid namespace shows, made from a pid
namespace the program made itself (unshare -pf): the kernel limits them to
that namespace, where none of yama-run's processes and nothing outside the
sandbox has a number, so they go on as natively (a review found both refused
whole, EPERM: an init's shutdown left its children running)."""
import shutil
import subprocess

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
