"""A program that confines itself with Landlock (tests/helpers/landlock_probe.c:
reading only below /usr, creating nothing) stays confined under yama-run
(docs/hostile.md, "A Landlock domain of the program's own").

The supervisor performs the program's opens (and its symlinks, links,
truncates) outside any domain the program gives itself, so such a domain
would confine nothing done for it. Wherever the supervisor performs them, the
program is told that Landlock is off (EOPNOTSUPP, as the kernel says with
Landlock disabled at boot) and its own fallback applies. Since cgroup files
are judged (docs/hostile.md), every sandbox has some of its opens performed:
none is left where its domain would hold."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import yama_run

DENIED = "/etc/hostname"            # readable here, outside the probe's /usr


@pytest.fixture
def probe(helper):
    return helper("landlock_probe")


@pytest.fixture
def scratch():
    where = tempfile.mkdtemp(prefix="yama-run-landlock-")
    yield where
    shutil.rmtree(where)


@pytest.fixture
def profiles(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        return str(path)
    return {
        "default": [],
        "scope-0": ["--profile", write("scope0", 'chain = ["ptrace"]\n\n[ptrace]\nscope = 0\n')],
        "contained": ["--profile", write("contained",
                                         'chain = ["contain"]\n\n[contain]\nenabled = true\n')],
    }


def results(out: str) -> dict:
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def native(probe, scratch) -> dict:
    got = results(subprocess.run([probe, DENIED, scratch], capture_output=True, text=True,
                                 timeout=30).stdout)
    if got.get("abi") in ("ENOSYS", "EOPNOTSUPP"):
        pytest.skip(f"no Landlock here ({got['abi']})")
    return got


def test_the_program_confines_itself_natively(probe, scratch):
    """The control: its domain refuses what it forbids."""
    got = native(probe, scratch)
    assert (got["restrict"], got["read-allowed"], got["read-denied"], got["create-denied"]) == \
        ("ok", "ok", "EACCES", "EACCES"), got


@pytest.mark.parametrize("case", [("default", {}), ("scope-0", {}),
                                  ("contained", {"YAMA_RUN_NO_LANDLOCK": "1"}),
                                  ("contained", {})],
                         ids=["default", "scope-0", "contained-without-the-domain",
                              "contained"])
def test_a_domain_the_supervisor_would_open_around_is_refused(probe, scratch, profiles, case):
    """Where the supervisor performs opens for it (a path protection, the
    /proc gate at any scope without Landlock's domain; contained in the
    domain, the opens that may write, for the gate's cgroup check), the
    program is told Landlock is off before it builds a ruleset, and is never
    left believing a domain holds that the supervisor's opens would ignore.
    Until cgroup files were judged, a contained sandbox in Landlock's domain
    with nothing of its paths routed let the program's own domain hold."""
    native(probe, scratch)
    name, env = case
    r = yama_run(*profiles[name], "--", probe, DENIED, scratch, env={**os.environ, **env})
    got = results(r.stdout)
    assert got["restrict"] != "ok" or (got["read-denied"], got["create-denied"]) == \
        ("EACCES", "EACCES"), r.stdout + r.stderr
    assert (got["abi"], got["restrict"]) == ("EOPNOTSUPP", "EOPNOTSUPP"), r.stdout + r.stderr
    assert got["read-allowed"] == "ok", r.stdout + r.stderr
