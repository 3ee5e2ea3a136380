"""The benchmark suite's quick mode runs every workload under every comparator
and writes its three outputs; it makes no timing claims, so neither does this."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "benchmarks" / "run.py"
YAMA_RUN_COMPARATORS = ("yama-default", "yama-debian", "yama-all", "yama-empty")
KNOBS = ("symlinks", "hardlinks", "fifos", "regular")


def knobs() -> dict[str, str]:
    return {k: Path(f"/proc/sys/fs/protected_{k}").read_text().strip() for k in KNOBS}


@pytest.fixture(scope="module")
def quick(installed_quick):
    """The quick run's process, its results.json and its output directory."""
    done, doc, _, _, out = installed_quick
    return done, doc, out


def workload_keys() -> list[str]:
    sys.path.insert(0, str(RUN.parent))
    try:
        import run
        return [w.key for w in run.workloads()]
    finally:
        sys.path.remove(str(RUN.parent))


def test_quick_run_writes_json_table_and_plot(quick):
    done, doc, out = quick
    assert doc["mode"] == "quick"
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    assert "| workload | rounds | native | yama-run default |" in table
    assert "quick smoke run: no timing claims" in table
    assert "wrote" in done.stdout and "results.json" in done.stdout
    m = doc["machine"]
    for key in ("cpu", "vcpus", "kernel", "distro", "python", "git_commit", "tools"):
        assert m[key], key


def test_every_workload_appears(quick):
    _, doc, out = quick
    table = (out / "results.md").read_text()
    got = [w["key"] for w in doc["workloads"]]
    assert got == workload_keys()
    for w in doc["workloads"]:
        assert w["title"] in table
        if w["status"] == "skipped":
            assert w["reason"], w["key"]
        else:
            assert {c["key"] for c in w["comparators"]} >= {
                "native", "yama-default", "yama-all", "yama-empty", "strace", "firejail", "bwrap"}


def test_skipped_and_failed_comparators_say_why(quick):
    _, doc, _ = quick
    for c in doc["comparators"]:
        assert (c["skip"] is None) or c["skip"].strip(), c["key"]
    for w in doc["workloads"]:
        for c in w["comparators"]:
            assert c["status"] in ("ok", "skipped", "failed"), (w["key"], c)
            if c["status"] != "ok":
                assert c["reason"].strip(), (w["key"], c["key"])
            else:
                assert c["samples"] and c["median"] > 0, (w["key"], c["key"])


def test_native_and_yama_run_runs_all_succeed(quick):
    """A yama-run run that fails (a wrong errno, an exit status, a missing
    copy) is a defect, not noise: the quick run checks every outcome."""
    done, doc, _ = quick
    for w in doc["workloads"]:
        if w["status"] == "skipped":
            continue
        for c in w["comparators"]:
            if c["key"] == "native" or c["key"] in YAMA_RUN_COMPARATORS:
                assert c["status"] != "failed", (w["key"], c["key"], c.get("reason"))
                if c["status"] == "skipped":
                    assert c["key"] == "yama-all" or (c["key"] == "yama-debian"
                                                      and os.geteuid() != 0), (w["key"], c["key"])


def test_debian_sysctls_are_set_for_their_comparator_only(quick):
    """The column of Debian's fs.protected_* runs the default profile with the
    kernel's knobs at Debian 12's values, and the run ends with them as they
    were (the fixture compares them before and after)."""
    _, doc, _ = quick
    comp = next(c for c in doc["comparators"] if c["key"] == "yama-debian")
    if os.geteuid() != 0:
        assert comp["skip"] == "needs root to set the kernel's fs.protected_* for its runs"
        return
    assert comp["skip"] is None and comp["command"] == next(
        c["command"] for c in doc["comparators"] if c["key"] == "yama-default")
    assert doc["machine"]["sysctl"] == doc["machine"]["sysctl_end"]


def test_the_knobs_come_back_when_a_run_fails(sysctl):
    sysctl("fs.protected_fifos", 0)          # and restored by the fixture, in any case
    sysctl("fs.protected_regular", 0)
    sys.path.insert(0, str(RUN.parent))
    try:
        import run
    finally:
        sys.path.remove(str(RUN.parent))
    with pytest.raises(RuntimeError):
        with run.kernel_knobs({"fifos": 1, "regular": 2}):
            assert knobs()["fifos"] == "1" and knobs()["regular"] == "2"
            raise RuntimeError("a run that fails")
    assert knobs()["fifos"] == "0" and knobs()["regular"] == "0"


