#!/usr/bin/env python3
"""yama-run overhead benchmarks: native vs yama-run, per syscall and at start-up.

    python3 benchmarks/run.py [--quick] [--out DIR]

What is measured (each C workload in benchmarks/workloads/ times its own loop
with clock_gettime and prints the per-call figure, so process start-up never
enters a per-call number):

  getppid         an unhooked syscall: native, `yama-run --` (default profile,
                  a filter is installed) and `yama-run --no-profile`
                  goal: <= 1.05x native
  ptrace_attach   PTRACE_ATTACH to an unrelated process (started by this script,
                  outside the sandbox), denied by the Python chain:
                  `--set ptrace.scope=3` as root (the pure chain cost) and the
                  default scope 1 with the caller made uid 1001 by setpriv inside
                  the sandbox (the supervisor stays root); the native figure is
                  the same failing call (EPERM) as uid 1001.   goal: <= 8 us
  prctl_ptracer   prctl(PR_SET_PTRACER, 0), emulated by the chain.  goal: <= 8 us
  pvm_readv_self  process_vm_readv of the caller's own memory, settled in C
                  without Python.   goal: <= 3.5 us
  startup         `yama-run -- true` vs `true`, wall time. goal: < 24 ms

Variants marked "diagnostic" have no goal; they tell where the time goes:
  yama-empty-chain      yama-run with an empty chain: it installs no filter
  floor-any-filter      no yama-run, a one-instruction ALLOW filter: the kernel's
                        fixed cost of any seccomp filter on an unhooked call
  floor-bare-responder  no yama-run, a minimal C user-notify responder doing what
                        yama-run's C fast path does (workloads/notify_floor.c): the
                        kernel's round-trip floor for a hooked call on this machine
  python*               yama-run's interpreter alone (-S; with site and .pth
                        files), and importing sandbox.cli: start-up components

Runs are interleaved: every round runs each variant once, alternating the
order (A B C, C B A, ...), so the slow drifts of this noisy VM hit all variants
alike; figures are medians over the rounds, with min, max and the ratio to the
native median (also the median of the per-round ratios). Full mode runs one
discarded warm-up round first.

--quick runs every variant once with a small N: a smoke test that everything
runs and gives the expected results; its figures are no measurement.

Output: a table on stdout, and in --out (default benchmarks/results/) a JSON
file with every run and the machine, and a Markdown table, both named
yama-run-bench-{full|quick}-YYYYmmdd-HHMMSS.

Python bytecode: the runs get PYTHONPYCACHEPREFIX set to a private temporary
directory (and PYTHONDONTWRITEBYTECODE unset), so yama-run starts with compiled
bytecode as an installed copy would, whatever the state of the tree's
__pycache__; the warm-up round fills that cache.

Needs gcc; root for the uid-1001 variants (without root they run as the
current user and attach to pid 1 instead).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS = HERE / "workloads"
UNPRIV = ("1001", "1001")           # uid, gid the unprivileged callers run as

UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6}   # unit -> ns per unit
UNIT_TEXT = {"ns": "ns", "us": "µs", "ms": "ms"}


class BenchError(Exception):
    pass


# -- what to run ----------------------------------------------------------------

@dataclass
class Context:
    yama: list[str]           # how to start yama-run
    python: str               # the interpreter yama-run runs on
    bindir: Path
    target_pid: int
    root: bool
    empty_profile: Path
    env: dict[str, str]       # the environment of every run

    def unpriv(self) -> list[str]:
        """Prefix that makes the caller an unprivileged user (root only)."""
        if not self.root:
            return []
        return ["setpriv", f"--reuid={UNPRIV[0]}", f"--regid={UNPRIV[1]}", "--clear-groups"]

    def prog(self, name: str) -> str:
        return str(self.bindir / name)


@dataclass
class Variant:
    key: str
    label: str
    argv: Callable[[Context, list[str]], list[str]]   # (ctx, workload argv) -> argv
    expect: Callable[[dict], str | None] | None = None  # result -> complaint
    diagnostic: bool = False


@dataclass
class Goal:
    variant: str
    metric: str               # "median" or "ratio"
    limit: float
    strict: bool = False      # < instead of <=

    def text(self, unit: str) -> str:
        op = "<" if self.strict else "<="
        if self.metric == "ratio":
            return f"{op} {self.limit:g}x"
        return f"{op} {self.limit:g} {UNIT_TEXT[unit]}"

    def met(self, stats: dict) -> bool:
        value = stats[self.metric]
        return value < self.limit if self.strict else value <= self.limit


@dataclass
class Bench:
    key: str
    title: str
    unit: str
    workload: str | None      # C program, or None for the start-up wall time
    args: Callable[[Context, int], list[str]]
    n_full: int
    n_quick: int
    rounds: int
    variants: list[Variant]
    baseline: str
    goals: list[Goal] = field(default_factory=list)


def _calls(ok_errno: str | None = None, success: bool = True):
    """An expectation: every call succeeded (ok), or every call failed with errno."""
    def check(r: dict) -> str | None:
        if success and r["ok"] == r["calls"] and r["fail"] == 0:
            return None
        if not success and r["fail"] == r["calls"] and r["errno"] == ok_errno:
            return None
        want = "every call to succeed" if success else f"every call to fail with {ok_errno}"
        return f"expected {want}; got ok={r['ok']} fail={r['fail']} errno={r['errno']!r}"
    return check


def _denied(r: dict) -> str | None:
    # ptrace_attach counts -1/EPERM as ok (and stops if an attach succeeds)
    if r["ok"] == r["calls"]:
        return None
    return f"expected EPERM on every call; got ok={r['ok']} fail={r['fail']} errno={r['errno']!r}"


def _prctl_native(r: dict) -> str | None:
    # without Yama in the kernel PR_SET_PTRACER is EINVAL; with Yama it is 0
    if r["ok"] == r["calls"] or (r["fail"] == r["calls"] and r["errno"] == "EINVAL"):
        return None
    return f"unexpected: ok={r['ok']} fail={r['fail']} errno={r['errno']!r}"


def benches() -> list[Bench]:
    native = lambda c, w: w                                   # noqa: E731
    yama = lambda *opts: (lambda c, w: [*c.yama, *opts, "--", *w])  # noqa: E731
    empty = lambda c, w: [*c.yama, "--profile", str(c.empty_profile), "--", *w]  # noqa: E731
    ok = _calls()
    return [
        Bench(
            key="getppid", title="unhooked syscall: getppid()", unit="ns",
            workload="getppid", args=lambda c, n: [str(n)],
            n_full=2_000_000, n_quick=20_000, rounds=15, baseline="native",
            variants=[
                Variant("native", "native", native, ok),
                Variant("yama-default", "yama-run (default profile: filter)", yama(), ok),
                Variant("yama-no-profile", "yama-run --no-profile", yama("--no-profile"), ok),
                Variant("yama-empty-chain", "yama-run, empty chain (no filter)", empty, ok,
                        diagnostic=True),
                Variant("floor-any-filter", "no yama-run: a 1-insn ALLOW filter",
                        lambda c, w: [*w, "allow-filter"], ok, diagnostic=True),
            ],
            goals=[Goal("yama-default", "ratio", 1.05), Goal("yama-no-profile", "ratio", 1.05)],
        ),
        Bench(
            key="ptrace_attach",
            title="hooked, decided in Python: PTRACE_ATTACH to an unrelated process (EPERM)",
            unit="us", workload="ptrace_attach",
            args=lambda c, n: [str(n), str(c.target_pid)],
            n_full=5_000, n_quick=50, rounds=11, baseline="native-uid",
            variants=[
                Variant("native-uid", "native, uid 1001 (EPERM by the kernel)",
                        lambda c, w: [*c.unpriv(), *w], _denied),
                Variant("yama-scope3", "yama-run --set ptrace.scope=3 (root caller)",
                        yama("--set", "ptrace.scope=3"), _denied),
                Variant("yama-scope1-uid", "yama-run scope 1, caller uid 1001",
                        lambda c, w: [*c.yama, "--", *c.unpriv(), *w], _denied),
            ],
            goals=[Goal("yama-scope3", "median", 8.0), Goal("yama-scope1-uid", "median", 8.0)],
        ),
        Bench(
            key="prctl_ptracer", title="hooked, emulated in Python: prctl(PR_SET_PTRACER, 0)",
            unit="us", workload="prctl_ptracer", args=lambda c, n: [str(n)],
            n_full=20_000, n_quick=100, rounds=11, baseline="native",
            variants=[
                Variant("native", "native (no Yama in this kernel: EINVAL)", native,
                        _prctl_native),
                Variant("yama-default", "yama-run (default profile, emulated: 0)", yama(), ok),
            ],
            goals=[Goal("yama-default", "median", 8.0)],
        ),
        Bench(
            key="pvm_readv_self", title="hooked, settled in C: process_vm_readv of oneself",
            unit="us", workload="pvm_readv_self", args=lambda c, n: [str(n)],
            n_full=50_000, n_quick=500, rounds=11, baseline="native",
            variants=[
                Variant("native", "native", native, ok),
                Variant("yama-default", "yama-run (default profile)", yama(), ok),
                Variant("floor-bare-responder", "no yama-run: bare C responder (notify_floor)",
                        lambda c, w: [c.prog("notify_floor"), *w[1:]], ok, diagnostic=True),
            ],
            goals=[Goal("yama-default", "median", 3.5)],
        ),
        Bench(
            key="startup", title="start-up: PROGRAM = true, wall time", unit="ms",
            workload=None, args=lambda c, n: ["true"],
            n_full=1, n_quick=1, rounds=31, baseline="native",
            variants=[
                Variant("native", "native true", native),
                Variant("yama-default", "yama-run -- true", yama()),
                Variant("yama-no-profile", "yama-run --no-profile -- true", yama("--no-profile")),
                Variant("yama-empty-chain", "yama-run, empty chain (no filter)", empty,
                        diagnostic=True),
                Variant("python-S", "yama-run's python -S -c pass",
                        lambda c, w: [c.python, "-S", "-c", "pass"], diagnostic=True),
                Variant("python", "yama-run's python -c pass (with site, .pth files)",
                        lambda c, w: [c.python, "-c", "pass"], diagnostic=True),
                Variant("python-import", "yama-run's python -c 'import sandbox.cli'",
                        lambda c, w: [c.python, "-c", "import sandbox.cli"], diagnostic=True),
            ],
            goals=[Goal("yama-default", "median", 24.0, strict=True)],
        ),
    ]


# -- running --------------------------------------------------------------------

def find_yama_run(explicit: str | None) -> list[str]:
    """yama-run as a user would run it, without a version-manager shim (pyenv)
    in front: the script installed next to this Python, else the one on PATH."""
    if explicit:
        return [explicit]
    script = Path(sysconfig.get_path("scripts")) / "yama-run"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    on_path = shutil.which("yama-run")
    if on_path:
        return [on_path]
    return [sys.executable, "-m", "sandbox.cli"]


def interpreter_of(yama: list[str]) -> str:
    """The Python a yama-run script starts (its #! line), else ours."""
    if len(yama) == 1:
        try:
            with open(yama[0], "rb") as f:
                first = f.readline().decode(errors="replace")
        except OSError:
            first = ""
        if first.startswith("#!") and "python" in first:
            return first[2:].split()[0]
    return sys.executable


def build_workloads(outdir: Path) -> None:
    if shutil.which("gcc") is None:
        raise BenchError("needs gcc to build the workloads")
    for src in sorted(WORKLOADS.glob("*.c")):
        exe = outdir / src.stem
        cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(exe), str(src)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"cannot build {src.name}:\n{done.stderr}")


