#!/usr/bin/env python3
"""yama-run overhead benchmarks, against native and the tools people would use instead.

    python3 benchmarks/run.py                 # full run: the figures (about 12 minutes)
    python3 benchmarks/run.py --quick         # smoke run: every workload and comparator once
    python3 benchmarks/run.py --only cp_al --only startup --out DIR

Every workload runs under every comparator, interleaved in the same run: each
round runs every comparator once, the order alternating (A B C, C B A, ...),
after one discarded warm-up round (full mode); figures are medians over the
rounds, with min, max, the ratio to native of the medians and the median of
the per-round ratios ("paired").

Comparators: native; yama-run with the default profile; the same with the
kernel's fs.protected_* at Debian 12's values for its runs (what the default
profile costs on a stock Debian, where it routes less); yama-run with every
protection on; yama-run with an empty chain (no filter: its start-up and
supervision alone); strace --seccomp-bpf tracing the syscalls yama-run can
hook (the ptrace-based anchor); firejail --noprofile; bwrap. One that cannot
run here (not installed, or a yama-run without the modules) is reported as
skipped with the reason.

Workloads: micro (C loops in workloads/ that time their own calls and print
ns per call, so start-up never enters a per-call figure), macro (wall time of
a whole command: cp -al, tar -x, git clone --local, git status,
python3 -c pass, make -j2, make of one file, a Firefox headless screenshot)
and start-up (`true`). The bare user-notify round trip is measured in every
run and printed beside every figure; issue 17's goals are judged against it.

--quick: tiny sizes, one round, no warm-up: a smoke test that everything runs
and gives the expected results; no timing claims.

Output (--out, default benchmarks/results/MODE-YYYYmmdd-HHMMSS/): results.json
(every run's samples, medians, min, max, ratios, the machine and tool
versions), results.md (the tables) and results.png (ratios to native).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import site
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fixtures   # noqa: E402
from report import (GOAL_COMPARATORS, UNITS, fmt, machine, markdown, plot,  # noqa: E402
                    print_table, sysctls)

REPO = HERE.parent
WORKLOADS = HERE / "workloads"
UNPRIV = ("1001", "1001")                 # uid, gid of the unprivileged ptrace caller
DEEP = 8                                  # shells between the scope-1 target and us
FLOOR = ("pvm_readv_self", "floor-bare-responder")   # the round trip: workload, comparator
ADDFD_FLOOR = ("open_close", "floor-addfd-responder")  # the same, answered with a descriptor
ALL_ON = ["--set", "ptrace.scope=1", "--set", "hardlinks.protected=1",
          "--set", "symlinks.protected=1", "--set", "fifos.protected=2",
          "--set", "regular.protected=2"]
# fs.protected_* as Debian 12 ships them (procps's /usr/lib/sysctl.d/protect-links.conf)
DEBIAN_KNOBS = {"symlinks": 1, "hardlinks": 1, "fifos": 1, "regular": 2}


class BenchError(Exception):
    pass


# -- context ----------------------------------------------------------------------

@dataclass
class Ctx:
    quick: bool
    work: Path                    # temporary directory: programs, fixtures, scratch
    yama: list[str]               # how to start yama-run
    python: str                   # the interpreter yama-run runs on
    pypath: list[str]             # what it puts on sys.path: the package measured, its deps
    env: dict[str, str]
    root: bool
    target_pid: int               # an unrelated process for PTRACE_ATTACH
    strace_set: list[str]
    empty_profile: Path
    fx: dict = field(default_factory=dict)   # fixture paths, by workload
    started: float = field(default_factory=time.monotonic)

    def py_import(self, module: str) -> list[str]:
        """python3 importing the measured yama-run's module, as its command
        starts (-IS, its package and dependencies on sys.path)."""
        return [self.python, "-IS", "-c",
                f"import sys; sys.path[:0] = {self.pypath!r}; import {module}"]

    def prog(self, name: str) -> str:
        return str(self.work / "bin" / name)

    def unpriv(self) -> list[str]:
        if not self.root:
            return []
        return ["setpriv", f"--reuid={UNPRIV[0]}", f"--regid={UNPRIV[1]}", "--clear-groups"]


# -- comparators --------------------------------------------------------------------

@dataclass
class Comparator:
    key: str
    label: str
    wrap: Callable[[Ctx, list[str]], list[str]]
    diagnostic: bool = False      # a workload's extra row (no comparator of its own)
    root_caller: bool = False     # run the workload without the unprivileged prefix
    skip: str | None = None
    # fs.protected_* for its runs only (root), and then a plan cache of its own:
    # yama-run checks the sysctls a plan was made under on every use, and two
    # comparators alternating them would compile a plan at every run.
    kernel: dict[str, int] | None = None

    def env(self, ctx: Ctx) -> dict[str, str]:
        if not self.kernel:
            return ctx.env
        return {**ctx.env, "XDG_CACHE_HOME": str(ctx.work / f"cache-{self.key}")}

    def shown(self, ctx: Ctx) -> str:
        return " ".join(self.wrap(ctx, ["CMD"]))


def comparators(before: str | None = None) -> list[Comparator]:
    """before: another yama-run (say, main's) run with its default profile
    beside this one, for a before-and-after table from one run."""
    then = ([Comparator("yama-before", "yama-run default, before",
                        lambda c, a: [before, "--", *a])] if before else [])
    return [
        Comparator("native", "native", lambda c, a: a),
        Comparator("yama-default", "yama-run default", lambda c, a: [*c.yama, "--", *a]),
        Comparator("yama-debian", "yama-run default, Debian's fs.protected_*",
                   lambda c, a: [*c.yama, "--", *a], kernel=DEBIAN_KNOBS),
        Comparator("yama-all", "yama-run all on", lambda c, a: [*c.yama, *ALL_ON, "--", *a]),
        Comparator("yama-empty", "yama-run empty chain",
                   lambda c, a: [*c.yama, "--profile", str(c.empty_profile), "--", *a]),
        Comparator("strace", "strace --seccomp-bpf",
                   lambda c, a: ["strace", "-f", "--seccomp-bpf", "-o", "/dev/null",
                                 "-e", "trace=" + ",".join("?" + s for s in c.strace_set),
                                 "--", *a]),
        Comparator("firejail", "firejail --noprofile",
                   lambda c, a: ["firejail", "--noprofile", "--quiet", "--", *a]),
        Comparator("bwrap", "bwrap", lambda c, a: ["bwrap", "--dev-bind", "/", "/", "--", *a]),
        *then,
    ]


@contextlib.contextmanager
def kernel_knobs(want: dict[str, int] | None):
    """fs.protected_* set to want for the block, then back to what they were,
    whatever happens in it (SIGTERM too: main makes it an exit)."""
    if not want:
        yield
        return
    files = {k: Path(f"/proc/sys/fs/protected_{k}") for k in want}
    before = {k: f.read_text().strip() for k, f in files.items()}
    try:
        for k, v in want.items():
            files[k].write_text(str(v))
        yield
    finally:
        for k, v in before.items():
            files[k].write_text(v)


def probe(comp: Comparator, ctx: Ctx) -> str | None:
    """Why this comparator cannot run here, or None."""
    if comp.kernel and not ctx.root:
        return "needs root to set the kernel's fs.protected_* for its runs"
    tool = {"strace": "strace", "firejail": "firejail", "bwrap": "bwrap"}.get(comp.key)
    if tool and shutil.which(tool) is None:
        pkg = {"bwrap": "bubblewrap"}.get(tool, tool)
        return f"{tool} is not installed (apt-get install {pkg})"
    argv = comp.wrap(ctx, ["true"])
    try:
        with kernel_knobs(comp.kernel):
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=60, env=comp.env(ctx), cwd=ctx.work)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{' '.join(argv)}` failed: {exc}"
    if done.returncode == 0:
        return None
    why = done.stderr.strip().splitlines()[-1:] or [""]
    if comp.key == "yama-all" and done.returncode == 125:
        return (f"yama-run rejects these settings (exit 125: {why[0]}); the symlinks, fifos "
                f"and regular modules come with issue 4")
    return f"`{' '.join(argv)}` exits {done.returncode}: {why[0]}"


# -- workloads -------------------------------------------------------------------------

@dataclass
class Workload:
    key: str
    title: str
    kind: str                                  # micro | macro | startup
    unit: str
    argv: Callable[[Ctx], list[str]]
    full: int                                  # calls per run (micro) or size (macro)
    quick: int
    rounds: int
    setup: Callable[[Ctx, int], str | None] | None = None     # -> skip reason
    before: Callable[[Ctx], None] | None = None               # untimed, before each run
    after: Callable[[Ctx], str | None] | None = None          # untimed check + cleanup
    expect: Callable[[dict, str], str | None] | None = None   # micro result -> complaint
    as_user: bool = False                      # prefixed with setpriv to uid 1001
    extras: list[Comparator] = field(default_factory=list)
    env: Callable[[Ctx], dict] | None = None
    timeout: float = 600
    size_text: str = ""
    short: str = ""                            # heading in the plot
    # comparator -> exit statuses that still count as a run (with the reason)
    accept_exit: dict[str, tuple[set[int], str]] = field(default_factory=dict)

    def __post_init__(self):
        self.short = self.short or self.title

    def size(self, ctx: Ctx) -> int:
        return self.quick if ctx.quick else self.full


def every_call_ok(r: dict, comp: str) -> str | None:
    if r["ok"] == r["calls"] and r["fail"] == 0:
        return None
    return f"expected every call to succeed; got ok={r['ok']} fail={r['fail']} errno={r['errno']!r}"


def attach_denied(r: dict, comp: str) -> str | None:
    # ptrace_attach counts -1/EPERM as ok. firejail runs the program in a new
    # pid namespace, where the target does not exist: ESRCH, as the kernel says.
    if r["ok"] == r["calls"]:
        return None
    if comp == "firejail" and r["fail"] == r["calls"] and r["errno"] == "ESRCH":
        return None
    return f"expected EPERM on every call; got ok={r['ok']} fail={r['fail']} errno={r['errno']!r}"


def ptracer_result(r: dict, comp: str) -> str | None:
    # yama-run emulates PR_SET_PTRACER (0); a kernel without Yama says EINVAL,
    # and so does yama-run's empty chain (no filter).
    if comp.startswith("yama-") and comp != "yama-empty":
        return every_call_ok(r, comp)
    if r["ok"] == r["calls"] or (r["fail"] == r["calls"] and r["errno"] == "EINVAL"):
        return None
    return f"unexpected: ok={r['ok']} fail={r['fail']} errno={r['errno']!r}"


def _micro(key, title, prog, full, quick, rounds, expect=every_call_ok, extra_args=None,
           unit="µs", setup=None, **kw) -> Workload:
    """A C loop of workloads/PROG.c: CALLS calls, timed by the program itself;
    setup: what else it needs (returns a skip reason or None)."""
    def prepare(c: Ctx, n: int) -> str | None:
        c.fx["n"][key] = n
        return setup(c, n) if setup else None
    return Workload(key, title, "micro", unit,
                    lambda c: [c.prog(prog), str(c.fx["n"][key]),
                               *(extra_args(c) if extra_args else [])],
                    full, quick, rounds, expect=expect, setup=prepare,
                    size_text="{n:,} calls per run", **kw)


def _on_path(key, title, prog, path_key, setup, short, extras=()) -> Workload:
    """workloads/PROG.c on the path c.fx[path_key], made by setup: every call must succeed."""
    return Workload(key, title, "micro", "µs",
                    lambda c: [c.prog(prog), str(c.fx["n"][key]), str(c.fx[path_key])],
                    20_000, 200, 9, setup=setup, expect=every_call_ok,
                    size_text="{n:,} calls per run", short=short, extras=list(extras))


def _files_in(path_key: str, files_key: str):
    def check(c: Ctx) -> str | None:
        dst = c.fx[path_key]
        try:
            got = fixtures.count_files(dst) if dst.exists() else 0
            want = c.fx[files_key]
            return None if got >= want else f"{dst}: {got} files, expected {want}"
        finally:
            fixtures.remove(dst)
    return check


def setup_tree(c: Ctx, n: int) -> None:
    if "tree" not in c.fx:
        c.fx["tree"] = fixtures.file_tree(c.work / "fx", n)
        c.fx["tree_files"] = n
        c.fx["tree_copy"] = c.work / "scratch" / "copy"
        # into memory: on this VM's disk, 20,000 new files a run make the
        # kernel's writeback throttling, not the syscalls, the figure
        shm = Path("/dev/shm")
        c.fx["untar"] = (Path(tempfile.mkdtemp(prefix="yama-bench-", dir=shm)) if shm.is_dir()
                         and os.access(shm, os.W_OK) else c.work / "scratch") / "untar"


def setup_tar(c: Ctx, n: int) -> None:
    setup_tree(c, n)
    c.fx["archive"] = fixtures.tar_archive(c.work / "fx", c.fx["tree"])


def setup_git(c: Ctx, n: int) -> None:
    c.fx["repo"] = fixtures.git_repo(c.work / "fx", n)
    c.fx["repo_files"] = n
    c.fx["repo_objects"] = fixtures.loose_objects(c.fx["repo"])
    c.fx["clone"] = c.work / "scratch" / "clone"


def setup_make(c: Ctx, n: int) -> None:
    c.fx["cproj"] = fixtures.c_project(c.work / "fx", n)


def make_clean(project: str):
    """Before each run (untimed): `make clean` in the fixture c.fx[project]."""
    def clean(c: Ctx) -> None:
        subprocess.run(["make", "-s", "-C", str(c.fx[project]), "clean"], check=True,
                       stdout=subprocess.DEVNULL)
    return clean


def make_built(project: str, program: str):
    """After each run: the fixture's program must have been built."""
    def check(c: Ctx) -> str | None:
        built = c.fx[project] / program
        return None if built.exists() else f"{built} was not built"
    return check


def setup_firefox(c: Ctx, n: int) -> str | None:
    exe = shutil.which("firefox-esr") or shutil.which("firefox")
    if exe is None:
        return "firefox-esr is not installed (apt-get install firefox-esr)"
    c.fx["firefox"] = exe
    c.fx["ff"] = fixtures.firefox_inputs(c.work / "fx")
    return None


def firefox_argv(c: Ctx) -> list[str]:
    ff = c.fx["ff"]
    return [c.fx["firefox"], "--headless", "--no-remote", "--profile", str(ff["profile"]),
            "--screenshot", str(ff["out"]), ff["page"].as_uri()]


def firefox_shot(c: Ctx) -> str | None:
    out = c.fx["ff"]["out"]
    try:
        return None if out.exists() and out.stat().st_size > 0 else f"no screenshot in {out}"
    finally:
        fixtures.remove(out)


def setup_files(c: Ctx, n: int) -> None:
    (c.work / "fx").mkdir(exist_ok=True)
    plain = c.work / "fx" / "plain.txt"
    plain.write_text("an ordinary file\n")
    plain.chmod(0o644)
    c.fx["plain"] = plain
    c.fx["n"]["open_close"] = c.fx["n"]["stat"] = n


def setup_links(c: Ctx, n: int) -> str | None:
    """The two common symlinks on a path: a directory (/lib on merged /usr)
    and a trailing one (/etc/os-release)."""
    lib = os.path.realpath("/lib")
    libc = sorted(str(p) for p in Path("/lib").glob("*/libc.so.6"))
    if lib == "/lib" or not libc:
        return "/lib is not a symlink here (no merged /usr): no libc.so.6 through a linked directory"
    if not os.path.islink("/etc/os-release"):
        return "/etc/os-release is not a symlink here"
    c.fx["dir_link"], c.fx["trailing_link"] = libc[0], "/etc/os-release"
    for key in ("open_dir_link", "open_trailing_link", "stat_link"):
        c.fx["n"][key] = n
    return None


def setup_deep_target(c: Ctx, n: int) -> str | None:
    if not c.root:
        return "needs root and setpriv for the uid-1001 caller (ours would be allowed natively)"
    top, pid = fixtures.deep_process(DEEP)
    c.fx["procs"].append(top)
    c.fx["deep_pid"] = pid
    return None


def setup_git_status(c: Ctx, n: int) -> None:
    if "repo" not in c.fx:
        setup_git(c, n)


def setup_make_one(c: Ctx, n: int) -> None:
    c.fx["cone"] = fixtures.c_program(c.work / "fx")


def workloads() -> list[Workload]:
    py = lambda c: c.python   # noqa: E731
    return [
        _micro("getppid", "unhooked syscall: getppid()", "getppid", 1_000_000, 20_000, 9,
               short="getppid, unhooked",
               unit="ns", extras=[Comparator(
                   "floor-any-filter", "no yama-run: a 1-insn ALLOW filter",
                   lambda c, a: [*a, "allow-filter"], diagnostic=True)]),
        _micro("pvm_readv_self", "hooked, settled in C: process_vm_readv of oneself",
               "pvm_readv_self", 20_000, 200, 9,
               short="process_vm_readv of itself, settled in C", extras=[Comparator(
                   "floor-bare-responder", "no yama-run: bare C notify responder",
                   lambda c, a: [c.prog("notify_floor"), *a[1:]], diagnostic=True)]),
        _micro("ptrace_attach", "hooked, decided in Python: PTRACE_ATTACH denied "
               "(caller uid 1001, unrelated target)", "ptrace_attach", 5_000, 100, 9,
               short="PTRACE_ATTACH denied, uid 1001 caller",
               expect=attach_denied, extra_args=lambda c: [str(c.target_pid)], as_user=True,
               extras=[Comparator(
                   "yama-scope3", "yama-run --set ptrace.scope=3, root caller",
                   lambda c, a: [*c.yama, "--set", "ptrace.scope=3", "--", *a],
                   diagnostic=True, root_caller=True)]),
        _micro("ptrace_deep", f"hooked, decided by the chain at scope 1: PTRACE_ATTACH denied "
               f"(caller uid 1001, target {DEEP} ancestors deep)", "ptrace_attach", 5_000, 100,
               9, short=f"PTRACE_ATTACH at scope 1, target {DEEP} deep",
               expect=attach_denied, extra_args=lambda c: [str(c.fx["deep_pid"])],
               as_user=True, setup=setup_deep_target),
        _micro("prctl_ptracer", "hooked, emulated in Python: prctl(PR_SET_PTRACER, 0)",
               "prctl_ptracer", 20_000, 200, 9, expect=ptracer_result,
               short="prctl(PR_SET_PTRACER, 0), emulated"),
        _micro("linkat", "emulated linkat (caller owns the file)", "linkat", 10_000, 200, 9,
               short="linkat, emulated",
               extra_args=lambda c: [str(c.work / "scratch" / "links")]),
        _on_path("open_close", "open + close of an ordinary file", "open_close", "plain",
                 setup_files, "open + close", extras=[Comparator(
                     "floor-addfd-responder", "no yama-run: bare C responder, each open "
                     "answered with a descriptor (ADDFD)",
                     lambda c, a: [c.prog("notify_floor"), a[1], "addfd", a[2]],
                     diagnostic=True)]),
        _on_path("stat", "stat of an ordinary file", "stat", "plain", setup_files, "stat"),
        _on_path("open_dir_link", "open + close through a symlinked directory "
                 "(/lib/ARCH/libc.so.6, /lib -> usr/lib)", "open_close", "dir_link",
                 setup_links, "open + close via a linked directory"),
        _on_path("open_trailing_link", "open + close through a trailing symlink "
                 "(/etc/os-release)", "open_close", "trailing_link", setup_links,
                 "open + close via a trailing link"),
        _on_path("stat_link", "stat through a symlink (/etc/os-release)", "stat",
                 "trailing_link", setup_links, "stat via a symlink"),
        Workload("cp_al", "cp -al of a file tree", "macro", "s",
                 lambda c: ["cp", "-al", str(c.fx["tree"]), str(c.fx["tree_copy"])],
                 20_000, 200, 5, setup=setup_tree, after=_files_in("tree_copy", "tree_files"),
                 size_text="{n:,} files", short="cp -al"),
        Workload("tar_x", "tar -x of an archive of a file tree, into /dev/shm", "macro", "s",
                 lambda c: ["tar", "-xf", str(c.fx["archive"]), "-C", str(c.fx["untar"])],
                 20_000, 200, 5, setup=setup_tar,
                 before=lambda c: c.fx["untar"].mkdir(parents=True),
                 after=_files_in("untar", "tree_files"), size_text="{n:,} files", short="tar -x"),
        Workload("git_clone", "git clone --local (hard-links the loose objects)", "macro", "s",
                 lambda c: ["git", "clone", "--quiet", "--local", str(c.fx["repo"]),
                            str(c.fx["clone"])],
                 4_000, 50, 5, setup=setup_git, after=_files_in("clone", "repo_files"),
                 size_text="{n:,} files", short="git clone --local"),
        Workload("git_status", "git status in a checkout", "macro", "ms",
                 lambda c: ["git", "-C", str(c.fx["repo"]), "status", "--porcelain"],
                 4_000, 50, 11, setup=setup_git_status, size_text="{n:,} files",
                 short="git status"),
        Workload("python", "python3 -c pass", "macro", "ms",
                 lambda c: [c.python, "-c", "pass"], 1, 1, 11, size_text=""),
        Workload("make", "make -j2 of a small C project", "macro", "s",
                 lambda c: ["make", "-s", "-j2", "-C", str(c.fx["cproj"])],
                 16, 2, 5, setup=setup_make, before=make_clean("cproj"),
                 after=make_built("cproj", "app"),
                 size_text="{n} C files of 20 functions and a main", short="make -j2"),
        Workload("make_one", "make of one C file", "macro", "ms",
                 lambda c: ["make", "-s", "-C", str(c.fx["cone"])], 1, 1, 11,
                 setup=setup_make_one, before=make_clean("cone"),
                 after=make_built("cone", "hello"),
                 size_text="", short="make of one file"),
        Workload("firefox", "Firefox ESR headless screenshot of a local page", "macro", "s",
                 firefox_argv, 1, 1, 5, setup=setup_firefox, after=firefox_shot,
                 env=lambda c: {"HOME": str(c.fx["ff"]["home"])}, timeout=90,
                 accept_exit={"firejail": ({143}, "firejail often exits 143 (SIGTERM) after "
                                           "Firefox has written the screenshot, as it ends the "
                                           "sandbox's leftover processes; such a run counts "
                                           "when the screenshot is there")},
                 size_text="one page, a kept profile", short="Firefox headless screenshot"),
        Workload("startup", "start-up: `true`", "startup", "ms", lambda c: ["true"], 1, 1, 15,
                 short="start-up (true)", extras=[
                     Comparator("python-S", "python3 -IS -c pass (yama-run's interpreter)",
                                lambda c, a: [py(c), "-IS", "-c", "pass"], diagnostic=True),
                     Comparator("python-launch", "python3 -IS: import sandbox.launch "
                                "(what a cached start loads before the program runs)",
                                lambda c, a: c.py_import("sandbox.launch"), diagnostic=True),
                     Comparator("python-import", "python3 -IS: import sandbox.cli "
                                "(a start without a cached plan)",
                                lambda c, a: c.py_import("sandbox.cli"), diagnostic=True)]),
    ]


# -- goals (issue 17) -----------------------------------------------------------------

@dataclass
class Goal:
    """metric: "ratio" (median / native median), "median" (in the workload's
    unit), "floor" (median / the bare round trip), "floor_above" ((median -
    native median) / the bare round trip) or "below:COMPARATOR" (median /
    that comparator's median: under 1 means faster)."""
    text: str
    workload: str
    metric: str
    limit: float
    strict: bool = False

    def value(self, stats: dict, by: dict, floor_ns: float | None, unit: str) -> float | None:
        scale = UNITS[unit]
        median = stats["median"] * scale
        native = by.get("native")
        if self.metric == "ratio":
            return stats["ratio"]
        if self.metric == "median":
            return stats["median"]
        if self.metric.startswith("below:"):
            other = by.get(self.metric.split(":", 1)[1])
            return (median / (other["median"] * scale)
                    if other and other["status"] == "ok" else None)
        if floor_ns is None:
            return None
        if self.metric == "floor":
            return median / floor_ns
        if native is None or native["status"] != "ok":
            return None
        return (median - native["median"] * scale) / floor_ns

    def check(self, value: float) -> bool:
        return value < self.limit if self.strict else value <= self.limit

    def limit_text(self, unit: str) -> str:
        op = "<" if self.strict else "<="
        if self.metric == "median":
            return f"{op} {self.limit:g} {unit}"
        if self.metric.startswith("below:"):
            return f"under {self.metric.split(':', 1)[1]}"
        what = {"ratio": "native", "floor": "the round trip",
                "floor_above": "the round trip above native"}[self.metric]
        return f"{op} {self.limit:g}x {what}"


GOALS = [
    Goal("`yama-run -- true`", "startup", "median", 20.0),
    Goal("`yama-run -- true`: under firejail --noprofile", "startup", "below:firejail", 1.0,
         strict=True),
    Goal("a call settled in C", "pvm_readv_self", "floor", 1.2),
    Goal("ptrace decided by the chain at scope 1 (uid 1001, target several ancestors deep)",
         "ptrace_deep", "floor", 2.5),
    Goal("open+close of a plain file, every protection on", "open_close", "floor_above", 2.0),
    Goal("open through a symlinked directory", "open_dir_link", "floor_above", 2.5),
    Goal("open through a trailing symlink", "open_trailing_link", "floor_above", 2.5),
    Goal("stat", "stat", "floor_above", 1.5),
    Goal("stat through a symlink", "stat_link", "floor_above", 1.5),
    Goal("cp -al of 20,000 files, every protection on", "cp_al", "ratio", 2.0),
    Goal("git status", "git_status", "ratio", 2.0),
    Goal("python3 -c pass", "python", "ratio", 2.0),
    Goal("make of one file", "make_one", "ratio", 2.0),
    Goal("Firefox headless screenshot under its bundled profile", "firefox", "ratio", 1.05),
]


# -- running ---------------------------------------------------------------------------

def yama_command(explicit: str | None, work: Path) -> tuple[list[str], str, list[str]]:
    """How to start the yama-run measured, its interpreter, and the sys.path
    entries that find its package and dependencies: the one given with
    --yama-run (an installed command), else this tree, started as the
    installed command starts (bin/yama-run.py: python3 -IS, paths added by hand)."""
    if explicit:
        script = shutil.which(explicit) if "/" not in explicit else explicit
        if script is None or not os.access(script, os.X_OK):
            raise BenchError(f"--yama-run {explicit}: not an executable")
        python = interpreter_of(script)
        return [os.path.abspath(script)], python, installed_path(python, script)
    if not list((REPO / "sandbox").glob("_yama*.so")):
        raise BenchError(f"the C extension is not built in {REPO}: run "
                         f"`python3 setup.py build_ext --inplace` there first")
    python = os.path.realpath(sys.executable)
    pypath = [str(REPO), *(p for p in site.getsitepackages() if os.path.isdir(p))]
    script = work / "bin" / "yama-run"
    script.write_text(WRAPPER.format(python=python, path=pypath))
    script.chmod(0o755)
    return [str(script)], python, pypath


# This tree's command, as bin/yama-run.py starts an installed one: no `site`, the
# package and the interpreter's site-packages (without their .pth files) on
# sys.path by hand.
WRAPPER = """#!{python} -IS
import sys
sys.path[:0] = {path!r}
from sandbox.launch import main
main()
"""


def interpreter_of(script: str) -> str:
    """The python3 an installed yama-run runs on: its shebang's, or (the
    compiled command, csrc/launcher.c) the one beside its real path."""
    try:
        with open(script, "rb") as f:
            first = f.readline().decode(errors="replace")
    except OSError as exc:
        raise BenchError(f"--yama-run {script}: {exc.strerror}") from None
    if first.startswith("#!") and "python" in first:
        return first[2:].split()[0]
    beside = os.path.join(os.path.dirname(os.path.realpath(script)), "python3")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("python3")
    if found is None:
        raise BenchError(f"--yama-run {script}: cannot tell which python3 it runs on")
    return found


def installed_path(python: str, script: str) -> list[str]:
    """The sys.path of that interpreter with `site` (its venv's site-packages,
    their .pth files): where it finds the sandbox package it runs."""
    code = "import json, sys, sandbox; print(json.dumps([p for p in sys.path if p]))"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                              cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"--yama-run {script}: {python} cannot be run: {exc}") from None
    if done.returncode != 0:
        raise BenchError(f"--yama-run {script}: {python} cannot import its sandbox package: "
                         f"{done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def strace_syscalls(ctx_python: str, pypath: list[str]) -> list[str]:
    """The syscalls the measured yama-run's filter can route (sandbox.routes.ROUTES)."""
    code = (f"import sys; sys.path[:0] = {pypath!r}; from sandbox.routes import ROUTES; "
            "print(','.join(sorted({n for r in ROUTES.values() for n, _ in r})))")
    try:
        done = subprocess.run([ctx_python, "-IS", "-c", code], capture_output=True, text=True,
                              timeout=60, cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"cannot ask the measured yama-run what it routes: {exc}") from None
    out = done.stdout.strip()
    if done.returncode != 0 or not out:
        raise BenchError("cannot ask the measured yama-run what it routes: "
                         f"{done.stderr.strip()[-300:]}")
    return out.split(",")


def build_programs(bindir: Path) -> None:
    if shutil.which("gcc") is None:
        raise BenchError("needs gcc to build the workloads")
    for src in sorted(WORKLOADS.glob("*.c")):
        done = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", str(bindir / src.stem),
                               str(src)], capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"cannot build {src.name}:\n{done.stderr}")


