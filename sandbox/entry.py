"""The installed command's start, once bin/yama-run.py has found this package.

bin/yama-run (csrc/launcher.c) runs that script as `python3 -IS yama-run.py
FD:PID:IGNORED NAME ARG...`: the venv's interpreter isolated and without
`site`, as site-packages elsewhere on a machine may hold .pth files that
import whole libraries before main() runs. Outside a venv the launcher runs the python3 on
PATH with `site`. A script is compiled from source at every run, so it only
puts the venv's site-packages on sys.path and imports this module, which pip
compiled at install and the import system keeps cached (docs/startup.md).

FD is this process's end of the link to the front, which the launcher became,
PID the front's (sandbox/lifetime.py), and IGNORED the signals the caller
ignored, which the program starts with ignored (csrc/spawn.c). NAME is the
path yama-run was started by: a link called firefox-esr keeps that name as
sys.argv[0] (sandbox/argv0.py).

Until the program runs nothing here imports `os` (docs/startup.md)."""
import posix
import sys

S_IFMT, S_IFDIR = 0o170000, 0o040000


def _is_directory(path: str) -> bool:
    try:
        return posix.stat(path).st_mode & S_IFMT == S_IFDIR
    except (OSError, ValueError):
        return False


def add_pth_directories(packages: list[str]) -> None:
    """The directories that the .pth files of the venv's site-packages name,
    as `site` adds them. Their code is not run: yama-run needs none of it (its
    own editable-install hook the script has run if the package needed it)."""
    for directory in packages:
        try:
            names = sorted(n for n in posix.listdir(directory) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                with open(f"{directory}/{name}", encoding="utf-8") as pth:
                    lines = pth.read().splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                if line.strip() and not line.startswith(("#", "import ", "import\t")):
                    path = line.rstrip()
                    path = path if path.startswith("/") else f"{directory}/{path}"
                    if _is_directory(path) and path not in sys.path:
                        sys.path.append(path)


def the_front(link: str) -> tuple[int, int, int]:
    """FD:PID:IGNORED, as the launcher gives it: the link, which is never the
    program's, the front's pid, and the signals the caller ignored (hex)."""
    try:
        fd, pid, ignored = link.split(":")
        fd, pid, ignored = int(fd), int(pid), int(ignored, 16)
        posix.set_inheritable(fd, False)
    except (ValueError, OSError):
        posix.write(2, b"yama-run: its Python part is run by bin/yama-run, not by hand\n")
        posix._exit(125)
    return fd, pid, ignored


def main(packages: list[str]) -> None:
    """sys.argv is [SCRIPT, FD:PID:IGNORED, NAME, ARG...]; packages, the venv's
    site-packages directories the script put on sys.path."""
    fd, pid, ignored = the_front(sys.argv.pop(1) if len(sys.argv) > 1 else "")
    sys.argv[0:2] = sys.argv[1:2]       # the name it was started as (the link's)
    add_pth_directories(packages)
    # The extension is loaded before the program runs on every path anyway.
    from sandbox._yama import lib
    lib.yr_spawn_caller_ignored(ignored)       # (Python has ignored SIGPIPE, SIGXFSZ since)
    from sandbox.launch import main as launch
    launch(front=(fd, pid))