def run_once(bench: Bench, variant: Variant, ctx: Context, n: int) -> dict:
    """One run: {"value": figure in ns, "wall_ms": ...}; raises BenchError."""
    if bench.workload is None:
        argv = variant.argv(ctx, bench.args(ctx, n))
        t0 = time.perf_counter_ns()
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=60, env=ctx.env, cwd=ctx.bindir)
        t1 = time.perf_counter_ns()
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)}: exit {done.returncode}: "
                             f"{done.stderr.decode(errors='replace').strip()}")
        return {"value": float(t1 - t0), "wall_ms": (t1 - t0) / 1e6}
    argv = variant.argv(ctx, [ctx.prog(bench.workload), *bench.args(ctx, n)])
    t0 = time.perf_counter_ns()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=600, env=ctx.env, cwd=ctx.bindir)
    t1 = time.perf_counter_ns()
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"{' '.join(argv)}: exit {done.returncode}\n"
                         f"stdout: {done.stdout.strip()}\nstderr: {done.stderr.strip()}")
    result = json.loads(lines[-1][len("RESULT "):])
    if result["calls"] != n:
        raise BenchError(f"{' '.join(argv)}: ran {result['calls']} calls, not {n}")
    if variant.expect is not None:
        complaint = variant.expect(result)
        if complaint:
            raise BenchError(f"{' '.join(argv)}: {complaint}")
    return {"value": result["ns_per_call"], "wall_ms": (t1 - t0) / 1e6,
            "ok": result["ok"], "fail": result["fail"], "errno": result["errno"]}