class Hung(BenchError):
    """A run that did not finish in time: a hang, not noise."""


def run_command(argv: list[str], timeout: float, env: dict, cwd: Path):
    """Run argv in a session of its own; on timeout, kill that whole session."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", env=env,
                            cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise Hung(f"`{' '.join(argv)}` did not finish in {timeout:g} s (killed)") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run_once(w: Workload, comp: Comparator, ctx: Ctx) -> dict:
    """One timed run; returns {"ns": ..., "wall_ms": ...}; raises BenchError."""
    core = w.argv(ctx)
    if w.as_user and not comp.root_caller:
        core = [*ctx.unpriv(), *core]
    argv = comp.wrap(ctx, core)
    env = {**comp.env(ctx), **(w.env(ctx) if w.env else {})}
    if w.before:
        w.before(ctx)
    timeout = w.timeout / 3 if ctx.quick else w.timeout
    try:
        with kernel_knobs(comp.kernel):
            t0 = time.perf_counter_ns()
            done = run_command(argv, timeout, env, ctx.work)
            t1 = time.perf_counter_ns()
    finally:
        complaint = w.after(ctx) if w.after else None
    accepted = w.accept_exit.get(comp.key, (set(), ""))[0]
    if done.returncode != 0 and done.returncode not in accepted:
        raise BenchError(f"`{' '.join(argv)}` exits {done.returncode}: "
                         f"{done.stderr.strip()[-600:]}")
    if complaint:
        raise BenchError(f"`{' '.join(argv)}`: {complaint}")
    sample = {"wall_ms": round((t1 - t0) / 1e6, 3)}
    if done.returncode != 0:
        sample["exit"] = done.returncode
    if w.kind != "micro":
        return {"ns": float(t1 - t0), **sample}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise BenchError(f"`{' '.join(argv)}` printed no RESULT line: {done.stderr.strip()}")
    r = json.loads(lines[-1][len("RESULT "):])
    want = ctx.fx["n"][w.key]
    if r["calls"] != want:
        raise BenchError(f"`{' '.join(argv)}` made {r['calls']} calls, not {want}")
    complaint = w.expect(r, comp.key) if w.expect else None
    if complaint:
        raise BenchError(f"`{' '.join(argv)}`: {complaint}")
    return {"ns": r["ns_per_call"], **sample, "ok": r["ok"], "fail": r["fail"],
            "errno": r["errno"]}


def run_workload(w: Workload, comps: list[Comparator], ctx: Ctx, rounds: int,
                 index: str) -> dict:
    n = w.size(ctx)
    runs: dict[str, list[dict]] = {c.key: [] for c in comps}
    errors: dict[str, list[str]] = {c.key: [] for c in comps}
    size = w.size_text.format(n=n) if w.size_text else ""
    print(f"\n[{index}] {w.key}: {w.title}{f' ({size})' if size else ''}, "
          f"{rounds} round(s){' + 1 warm-up' if not ctx.quick else ''} "
          f"(at {time.monotonic() - ctx.started:.0f} s)", flush=True)
    live = [c for c in comps if c.skip is None]
    schedule = ([-1] if not ctx.quick else []) + list(range(rounds))
    load = os.getloadavg()[0]
    give_up = 1 if ctx.quick else 2          # failures before a comparator is dropped
    for r in schedule:
        order = live if r % 2 == 0 else list(reversed(live))
        print(f"   {'warm-up' if r < 0 else f'round {r + 1}/{rounds}'}:", end="", flush=True)
        for c in order:
            if len(errors[c.key]) >= give_up:
                continue
            try:
                sample = run_once(w, c, ctx)
            except BenchError as exc:
                errors[c.key].append(f"round {r + 1}: {exc}" if r >= 0 else f"warm-up: {exc}")
                if isinstance(exc, Hung):       # no second wait
                    errors[c.key] += [""] * give_up
                print(f" {c.key} FAILED", end="", flush=True)
                continue
            if r >= 0:
                runs[c.key].append({"round": r, **sample})
            print(f" {c.key} {fmt(sample['ns'], w.unit)}", end="", flush=True)
        print(f" {w.unit}", flush=True)
    for key in errors:
        errors[key] = [e for e in errors[key] if e]
        for err in errors[key]:
            print(f"   {key} FAILED: {err}", flush=True)
    return {**summarize(w, comps, runs, errors, rounds, n, size), "loadavg_1min_at_start": load}


def summarize(w, comps, runs, errors, rounds, n, size) -> dict:
    scale = UNITS[w.unit]
    base = runs.get("native") or []
    base_med = statistics.median(x["ns"] for x in base) if base else None
    out = []
    for c in comps:
        entry = {"key": c.key, "label": c.label, "diagnostic": c.diagnostic}
        if c.skip:
            out.append({**entry, "status": "skipped", "reason": c.skip})
            continue
        if not runs[c.key]:
            out.append({**entry, "status": "failed", "reason": errors[c.key][-1],
                        "failures": errors[c.key]})
            continue
        entry["failures"] = errors[c.key]
        vals = [x["ns"] for x in runs[c.key]]
        med = statistics.median(vals)
        native_by_round = {b["round"]: b["ns"] for b in base}
        paired = [x["ns"] / native_by_round[x["round"]] for x in runs[c.key]
                  if x["round"] in native_by_round]
        out.append({
            **entry, "status": "ok",
            "samples": [{**x, "value": x["ns"] / scale} for x in runs[c.key]],
            "median": med / scale, "min": min(vals) / scale, "max": max(vals) / scale,
            "ratio": med / base_med if base_med else None,
            "paired_ratio": statistics.median(paired) if paired else None,
        })
    return {"key": w.key, "title": w.title, "kind": w.kind, "unit": w.unit,
            "per": "call" if w.kind == "micro" else "run", "size": n, "size_text": size,
            "short": w.short, "rounds": rounds, "status": "ok", "comparators": out,
            "notes": {k: why for k, (_, why) in w.accept_exit.items()}}


def skipped_workload(w: Workload, reason: str) -> dict:
    print(f"\n[-] {w.key}: {w.title}: SKIPPED: {reason}", flush=True)
    return {"key": w.key, "title": w.title, "kind": w.kind, "unit": w.unit, "status": "skipped",
            "reason": reason, "comparators": []}


def floor_ns(results: list[dict], which: tuple[str, str] = FLOOR) -> float | None:
    """The bare user-notify round trip measured in this run (ns), if it was
    (which=ADDFD_FLOOR: the one answered with a descriptor)."""
    workload, comp = which
    for r in results:
        for c in r["comparators"] if r["key"] == workload else ():
            if c["key"] == comp and c["status"] == "ok":
                return c["median"] * UNITS[r["unit"]]
    return None


def evaluate_goals(results: list[dict], quick: bool, present: list[str]) -> list[dict]:
    """Issue 17's goals, each judged for every yama-run comparator in the run
    (in quick mode: computed, never judged)."""
    by_key = {r["key"]: r for r in results}
    floor = floor_ns(results)
    out = []
    for g in GOALS:
        r = by_key.get(g.workload)
        if r is None:
            continue
        row = {"goal": g.text, "workload": g.workload, "limit": g.limit_text(r["unit"]),
               "metric": g.metric, "results": {}}
        by = {c["key"]: c for c in r["comparators"]}
        for comp in (k for k in GOAL_COMPARATORS if k in present):
            s = by.get(comp)
            if s is None or s["status"] != "ok":
                row["results"][comp] = {"status": s["status"] if s else r["status"]}
                continue
            value = g.value(s, by, floor, r["unit"])
            if value is None:
                missing = (g.metric.split(":", 1)[1] if g.metric.startswith("below:")
                           else "the round trip" if g.metric == "floor" else
                           "native or the round trip")
                row["results"][comp] = {"status": f"{missing} not measured"}
                continue
            row["results"][comp] = {"status": "ok", "value": value,
                                    "met": None if quick else g.check(value)}
        out.append(row)
    return out


# -- main ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one round")
    ap.add_argument("--only", action="append", metavar="WORKLOAD",
                    help="run only this workload (repeatable; comma-separated lists too)")
    ap.add_argument("--out", type=Path, help="output directory (default: "
                    "benchmarks/results/MODE-YYYYmmdd-HHMMSS)")
    ap.add_argument("--rounds", type=int, help="rounds per workload (default: per workload)")
    ap.add_argument("--yama-run", dest="yama_run", metavar="PATH",
                    help="measure this yama-run, an installed command (default: this tree, "
                         "started as the installed command starts)")
    ap.add_argument("--before", metavar="PATH",
                    help="also run this yama-run (say, an install of main) with its default "
                         "profile: before and after in one run")
    args = ap.parse_args(argv)
    # A TERM (a CI timeout, kill) ends the run through its finally blocks: the
    # sysctls a comparator set are restored, the fixtures' processes ended.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    all_w = workloads()
    if args.only:
        wanted = {k for item in args.only for k in item.split(",") if k}
        unknown = wanted - {w.key for w in all_w}
        if unknown:
            ap.error(f"unknown workload(s): {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(w.key for w in all_w)}")
        wanted.add(FLOOR[0])        # every figure beside the round trip of the same run
        all_w = [w for w in all_w if w.key in wanted]
    mode = "quick" if args.quick else "full"
    out = args.out or HERE / "results" / f"{mode}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    started = time.monotonic()

    work = Path(tempfile.mkdtemp(prefix="yama-bench-"))
    target = ctx = None
    try:
        work.chmod(0o755)                       # the uid-1001 caller must reach the programs
        for d in ("bin", "fx", "scratch", "scratch/links"):
            (work / d).mkdir()
            (work / d).chmod(0o755)
        build_programs(work / "bin")
        yama, python, pypath = yama_command(args.yama_run, work)
        empty = work / "empty-chain.toml"
        empty.write_text("# no module: yama-run installs no filter\nchain = []\n")
        root = os.geteuid() == 0 and shutil.which("setpriv") is not None
        if root:      # an unrelated process outside any sandbox: neither ancestor nor descendant
            target = subprocess.Popen(["sleep", "1000000"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, start_new_session=True)
        env = dict(os.environ)
        # Python start-up with compiled bytecode, as an installed yama-run has it,
        # whatever the state of the tree's __pycache__.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        ctx = Ctx(quick=args.quick, work=work, yama=yama, python=python, pypath=pypath, env=env,
                  root=root, target_pid=target.pid if target else 1,
                  strace_set=strace_syscalls(python, pypath), empty_profile=empty,
                  fx={"n": {}, "procs": []})
        comps = comparators(args.before)
        info = machine(ctx, REPO)
        print(f"yama-run benchmarks, {mode} mode: {' '.join(yama)}; results in {out}", flush=True)
        for c in comps:
            c.skip = probe(c, ctx)
            print(f"   {c.key:13} {'SKIPPED: ' + c.skip if c.skip else c.shown(ctx)}", flush=True)
        results = []
        for i, w in enumerate(all_w, 1):
            n = w.size(ctx)
            reason = w.setup(ctx, n) if w.setup else None
            if reason:
                results.append(skipped_workload(w, reason))
                continue
            rounds = 1 if args.quick else (args.rounds or w.rounds)
            results.append(run_workload(w, [*comps, *w.extras], ctx, rounds, f"{i}/{len(all_w)}"))
    finally:
        if target is not None:
            target.send_signal(signal.SIGKILL)
            target.wait()
        for proc in ctx.fx["procs"] if ctx is not None else ():
            os.killpg(proc.pid, signal.SIGKILL)         # its session: every shell and the sleep
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        if ctx is not None and "untar" in ctx.fx:
            shutil.rmtree(ctx.fx["untar"].parent, ignore_errors=True)
    info["loadavg_end"] = os.getloadavg()
    info["sysctl_end"] = sysctls()
    command = " ".join(["python3", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    doc = {"mode": mode, "command": command, "duration_s": round(time.monotonic() - started, 1),
           "machine": info,
           "comparators": [{"key": c.key, "label": c.label, "command": c.shown(ctx),
                            "skip": c.skip} for c in comps],
           "workloads": results, "floor_ns": floor_ns(results),
           "addfd_floor_ns": floor_ns(results, ADDFD_FLOOR),
           "goals": evaluate_goals(results, args.quick, [c.key for c in comps])}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown(doc))
    (out / "results.png").write_bytes(plot(doc))
    print("\n== medians (ratio to native)" + (" — quick: no timing claims" if args.quick else ""))
    print_table(doc)
    failed = [(r["key"], c["key"]) for r in results for c in r["comparators"]
              if c["status"] == "failed"]
    print(f"\nwrote {out}/results.json, results.md, results.png ({doc['duration_s']} s)")
    if failed:
        print("failed: " + ", ".join(f"{w} under {c}" for w, c in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