def test_quick_mode_claims_no_goal(quick):
    _, doc, _ = quick
    assert doc["goals"]
    for g in doc["goals"]:
        for res in g["results"].values():
            assert res.get("met") is None


def fresh_copy(into: Path) -> Path:
    """The checkout as a fresh clone has it: no built extension, no bytecode."""
    src = into / "yama-run"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.so", ".pytest_cache",
        "results"))
    return src


@pytest.fixture(scope="module")
def installed_quick(tmp_path_factory):
    """README's install of a fresh clone into a venv, and the quick suite of
    that clone measuring the installed command: the one quick run every test
    here reads (one run, not two: 20 s of the suite)."""
    debian = "/usr/bin/python3"
    if shutil.which("gcc") is None or subprocess.run(
            [debian, "-c", "import ensurepip, venv"], capture_output=True).returncode != 0:
        pytest.skip("needs gcc and Debian's python3 with python3-venv")
    where = tmp_path_factory.mktemp("fresh")
    src, venv = fresh_copy(where), where / "venv"
    subprocess.run([debian, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(src)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    out = where / "out"
    before = knobs()
    done = subprocess.run([debian, str(src / "benchmarks" / "run.py"), "--quick", "--yama-run",
                           str(venv / "bin" / "yama-run"), "--out", str(out)],
                          capture_output=True, text=True, timeout=400, cwd=where)
    assert knobs() == before, "the benchmark left the kernel's fs.protected_* changed"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads((out / "results.json").read_text()), src, venv, out


def test_quick_run_of_a_fresh_clone_measures_the_installed_yama_run(installed_quick):
    done, doc, src, venv, _ = installed_quick
    assert not list((src / "sandbox").glob("_yama*"))          # nothing built in the clone
    m = doc["machine"]
    assert m["yama_run"] == str(venv / "bin" / "yama-run")
    assert m["python_executable"] == str(venv / "bin" / "python3")
    assert m["yama_run_version"].startswith("yama-run, version")
    assert not any(p.startswith(str(src)) for p in m["yama_run_sys_path"]), m
    assert any(p.startswith(str(venv)) for p in m["yama_run_sys_path"]), m
    startup = next(w for w in doc["workloads"] if w["key"] == "startup")
    rows = {c["key"]: c for c in startup["comparators"]}
    for key in ("yama-default", "yama-empty", "python-S", "python-launch", "python-import"):
        assert rows[key]["status"] == "ok", (key, rows[key].get("reason"))
    for w in doc["workloads"]:
        for c in w["comparators"]:
            if c["key"] == "native" or c["key"] in YAMA_RUN_COMPARATORS:
                assert c["status"] != "failed", (w["key"], c["key"], c.get("reason"))


def test_the_floor_is_measured_and_every_goal_of_issue_17_computed(quick):
    _, doc, out = quick
    assert doc["floor_ns"] and doc["floor_ns"] > 0
    assert doc["addfd_floor_ns"] and doc["addfd_floor_ns"] > 0      # the emulated open's floor
    opens = next(w for w in doc["workloads"] if w["key"] == "open_close")
    addfd = next(c for c in opens["comparators"] if c["key"] == "floor-addfd-responder")
    assert addfd["status"] == "ok" and addfd["diagnostic"], addfd
    table = (out / "results.md").read_text()
    assert "## Goals (issue 17)" in table and "bare user-notify round trip in this run" in table
    assert "`floor-addfd-responder`" in table
    goals = {g["workload"] for g in doc["goals"]}
    assert goals >= {"startup", "pvm_readv_self", "ptrace_deep", "open_close", "open_dir_link",
                     "open_trailing_link", "stat", "stat_link", "cp_al", "git_status",
                     "python", "make_one"}
    for g in doc["goals"]:
        for comp, res in g["results"].items():
            assert res["status"] in ("ok", "skipped") or "not measured" in res["status"], \
                (g["goal"], comp, res)