def fmt(value_ns: float, unit: str) -> str:
    v = value_ns / UNITS[unit]
    return f"{v:.1f}" if v >= 100 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def run_bench(bench: Bench, ctx: Context, quick: bool) -> dict:
    n = bench.n_quick if quick else bench.n_full
    rounds = 1 if quick else bench.rounds
    variants = bench.variants
    unit = bench.unit
    per_call = f" (N={n:,} calls per run)" if bench.workload else ""
    print(f"\n== {bench.key}: {bench.title}{per_call}, {rounds} round(s), "
          f"{UNIT_TEXT[unit]}{'/call' if bench.workload else ''}", flush=True)
    for v in variants:
        print(f"   {v.key:18} {' '.join(v.argv(ctx, ['PROG']))}", flush=True)
    runs: dict[str, list[dict]] = {v.key: [] for v in variants}
    if not quick:                      # warm-up round: caches, page cache, CPU clocks
        for v in variants:
            run_once(bench, v, ctx, n)
    for r in range(rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for v in order:
            run = run_once(bench, v, ctx, n)
            run["round"] = r
            runs[v.key].append(run)
        print(f"   round {r + 1:2}/{rounds}: " + "  ".join(
            f"{v.key} {fmt(runs[v.key][-1]['value'], unit)}" for v in variants), flush=True)

    base = runs[bench.baseline]
    base_median = statistics.median(x["value"] for x in base)
    out_variants = []
    for v in variants:
        values = [x["value"] for x in runs[v.key]]
        median = statistics.median(values)
        paired = [x["value"] / b["value"] for x, b in zip(runs[v.key], base)]
        stats = {
            "key": v.key, "label": v.label, "diagnostic": v.diagnostic,
            "argv": v.argv(ctx, ["PROG"]),
            "runs": [{**x, "value": x["value"] / UNITS[unit]} for x in runs[v.key]],
            "median": median / UNITS[unit], "min": min(values) / UNITS[unit],
            "max": max(values) / UNITS[unit],
            "ratio": median / base_median,
            "paired_ratio_median": statistics.median(paired),
            "delta": (median - base_median) / UNITS[unit],
        }
        goals = [g for g in bench.goals if g.variant == v.key]
        if goals:
            g = goals[0]
            stats["goal"] = g.text(unit)
            stats["goal_met"] = None if quick else g.met(stats)
        out_variants.append(stats)
    return {"key": bench.key, "title": bench.title, "unit": UNIT_TEXT[unit],
            "per": "call" if bench.workload else "run", "calls_per_run": n if bench.workload else None,
            "rounds": rounds, "baseline": bench.baseline, "variants": out_variants}


# -- reporting ------------------------------------------------------------------

def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def ancestry(pid: int) -> list[int]:
    """pid's ancestors up to pid 1, nearest first (a scope-1 check walks them)."""
    chain = []
    while pid > 1 and len(chain) < 4096:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
        chain.append(pid)
    return chain


def machine(ctx: Context) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lsm = Path("/sys/kernel/security/lsm")
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "uname_r": platform.release(),
        "uname": " ".join(platform.uname()),
        "nproc": int(_cmd(["nproc"]) or 0) or len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "yama_run": " ".join(ctx.yama),
        "yama_run_version": _cmd([*ctx.yama, "--version"]),
        "git_commit": _cmd(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "git_dirty": bool(_cmd(["git", "-C", str(REPO), "status", "--porcelain",
                                "--", "sandbox", "csrc", "profiles"])),
        "kernel_yama": Path("/proc/sys/kernel/yama").exists(),
        "lsm": lsm.read_text().strip() if lsm.exists() else None,
        "euid": os.geteuid(),
        "ptrace_target": {"pid": ctx.target_pid, "ancestors": ancestry(ctx.target_pid)},
        "loadavg": os.getloadavg(),
    }


def table_rows(results: list[dict], quick: bool) -> list[list[str]]:
    rows = []
    for b in results:
        unit = {"ns": "ns", "µs": "us", "ms": "ms"}[b["unit"]]
        what = f"{b['key']} ({b['unit']}/{b['per']})"
        for v in b["variants"]:
            f = lambda x: fmt(x * UNITS[unit], unit)   # noqa: E731
            goal = v.get("goal", "")
            if goal:
                verdict = "n/a" if v.get("goal_met") is None else "met" if v["goal_met"] else "MISSED"
                goal = f"{goal} {verdict}"
            elif v["diagnostic"]:
                goal = "(diagnostic)"
            rows.append([what, v["label"], f(v["median"]), f(v["min"]), f(v["max"]),
                         f"{v['ratio']:.2f}x", f"{v['paired_ratio_median']:.2f}x", goal])
            what = ""
    return rows


HEADER = ["benchmark", "variant", "median", "min", "max", "ratio", "paired", "goal"]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    right = {2, 3, 4, 5, 6}
    for r in [HEADER, *rows]:
        print("  ".join(c.rjust(w) if i in right else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())


def markdown(results: list[dict], info: dict, quick: bool, command: str) -> str:
    lines = [f"# yama-run benchmarks ({'quick smoke test, no timing claims' if quick else 'full'})",
             "",
             f"`{command}` on {info['date']}: kernel {info['uname_r']}, {info['nproc']} CPUs "
             f"({info['cpu']}), Python {info['python']}, {info['yama_run_version']} "
             f"(commit {info['git_commit'][:12]}{', dirty' if info['git_dirty'] else ''}).",
             "",
             "Medians over interleaved rounds; ratio = median / native median; paired = median "
             "of the per-round ratios. Per-call figures are timed inside the workload "
             "(start-up excluded). Diagnostic rows (no goal) show this machine's floors: "
             "`floor-any-filter` a 1-instruction ALLOW seccomp filter without yama-run, "
             "`floor-bare-responder` a minimal C user-notify responder without yama-run "
             "(benchmarks/workloads/notify_floor.c), `python*` yama-run's interpreter "
             "alone and with its imports.",
             "",
             "| " + " | ".join(HEADER) + " |",
             "| " + " | ".join(["---", "---"] + ["---:"] * 5 + ["---"]) + " |"]
    for r in table_rows(results, quick):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    lines.append("")
    for b in results:
        lines.append(f"- **{b['key']}**: {b['title']}; "
                     + (f"{b['calls_per_run']:,} calls per run, " if b["calls_per_run"] else "")
                     + f"{b['rounds']} round(s).")
    return "\n".join(lines) + "\n"


# -- main -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--quick", action="store_true",
                    help="each variant once with a small N (smoke test, < 30 s)")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="where to write the JSON and Markdown files (default: %(default)s)")
    ap.add_argument("--only", action="append", metavar="BENCH",
                    help="run only this benchmark (repeatable)")
    ap.add_argument("--yama-run", dest="yama_run", metavar="PATH",
                    help="the yama-run to measure (default: the script next to this "
                         "Python, else PATH)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    yama = find_yama_run(args.yama_run)
    root = os.geteuid() == 0
    if root and shutil.which("setpriv") is None:
        print("run.py: setpriv not found: the uid-1001 variants run as root", file=sys.stderr)
    all_benches = benches()
    if args.only:
        unknown = set(args.only) - {b.key for b in all_benches}
        if unknown:
            ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        all_benches = [b for b in all_benches if b.key in args.only]

    target = None
    with tempfile.TemporaryDirectory(prefix="yama-bench-") as tmp:
        bindir = Path(tmp)
        bindir.chmod(0o755)              # the uid-1001 callers must reach the programs
        build_workloads(bindir)
        empty = bindir / "empty-chain.toml"
        empty.write_text("# no module: yama-run installs no filter\nchain = []\n")
        empty.chmod(0o644)
        if root:
            # An unrelated process outside the sandbox: neither the sandbox's
            # ancestor nor its descendant.
            target = subprocess.Popen(["sleep", "1000000"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, start_new_session=True)
            target_pid = target.pid
        else:
            target_pid = 1
        # Python start-up is measured with compiled bytecode, as an installed
        # yama-run has it: cached in a private directory, since the tree's
        # __pycache__ may be stale (sources edited meanwhile) or unwritable.
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bindir / "pycache")
        ctx = Context(env=env, yama=yama, python=interpreter_of(yama), bindir=bindir, target_pid=target_pid,
                      root=root and shutil.which("setpriv") is not None, empty_profile=empty)
        info = machine(ctx)
        info["bytecode"] = ("compiled once into a private PYTHONPYCACHEPREFIX"
                            + (" (PYTHONDONTWRITEBYTECODE was set: unset for the runs)"
                               if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""))
        print(f"yama-run benchmarks ({'quick' if args.quick else 'full'}): {info['yama_run_version']}"
              f" at {' '.join(yama)}; kernel {info['uname_r']}, {info['nproc']} CPUs, "
              f"Python {info['python']}; ptrace target pid {target_pid}", flush=True)
        results = []
        failed = []
        try:
            for bench in all_benches:
                try:
                    results.append(run_bench(bench, ctx, args.quick))
                except (BenchError, subprocess.TimeoutExpired) as exc:
                    print(f"   FAILED: {exc}", flush=True)
                    failed.append({"bench": bench.key, "error": str(exc)})
        finally:
            if target is not None:
                target.send_signal(signal.SIGKILL)
                target.wait()
    info["loadavg_end"] = os.getloadavg()
    info["duration_s"] = round(time.monotonic() - started, 1)

    rows = table_rows(results, args.quick)
    print(f"\n== results ({'quick: smoke test, no timing claims' if args.quick else 'medians'};"
          f" ratio = median / native median, paired = median of per-round ratios)\n")
    print_table(rows)
    mode = "quick" if args.quick else "full"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / f"yama-run-bench-{mode}-{stamp}"
    command = " ".join(["python3", "benchmarks/run.py",
                        *(sys.argv[1:] if argv is None else argv)])
    doc = {"mode": mode, "command": command, "machine": info, "benchmarks": results,
           "failures": failed}
    Path(f"{base}.json").write_text(json.dumps(doc, indent=2) + "\n")
    Path(f"{base}.md").write_text(markdown(results, info, args.quick, command))
    print(f"\nwrote {base}.json and {base}.md ({info['duration_s']} s)")
    if failed:
        print(f"{len(failed)} benchmark(s) failed: {', '.join(f['bench'] for f in failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
