"""yama-run's Python part. bin/yama-run (csrc/launcher.c, installed beside
this file) runs it as `python3 -IS yama-run.py FD:PID NAME ARG...`: the venv's
interpreter isolated and without `site`, as site-packages elsewhere on a
machine may hold .pth files that import whole libraries before main() runs.
The venv's own site-packages is added here by hand (docs/startup.md).
Outside a venv the launcher runs the python3 on PATH with `site`. FD is
this process's end of the link to the front, which the launcher became, and
PID the front's (sandbox/lifetime.py). NAME is the path yama-run was started
by: a link called firefox-esr keeps that name as sys.argv[0]
(sandbox/argv0.py).

Until the program runs nothing here imports `os` (docs/startup.md)."""
import posix
import sys

S_IFMT, S_IFREG, S_IFDIR = 0o170000, 0o100000, 0o040000


def _is(path: str, kind: int) -> bool:
    try:
        return posix.stat(path).st_mode & S_IFMT == kind
    except (OSError, ValueError):
        return False


def add_site_packages() -> None:
    """The venv's site-packages, as `site` adds it, with the .pth files that
    only name directories, and yama-run's own editable-install hook (pip
    install -e); other .pth files' code is not run: yama-run needs none of it."""
    prefix = sys.executable.rpartition("/")[0].rpartition("/")[0]
    if not _is(f"{prefix}/pyvenv.cfg", S_IFREG):
        prefix = sys.prefix             # (only `site` makes sys.prefix a venv's)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for lib in dict.fromkeys((sys.platlibdir, "lib")):
        directory = f"{prefix}/{lib}/{version}/site-packages"
        try:
            names = sorted(n for n in posix.listdir(directory) if n.endswith(".pth"))
        except OSError:
            continue
        if directory not in sys.path:
            sys.path.append(directory)
        for name in names:
            ours = name.startswith("__editable__.yama_run-")
            try:
                with open(f"{directory}/{name}", encoding="utf-8") as pth:
                    lines = pth.read().splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                if line.startswith(("import ", "import\t")):
                    if ours:
                        exec(line)
                elif line.strip() and not line.startswith("#"):
                    path = line.rstrip()
                    path = path if path.startswith("/") else f"{directory}/{path}"
                    if _is(path, S_IFDIR) and path not in sys.path:
                        sys.path.append(path)


def the_front(link: str) -> tuple[int, int]:
    """FD:PID, as the launcher gives it; the link is never the program's."""
    try:
        fd, pid = (int(part) for part in link.split(":"))
        posix.set_inheritable(fd, False)
    except (ValueError, OSError):
        posix.write(2, b"yama-run: its Python part is run by bin/yama-run, not by hand\n")
        posix._exit(125)
    return fd, pid


if __name__ == "__main__":
    front = the_front(sys.argv.pop(1) if len(sys.argv) > 1 else "")
    sys.argv[0:2] = sys.argv[1:2]       # the name it was started as (the link's)
    add_site_packages()
    from sandbox.launch import main
    main(front=front)
