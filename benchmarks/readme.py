#!/usr/bin/env python3
"""Write docs/overhead.md from a full run's results.json.

    python3 benchmarks/readme.py benchmarks/latest/results.json benchmarks/overhead-notes.md

The section is the command, the machine, the table, the chart and the goals, from
the JSON, then the notes file (where the time goes: written by hand from the
profiles). The whole page is written; README.md links to it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import (floor_line, goal_columns, goal_rows, machine_line,  # noqa: E402
                    row_cells)

PAGE = HERE.parent / "docs" / "overhead.md"


def section(doc: dict, results: Path, notes: str) -> str:
    m = doc["machine"]
    shown = results.parent.resolve().relative_to(HERE.parent)
    rel = f"../{shown}"                 # links from docs/
    comps = [c for c in doc["comparators"]]
    out = ["# Overhead", "",
           "One command runs the suite (method, comparators and workloads: "
           "[benchmarks/README.md](../benchmarks/README.md)):", "", "```sh",
           "python3 benchmarks/run.py            # full run: the figures below",
           "python3 benchmarks/run.py --quick    # smoke run of everything (CI), no timing claims",
           "```", "",
           f"Latest full run ([{shown}/results.json]({rel}/results.json), "
           f"[results.md]({rel}/results.md)): {machine_line(doc)}", "",
           f"fs.protected_* during the run: {fmt_sysctl(m['sysctl'])} (they decide what the "
           f"default profile's `auto` levels route: below the strongest level yama-run "
           f"enforces it, so here `default` routes "
           f"{'as much as' if routes_all(m['sysctl']) else 'less than'} `all on`"
           f"{DEBIAN_NOTE if any(c['key'] == 'yama-debian' for c in comps) else ''}).", "",
           "Medians of interleaved rounds; per call for the micro workloads (timed inside the "
           "program), per run for the others (wall time of the whole command, start-up "
           f"included); in brackets the ratio to native. Rounds: {rounds_text(doc)}, after one "
           "discarded warm-up round.", "", floor_line(doc), "",
           "| workload | " + " | ".join(c["label"] for c in comps) + " |",
           "| --- | " + " | ".join("--:" for _ in comps) + " |"]
    for r in doc["workloads"]:
        name = r["short"] if r.get("short") else r["title"]
        if r.get("size_text") and r["kind"] == "macro":
            name += f", {r['size_text']}"
        if r["status"] != "ok":
            out.append(f"| {name} | " + " | ".join("skipped" for _ in comps) + " |")
            continue
        out.append(f"| {name} | " + " | ".join(row_cells(doc, r, [c["key"] for c in comps]))
                   + " |")
    skipped = [f"{c['label']}: {c['skip']}" for c in comps if c.get("skip")]
    failed = [f"{r['key']} under {c['label']}: {len(c.get('failures') or [1])} run(s) failed"
              for r in doc["workloads"] for c in r["comparators"] if c.get("failures")
              or c["status"] == "failed"]
    if skipped or failed:
        out += ["", "Skipped: " + ("; ".join(skipped) or "none") + ". Failed runs (* in the "
                "table; reasons in results.md): " + ("; ".join(failed) or "none") + "."]
    columns = goal_columns(doc)
    out += ["", f"![time relative to native, log scale]({rel}/results.png)", "",
            "Goals of issue 17, judged on this run:", "",
            "| goal | workload | limit | " + " | ".join(label for _, label in columns) + " |",
            "| --- | --- | --- | " + " | ".join("--:" for _ in columns) + " |"]
    out += goal_rows(doc, judged=True)
    return "\n".join(out) + "\n\n" + notes.strip() + "\n"


DEBIAN_NOTE = ("; the column `yama-run default, Debian's fs.protected_*` has them at Debian "
               "12's values for its runs, where `default`'s `auto` levels leave symlinks and "
               "regular files to the kernel")


def rounds_text(doc: dict) -> str:
    by: dict[int, list[str]] = {}
    for r in doc["workloads"]:
        if r["status"] == "ok":
            by.setdefault(r["rounds"], []).append(r["key"])
    return "; ".join(f"{n} for {', '.join(keys)}" for n, keys in sorted(by.items()))


def fmt_sysctl(s: dict) -> str:
    return ", ".join(f"{k.split('_', 1)[1]}={v}" for k, v in s.items())


def routes_all(s: dict) -> bool:
    strongest = {"fs.protected_symlinks": 1, "fs.protected_fifos": 2, "fs.protected_regular": 2}
    return all(s.get(k, 0) < v for k, v in strongest.items())


def main() -> int:
    results, notes = Path(sys.argv[1]), Path(sys.argv[2])
    doc = json.loads(results.read_text())
    if doc["mode"] != "full":
        sys.exit("readme.py: not a full run; docs/overhead.md shows full runs only")
    PAGE.write_text(section(doc, results, notes.read_text()) + "\n")
    print(f"docs/overhead.md: from {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
