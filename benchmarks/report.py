"""The reports of a benchmark run: the machine it ran on, the Markdown tables,
the PNG chart and the table printed at the end."""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pngchart

UNITS = {"ns": 1.0, "µs": 1e3, "ms": 1e6, "s": 1e9}   # unit -> ns
# The goals are judged for these (yama-before: only with --before).
GOAL_COMPARATORS = ("yama-default", "yama-debian", "yama-all", "yama-before")


def fmt(ns: float, unit: str) -> str:
    v = ns / UNITS[unit]
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _out(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (done.stdout or done.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    return (_out(argv).splitlines() or [""])[0]


def libseccomp_version() -> str | None:
    name = ctypes.util.find_library("seccomp")
    if not name:
        return None

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]
    try:
        lib = ctypes.CDLL(name)
        lib.seccomp_version.restype = ctypes.POINTER(Version)
        v = lib.seccomp_version().contents
        return f"{v.major}.{v.minor}.{v.micro}"
    except (OSError, AttributeError):
        return None


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1 and len(chain) < 4096:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
        chain.append(pid)
    return chain


def sysctls() -> dict[str, int]:
    """fs.protected_*: with "auto", they decide what the default profile routes."""
    out = {}
    for k in ("symlinks", "hardlinks", "fifos", "regular"):
        try:
            out[f"fs.protected_{k}"] = int(Path(f"/proc/sys/fs/protected_{k}").read_text())
        except OSError:
            pass
    return out


def machine(ctx, repo: Path) -> dict:
    """The machine, the tools and the yama-run measured (ctx: run.Ctx)."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    distro = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    git = ["git", "-C", str(repo)]
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu, "vcpus": os.cpu_count(),
        "virtualization": _out(["systemd-detect-virt"]) or None,
        "kernel": platform.release(), "kernel_version": platform.version(),
        "distro": distro, "python": platform.python_version(), "python_executable": ctx.python,
        "libseccomp": libseccomp_version(),
        "yama_run": " ".join(ctx.yama), "yama_run_tree": str(repo),
        "yama_run_version": _out([*ctx.yama, "--version"]),
        "yama_run_sys_path": ctx.pypath,
        "git_commit": _out([*git, "rev-parse", "HEAD"]),
        "git_branch": _out([*git, "rev-parse", "--abbrev-ref", "HEAD"]),
        "git_dirty": bool(_out([*git, "status", "--porcelain", "--", "sandbox", "csrc",
                                "profiles"])),
        "tools": {
            "strace": _first_line(["strace", "-V"]),
            "firejail": _first_line(["firejail", "--version"]),
            "bwrap": _first_line(["bwrap", "--version"]),
            "firefox": _first_line(["firefox-esr", "--version"])
            or _first_line(["firefox", "--version"]),
            "git": _first_line(["git", "--version"]), "gcc": _first_line(["gcc", "--version"]),
            "make": _first_line(["make", "--version"]), "tar": _first_line(["tar", "--version"]),
            "cp": _first_line(["cp", "--version"]),
        },
        "sysctl": sysctls(), "euid": os.geteuid(),
        "kernel_yama": Path("/proc/sys/kernel/yama").exists(),
        "strace_traces": ctx.strace_set,
        # a scope-1 check walks the target's ancestors: their number counts
        "ptrace_target": {"pid": ctx.target_pid, "ancestors": ancestors(ctx.target_pid)},
        "loadavg_start": os.getloadavg(),
    }


def cell(c: dict, unit: str, native: bool, above: float | None = None) -> str:
    """median (ratio to native[, round trips above native])."""
    if c["status"] != "ok":
        return c["status"]
    v = fmt(c["median"] * UNITS[unit], unit) + f" {unit}" + ("*" if c.get("failures") else "")
    if native or c["ratio"] is None:
        return v
    trips = f", {above:+.1f} rt" if above is not None else ""
    return f"{v} ({c['ratio']:.2f}x{trips})"


def row_cells(doc: dict, r: dict, keys: list[str]) -> list[str]:
    """A workload's cells; per-call figures also in round trips of this
    run's bare user-notify responder above native (rt)."""
    by = {c["key"]: c for c in r["comparators"]}
    floor, native = doc.get("floor_ns"), by.get("native")
    out = []
    for k in keys:
        if k not in by:
            out.append("-")
            continue
        c, above = by[k], None
        if (r["kind"] == "micro" and floor and c["status"] == "ok" and native
                and native["status"] == "ok" and k != "native"):
            above = (c["median"] - native["median"]) * UNITS[r["unit"]] / floor
        out.append(cell(c, r["unit"], k == "native", above))
    return out


def floor_line(doc: dict) -> str:
    floor = doc.get("floor_ns")
    if not floor:
        return ("The bare user-notify round trip was not measured in this run: no figure "
                "is given in round trips.")
    line = (f"The bare user-notify round trip in this run (`floor-bare-responder`, "
            f"workloads/notify_floor.c): **{fmt(floor, 'µs')} µs**; \"rt\" is a per-call "
            f"figure's distance from native in such round trips.")
    addfd = doc.get("addfd_floor_ns")
    if addfd:
        line += (f" The same responder answering each open with a descriptor "
                 f"(`floor-addfd-responder`, one `SECCOMP_IOCTL_NOTIF_ADDFD`, the only way to "
                 f"give a caller a file the supervisor opened): **{fmt(addfd, 'µs')} µs**: with "
                 f"one thread, whose next receive waits until the ioctl's second wake-up "
                 f"(yama-run's second receiver serves the next call meanwhile, docs/stall.md).")
    return line


def goal_columns(doc: dict) -> list[tuple[str, str]]:
    labels = {c["key"]: c["label"] for c in doc["comparators"]}
    return [(k, labels[k]) for k in GOAL_COMPARATORS if k in labels]


def goal_rows(doc: dict, judged: bool) -> list[str]:
    """Issue 17's goals as Markdown table rows (judged: met / missed)."""
    units = {r["key"]: r["unit"] for r in doc["workloads"]}
    keys = [k for k, _ in goal_columns(doc)]
    lines = []
    for g in doc["goals"]:
        cells = []
        for comp in keys:
            res = g["results"].get(comp, {"status": "-"})
            if res["status"] != "ok":
                cells.append(res["status"])
                continue
            u, v, metric = units[g["workload"]], res["value"], g["metric"]
            text = (f"{fmt(v * UNITS[u], u)} {u}" if metric == "median"
                    else f"{v:.2f}x" if metric in ("ratio", "floor")
                    else f"{v:.2f} rt" if metric == "floor_above" else f"{v:.2f}x its time")
            verdict = ("" if not judged else " n/a" if res["met"] is None
                       else " met" if res["met"] else " **missed**")
            cells.append(text + verdict)
        lines.append(f"| {g['goal']} | {g['workload']} | {g['limit']} | " + " | ".join(cells)
                     + " |")
    return lines


def markdown(doc: dict) -> str:
    m, quick = doc["machine"], doc["mode"] == "quick"
    comps = doc["comparators"]
    main_keys = [c["key"] for c in comps]
    lines = [f"# yama-run overhead ({'quick smoke run: no timing claims' if quick else 'full run'})",
             "", machine_line(doc), ""]
    lines += ["Median per call (micro) or per run (macro, start-up: wall time of the whole "
              "command); in brackets the ratio to native. Interleaved rounds (see the rounds "
              "column), one warm-up round discarded." if not quick else
              "One run each, tiny sizes: these numbers only show that everything ran.", "",
              floor_line(doc), ""]
    lines += ["| workload | rounds | " + " | ".join(c["label"] for c in comps) + " |",
              "| --- | --: | " + " | ".join("--:" for _ in comps) + " |"]
    for r in doc["workloads"]:
        name = r["title"] + (f" ({r['size_text']})" if r.get("size_text") else "")
        if r["status"] != "ok":
            lines.append(f"| {name} | - | " + " | ".join("skipped" for _ in comps) + " |")
            continue
        cells = row_cells(doc, r, main_keys)
        lines.append(f"| {name} | {r['rounds']} | " + " | ".join(cells) + " |")
    columns = goal_columns(doc)
    lines += ["", "## Goals (issue 17)", "",
              "| goal | workload | limit | " + " | ".join(label for _, label in columns) + " |",
              "| --- | --- | --- | " + " | ".join("--:" for _ in columns) + " |"]
    lines += goal_rows(doc, judged=True)
    diag = [(r, c) for r in doc["workloads"] for c in r["comparators"] if c["diagnostic"]]
    if diag:
        lines += ["", "## Diagnostic rows", "", "| workload | variant | median | min | max | ratio |",
                  "| --- | --- | --: | --: | --: | --: |"]
        for r, c in diag:
            if c["status"] != "ok":
                lines.append(f"| {r['key']} | {c['label']} | {c['status']} | | | |")
                continue
            u = r["unit"]
            f = lambda x: f"{fmt(x * UNITS[u], u)} {u}"   # noqa: E731
            ratio = f"{c['ratio']:.2f}x" if c["ratio"] else ""
            lines.append(f"| {r['key']} | {c['label']} | {f(c['median'])} | {f(c['min'])} | "
                         f"{f(c['max'])} | {ratio} |")
    lines += ["", "## Skipped and failed", ""]
    notes = [f"- comparator **{c['label']}** skipped: {c['skip']}" for c in comps if c.get("skip")]
    notes += [f"- workload **{r['key']}** skipped: {r['reason']}" for r in doc["workloads"]
              if r["status"] != "ok"]
    notes += [f"- **{r['key']}** under **{c['label']}** failed: {c['reason']}"
              for r in doc["workloads"] for c in r["comparators"] if c["status"] == "failed"]
    notes += [f"- **{r['key']}** under **{c['label']}**: {len(c['failures'])} run(s) failed "
              f"(not in the median, marked *): {c['failures'][0]}"
              for r in doc["workloads"] for c in r["comparators"]
              if c["status"] == "ok" and c.get("failures")]
    lines += notes or ["- none"]
    for r in doc["workloads"]:
        for comp, why in (r.get("notes") or {}).items():
            lines.append(f"- note, **{r['key']}** under **{comp}**: {why}.")
    lines += ["", "## Comparators", ""]
    lines += [f"- **{c['label']}**: `{c['command']}`" for c in comps]
    lines += ["", f"strace traces: {', '.join(m['strace_traces'])}.", "",
              "Min and max of every cell, every sample, and the median of the per-round "
              "ratios are in the JSON file beside this one."]
    return "\n".join(lines) + "\n"


def machine_line(doc: dict) -> str:
    m = doc["machine"]
    load = f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end"
    return (f"`{doc['command']}`, {m['date']}, {doc['duration_s']:.0f} s: {m['cpu']}, "
            f"{m['vcpus']} vCPUs ({m['virtualization'] or 'bare metal?'}), {m['distro']}, "
            f"Linux {m['kernel']}, Python {m['python']}, libseccomp {m['libseccomp']}, "
            f"benchmarks at {m['git_commit'][:10]}{' (dirty)' if m['git_dirty'] else ''} "
            f"({m['git_branch']}), measuring `{m['yama_run']}` "
            f"({m.get('yama_run_version') or 'version unknown'}); {load}.")


def plot(doc: dict) -> bytes:
    groups = []
    for r in doc["workloads"]:
        if r["status"] != "ok":
            groups.append((f"{r['key']}: skipped", []))
            continue
        u = r["unit"]
        by = {c["key"]: c for c in r["comparators"] if not c["diagnostic"]}
        native = by.get("native")
        nat = (f"native {fmt(native['median'] * UNITS[u], u)} {u}"
               if native and native["status"] == "ok" else "native failed")
        bars = []
        for c in doc["comparators"]:
            if c["key"] == "native" or c["key"] not in by:
                continue
            s = by[c["key"]]
            if s["status"] != "ok" or s["ratio"] is None:
                bars.append((c["label"], None, s["status"]))
            else:
                bars.append((c["label"], s["ratio"],
                             f"{s['ratio']:.2f}x  {fmt(s['median'] * UNITS[u], u)} {u}"))
        size = f", {r['size_text']}" if r["kind"] == "macro" and r.get("size_text") else ""
        groups.append((f"{r['short']}{size} ({nat})", bars))
    m = doc["machine"]
    title = ("yama-run overhead: time relative to native, log scale"
             + (" (quick smoke run: no timing claims)" if doc["mode"] == "quick" else ""))
    sub = (f"medians of interleaved rounds; {m['cpu']}, {m['vcpus']} vCPUs, Linux {m['kernel']}, "
           f"yama-run {m['git_commit'][:10]}, {m['date']}")
    return pngchart.draw(groups, title, sub)


def print_table(doc: dict) -> None:
    comps = doc["comparators"]
    rows = [["workload", *[c["key"] for c in comps]]]
    for r in doc["workloads"]:
        rows.append([r["key"], *row_cells(doc, r, [c["key"] for c in comps])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip())
    floor = doc.get("floor_ns")
    print(f"floor (bare user-notify round trip, this run): "
          f"{fmt(floor, 'µs') + ' µs' if floor else 'not measured'}; rt: round trips above native")
    for g in doc["goals"]:
        verdicts = []
        for comp, res in g["results"].items():
            met = res.get("met")
            verdicts.append(f"{comp} " + (res["status"] if res["status"] != "ok" else
                                          "n/a" if met is None else "met" if met else "MISSED"))
        print(f"goal {g['goal']} ({g['limit']}): {', '.join(verdicts)}")
