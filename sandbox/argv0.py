"""firejail's symlink convention: a link named after a program that points at
yama-run (`ln -s /usr/local/bin/yama-run ~/.local/bin/firefox-esr`, early
on PATH) runs that program under its profile. The real program is the next
one of that name on PATH that is not a link to yama-run itself (so never
itself: no loop), and every argument is passed to it untouched."""
import posix
import sys

from . import bareos

NAME = "yama-run"


def invoked_as(argv0: str) -> str | None:
    """The program name when yama-run was started under another name."""
    name = bareos.basename(argv0)
    return name if name and name != NAME else None


def real_program(name: str, argv0: str) -> str | None:
    """The first executable called name on PATH that is not yama-run."""
    myself = _identity(argv0)
    for directory in bareos.getenv("PATH", "").split(":"):
        candidate = bareos.join(directory or ".", name)
        if not (bareos.is_file(candidate) and posix.access(candidate, posix.X_OK)):
            continue
        if myself is not None and _identity(candidate) == myself:
            continue                # another link to us
        return bareos.abspath(candidate)
    return None


def _identity(path: str):
    """What a file is, through every symlink (device and inode)."""
    try:
        st = posix.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def arguments(argv0: str, rest: list[str]) -> list[str]:
    """yama-run's command line for a run as NAME: `-- /real/NAME ARG...`, so
    that no argument is read as an option of yama-run's."""
    name = invoked_as(argv0)
    real = real_program(name, argv0)
    if real is None:            # 127, as for any PROGRAM not found
        print(f"yama-run: {name}: no program of that name on PATH besides links to "
              f"yama-run (started as {argv0})", file=sys.stderr)
        sys.exit(127)
    return ["--", real, *rest]
