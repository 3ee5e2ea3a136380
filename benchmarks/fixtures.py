"""The inputs of the macro workloads, built once per benchmark run in a
temporary directory: a file tree, a tar archive of it, a git repository with
loose objects, a small C project, a one-file program, a process several
ancestors deep, and a page and profile for Firefox.

Every builder takes the directory to build in and a size, and returns what
the workload needs (paths); the sizes come from run.py (full or quick)."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path


def file_tree(root: Path, files: int, per_dir: int = 200) -> Path:
    """`files` small files (about 40 bytes each), `per_dir` to a directory."""
    tree = root / "tree"
    tree.mkdir()
    for i in range(files):
        d = tree / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir()
        (d / f"f{i:05d}.txt").write_text(f"file {i} of the benchmark tree\n")
    return tree


def count_files(top: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(top))


def tar_archive(root: Path, tree: Path) -> Path:
    """An uncompressed tar of `tree` (extraction cost is file creation, not gzip)."""
    archive = root / "tree.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(tree.parent), tree.name],
                   check=True)
    return archive


def git_repo(root: Path, files: int) -> Path:
    """A repository with one commit of `files` files, objects left loose, so
    `git clone --local` hard-links each of them (about files + files/100 + 2)."""
    repo = root / "repo"
    repo.mkdir()
    for i in range(files):
        d = repo / f"src{i // 100:02d}"
        if i % 100 == 0:
            d.mkdir()
        (d / f"m{i:05d}.c").write_text(f"int value_{i}(void) {{ return {i}; }}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
    git = ["git", "-C", str(repo), "-c", "gc.auto=0", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    subprocess.run([*git, "add", "-A"], check=True, env=env)
    subprocess.run([*git, "commit", "-q", "-m", "benchmark tree"], check=True, env=env)
    subprocess.run([*git, "config", "gc.auto", "0"], check=True, env=env)
    return repo


def loose_objects(repo: Path) -> int:
    objects = repo / ".git" / "objects"
    return sum(len(os.listdir(d)) for d in objects.iterdir()
               if len(d.name) == 2 and d.is_dir())


def c_project(root: Path, units: int) -> Path:
    """`units` C files of a few functions each and a main, with a Makefile
    whose `clean` target is run (untimed) before every build."""
    proj = root / "cproj"
    proj.mkdir()
    for i in range(units):
        body = "\n".join(
            f"int u{i}_f{j}(int x) {{ int s = 0; for (int k = 0; k < x; k++) "
            f"s += (k * {j + 1}) ^ {i}; return s; }}" for j in range(20))
        (proj / f"unit{i:02d}.c").write_text(f"#include <stdio.h>\n{body}\n")
    calls = " + ".join(f"u{i}_f0(3)" for i in range(units))
    decls = "".join(f"int u{i}_f0(int);\n" for i in range(units))
    (proj / "main.c").write_text(
        f"#include <stdio.h>\n{decls}int main(void) {{ printf(\"%d\\n\", {calls}); return 0; }}\n")
    (proj / "Makefile").write_text(
        "SRCS := $(wildcard *.c)\n"
        "OBJS := $(SRCS:.c=.o)\n"
        "app: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n"
        "%.o: %.c\n\t$(CC) -O1 -c -o $@ $<\n"
        "clean:\n\trm -f *.o app\n"
        ".PHONY: clean\n")
    return proj


def c_program(root: Path) -> Path:
    """One C file and a Makefile that builds it (`make` of one file)."""
    proj = root / "cone"
    proj.mkdir()
    (proj / "hello.c").write_text(
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n")
    (proj / "Makefile").write_text("hello: hello.c\n\t$(CC) -O1 -o $@ $<\n"
                                   "clean:\n\trm -f hello\n.PHONY: clean\n")
    return proj


def deep_process(depth: int) -> tuple[subprocess.Popen, int]:
    """A `sleep` with `depth` shells between it and us, in a session of its
    own: (the outermost shell, the sleep's pid). A scope-1 ptrace check walks
    every ancestor of its target."""
    command = "sleep 1000000"
    for _ in range(depth):
        command = f"sh -c {shlex.quote(command + ' & wait')}"
    top = subprocess.Popen(["sh", "-c", command + " & wait"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, start_new_session=True)
    pid, level, deadline = top.pid, 0, time.monotonic() + 10
    while level <= depth:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            pid, level = int(children[0]), level + 1
        elif time.monotonic() > deadline:
            os.killpg(top.pid, signal.SIGKILL)
            top.wait()
            raise RuntimeError(f"the process chain stopped at depth {level}")
        else:
            time.sleep(0.01)
    return top, pid


def firefox_inputs(root: Path) -> dict[str, Path]:
    """A small page, an empty profile and a HOME for headless screenshots."""
    ff = root / "firefox"
    (ff / "profile").mkdir(parents=True)
    (ff / "home").mkdir()
    page = ff / "page.html"
    rows = "".join(f"<tr><td>{i}</td><td>row {i}</td><td>{i * i}</td></tr>" for i in range(40))
    page.write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>yama-run benchmark</title>"
        "<style>body{font-family:sans-serif} td{border:1px solid #888;padding:2px 6px}"
        "</style></head><body><h1>yama-run benchmark page</h1>"
        f"<p>A table, some text and styles.</p><table>{rows}</table></body></html>\n")
    return {"dir": ff, "page": page, "profile": ff / "profile", "home": ff / "home",
            "out": ff / "out.png"}


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
