"""Learning: a --learn run denies nothing and logs, for each setting, the values
that would have denied each call; --propose-profile turns the log into a
profile (the strictest value that denied nothing, each explained) that
--profile accepts and under which the same run is denied nothing."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest

from conftest import requires_root, requires_tool, yama_run

AS_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]


@pytest.fixture
def sticky(sysctl):
    """A sticky world-writable directory (as /tmp) holding a file and a symlink
    of uid 1002's, for uid 1001 to trip over; the kernel's own fs.protected_*
    at 0, so that what is refused is yama-run's doing (and what a learning
    run lets through, the kernel does not refuse instead)."""
    for knob in ("hardlinks", "symlinks", "fifos", "regular"):
        sysctl(f"fs.protected_{knob}", 0)
    where = Path(tempfile.mkdtemp(prefix="yama-run-learn-"))
    where.chmod(0o1777)
    (where / "theirs").write_text("theirs\n")
    os.chown(where / "theirs", 1002, 1002)
    (where / "theirs").chmod(0o666)
    (where / "link").symlink_to("/etc/hostname")
    os.lchown(where / "link", 1002, 1002)
    yield where
    shutil.rmtree(where, ignore_errors=True)


def workload(where: Path) -> list[str]:
    """O_CREAT of someone else's file, following their link, planting a link,
    and a debugger tracing its own child: each needs a looser level than the
    strict profile's, and nothing touches a FIFO or makes a hard link."""
    script = (f"echo x >> {where}/theirs && echo APPEND ok; "
              f"cat {where}/link >/dev/null && echo FOLLOW ok; "
              f"ln -s x {where}/mine && echo PLANT ok; rm -f {where}/mine; "
              "strace -o /dev/null true && echo TRACE ok")
    return [*AS_1001, "sh", "-c", script]


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def all_sysctls_off(sysctl):
    for name in ("fs.protected_symlinks", "fs.protected_fifos", "fs.protected_regular"):
        sysctl(name, 0)


@requires_root
@requires_tool("strace")
@requires_tool("setpriv")
def test_the_learned_profile_is_accepted_and_denies_nothing_on_the_same_run(
        sticky, tmp_path, sysctl):
    all_sysctls_off(sysctl)         # the kernel itself refuses none of it
    strict = yama_run("--profile", "strict", "--", *workload(sticky))
    assert "APPEND ok" not in strict.stdout and "FOLLOW ok" not in strict.stdout
    assert "PLANT ok" not in strict.stdout and "TRACE ok" not in strict.stdout

    log = tmp_path / "learn.jsonl"
    learning = yama_run("--learn", "--audit-log", log, "--profile", "strict", "--",
                        *workload(sticky))
    assert learning.returncode == 0, learning.stderr
    assert learning.stdout.split("\n")[:-1] == ["APPEND ok", "FOLLOW ok", "PLANT ok", "TRACE ok"]
    log_records = records(log)
    assert log_records[0]["action"] == "learn-start" and log_records[0]["profile"] == "strict"
    learned = {(r["module"], r["setting"]) for r in log_records if r["action"] == "learn"}
    assert learned == {("regular", "protected"), ("symlinks", "protected"),
                       ("symlinks", "protect_creation"), ("ptrace", "scope")}

    proposal = yama_run("--propose-profile", log)
    assert proposal.returncode == 0, proposal.stderr
    profile = tomllib.loads(proposal.stdout)
    assert profile["chain"] == ["contain", "ptrace", "hardlinks", "symlinks", "fifos", "regular"]
    assert profile["contain"] == {"enabled": True}      # nothing outside was touched
    assert profile["ptrace"] == {"scope": 1}            # strace traces its own child
    assert profile["hardlinks"] == {"protected": 1}     # no link made: the strictest
    assert profile["symlinks"] == {"protected": 0, "protect_creation": False}
    assert profile["fifos"] == {"protected": 2}
    assert profile["regular"] == {"protected": 0}       # world-writable: 1 denies too
    text = proposal.stdout
    assert "# scope = 1: the strictest value that denied no call of the run" in text
    assert "ptrace_scope 2: needs CAP_SYS_PTRACE" in text
    assert "# protected = 1: the strictest value; no call of the run was denied at it" in text
    assert f"'{sticky}/theirs'" in text and "sticky world-writable directory" in text

    learned_file = tmp_path / "learned.toml"
    learned_file.write_text(text)
    again_log = tmp_path / "again.jsonl"
    again = yama_run("--profile", learned_file, "--audit-log", again_log, "--",
                     *workload(sticky))
    assert again.returncode == 0, again.stderr
    assert again.stdout == learning.stdout
    assert records(again_log) == []


def test_a_run_that_needs_nothing_learns_the_strictest_values(tmp_path):
    log = tmp_path / "learn.jsonl"
    run = yama_run("--learn", "--audit-log", log, "--", "sh", "-c", "echo hello")
    assert run.returncode == 0 and run.stdout == "hello\n", run.stderr
    profile = tomllib.loads(yama_run("--propose-profile", log).stdout)
    assert profile["ptrace"] == {"scope": 3}
    assert profile["hardlinks"] == {"protected": 1}
    assert profile["symlinks"] == {"protected": 1, "protect_creation": True}
    assert profile["fifos"] == {"protected": 2} and profile["regular"] == {"protected": 2}


def test_learning_needs_an_audit_log():
    r = yama_run("--learn", "--", "true")
    assert r.returncode == 125 and "--learn needs --audit-log" in r.stderr


def test_a_log_without_a_learning_run_is_refused(tmp_path):
    log = tmp_path / "plain.jsonl"
    assert yama_run("--permissive", "--audit-log", log, "--", "true").returncode == 0
    r = yama_run("--propose-profile", log)
    assert r.returncode == 125 and "no record of a learning run" in r.stderr
    log.write_text("not json\n")
    r = yama_run("--propose-profile", log)
    assert r.returncode == 125 and f"{log}:1: not a JSON audit record" in r.stderr


def test_propose_profile_runs_no_program(tmp_path):
    r = yama_run("--propose-profile", tmp_path / "x.jsonl", "true")
    assert r.returncode == 125 and "each run alone" in r.stderr


@requires_root
def test_what_the_program_names_cannot_write_lines_of_the_proposed_profile(sticky, tmp_path):
    """The comments that explain a value quote the calls that ruled out a
    stricter one, and the program chooses their text (its comm, its paths): a
    newline in them must not end the comment and add a table or a setting."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    log = tmp_path / "learn.jsonl"
    learning = yama_run("--learn", "--audit-log", log, "--", "setpriv", "--reuid=1001",
                        "--regid=1001", "--clear-groups", python, "-c", f"""
import ctypes, os
ctypes.CDLL(None).prctl(15, b"\\n[x]\\ny = 1\\n#", 0, 0, 0)    # PR_SET_NAME
os.link("/etc/shadow", "{sticky}/shadow\\n[z]\\nw = 2\\n#")
print("LINKED")""")
    assert learning.returncode == 0 and learning.stdout == "LINKED\n", learning.stderr
    proposal = yama_run("--propose-profile", log)
    assert proposal.returncode == 0, proposal.stderr
    profile = tomllib.loads(proposal.stdout)
    assert set(profile) == {"description", "chain", *profile["chain"]}, proposal.stdout
    assert profile["hardlinks"] == {"protected": 0}
    assert "by " in proposal.stdout and "(\\n[x]\\ny = 1\\n#)" in proposal.stdout
