"""The desktop menu, as firejail's firecfg: `--install-desktop firefox-esr`
copies the program's .desktop file from the system's applications
directories to the user's ($XDG_DATA_HOME/applications, which menus read
first, under the same desktop id so it takes the system one's place), with
every Exec line run under yama-run; `--remove-desktop` removes that copy
again, and only a copy yama-run made."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from . import plan as plans

MARKER = "X-Yama-Run-Source"        # our key: the file we copied from
GROUP = re.compile(r"^\[(.+)\]\s*$")
MAX_ENTRY = 1 << 20                 # characters of an entry read for its keys


class DesktopError(Exception):
    pass


def system_dirs() -> list[Path]:
    dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(d) / "applications" for d in dirs.split(":") if d]


def user_dir() -> Path:
    """$XDG_DATA_HOME/applications; a relative XDG_DATA_HOME is ignored, as
    the XDG spec says (it would be the cwd's)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            raise DesktopError("no home directory, and no absolute XDG_DATA_HOME")
        base = os.path.join(home, ".local", "share")
    return Path(base) / "applications"


def _open_user_dir(create: bool) -> int:
    """The user's applications directory, walked to without following a link
    of another uid (plan.open_own_dir; made if missing, only inside
    directories of the effective uid), and only
    if it is the effective uid's or root's and nobody else may write it: root
    run with a user's HOME (sudo may keep it) wrote through a symlink that
    user planted there, into a root-only file. Every name in it is then
    opened relative to this descriptor."""
    directory = user_dir()
    try:
        fd = plans.open_own_dir(str(directory), 0o755, create)
    except OSError as exc:
        raise DesktopError(f"{exc.filename or directory}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not plans.trusted(st, stat.S_IFDIR, (os.geteuid(), 0), 0o022, fd):
        os.close(fd)
        raise DesktopError(f"{directory} is not a directory of uid {os.geteuid()} (or root) that "
                           f"only it can write (uid {st.st_uid}, mode {st.st_mode & 0o7777:o}): "
                           "left alone")
    return fd


def find(name: str) -> Path:
    """The system .desktop file for NAME: a desktop id (firefox-esr or
    firefox-esr.desktop), else the entry whose Exec or TryExec runs NAME."""
    desktop_id = name if name.endswith(".desktop") else f"{name}.desktop"
    for directory in system_dirs():
        if (directory / desktop_id).is_file():
            return directory / desktop_id
    for directory in system_dirs():
        for path in sorted(directory.glob("*.desktop")):
            if name in _programs(path):
                return path
    looked = ", ".join(str(d) for d in system_dirs())
    raise DesktopError(f"no menu entry for {name!r} in {looked}")


def _programs(path: Path) -> set[str]:
    """Basenames of the programs the entry's Exec and TryExec lines start."""
    out = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return out
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("Exec", "TryExec"):
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            if words:
                out.add(os.path.basename(words[0]))
    return out


def yama_run_command() -> str:
    """The absolute path the menu entry runs: this yama-run's command, not
    one the desktop session's PATH may or may not find."""
    invoked = sys.argv[0] if sys.argv else ""
    if os.path.basename(invoked) == "yama-run" and os.path.isfile(invoked):
        return os.path.abspath(invoked)
    found = shutil.which("yama-run")
    if found is None:
        raise DesktopError("the yama-run command is not on PATH; the menu entry needs its path")
    return os.path.abspath(found)


def _exec_quote(word: str) -> str:
    """An argument of an Exec value (Desktop Entry Specification, "The Exec
    key"): quoted if it has a reserved character; then the string escape of
    backslashes."""
    if re.search(r'[\s"\'\\><~|&;$*?#()`]', word):
        word = '"' + re.sub(r'(["`$\\])', r"\\\1", word) + '"'
    return word.replace("\\", "\\\\")


def rewrite(text: str, source: Path, command: str) -> str:
    """The entry with every Exec under yama-run and D-Bus activation off (a
    menu would start a D-Bus activatable program without its Exec line)."""
    out = [f"# Made by yama-run --install-desktop from {source}: the program runs",
           f"# under yama-run. yama-run --remove-desktop {source.stem} removes it."]
    group = None
    for line in text.splitlines():
        header = GROUP.match(line)
        if header:
            if group == "Desktop Entry":
                out.append(f"{MARKER}={source}")
            group = header.group(1)
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key == "Exec":
            line = f"Exec={_exec_quote(command)} -- {value.strip()}"
        elif sep and key == "DBusActivatable":
            line = "DBusActivatable=false"
        out.append(line)
    if group == "Desktop Entry":
        out.append(f"{MARKER}={source}")
    return "\n".join(out) + "\n"


def install(name: str) -> Path:
    source = find(name)
    text = rewrite(source.read_text(encoding="utf-8"), source, yama_run_command())
    dfd = _open_user_dir(create=True)
    try:
        target = user_dir() / source.name
        if _exists(source.name, dfd) and MARKER not in _keys(source.name, dfd):
            raise DesktopError(f"{target} exists and was not made by yama-run: left alone")
        # Written beside it, then renamed: a menu never reads half a file. Named
        # .desktop (the validator insists), hidden (menus skip dot files).
        partial = f".yama-run-{os.getpid()}-{source.name}"
        _write_new(partial, dfd, text)
        try:
            _validate(target.with_name(partial))
            os.replace(partial, source.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            os.unlink(partial, dir_fd=dfd)
            raise
    finally:
        os.close(dfd)
    return target


def _write_new(name: str, dfd: int, text: str) -> None:
    """A new file: O_EXCL makes it or fails, and follows no link (a name
    planted beforehand is an error, never written through)."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=dfd)
    except OSError as exc:
        raise DesktopError(f"{user_dir() / name}: {exc.strerror}") from None
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except BaseException:
        os.unlink(name, dir_fd=dfd)
        raise


def exec_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("Exec=")]


def _validate(path: Path) -> None:
    """desktop-file-validate's errors refuse the file (warnings pass)."""
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        return
    result = subprocess.run([validate, str(path)], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    if errors:
        raise DesktopError("the rewritten entry does not validate:\n" + "\n".join(errors))


def _exists(name: str, dfd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dfd)
    except FileNotFoundError:
        return False
    return True


def _keys(name: str, dfd: int) -> set[str]:
    """The keys of a regular file name in dfd (a link has none: O_NOFOLLOW;
    a FIFO is not waited for: O_NONBLOCK)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dfd)
    except OSError:
        return set()
    with open(fd, encoding="utf-8", errors="replace") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return set()
        return {line.partition("=")[0].strip() for line in f.read(MAX_ENTRY).splitlines()}


def remove(name: str) -> Path:
    desktop_id = name if name.endswith(".desktop") else f"{name}.desktop"
    names = [desktop_id]
    try:
        names.append(find(name).name)
    except DesktopError:
        pass
    dfd = _open_user_dir(create=False)
    try:
        for entry in names:
            if _exists(entry, dfd):
                if MARKER not in _keys(entry, dfd):
                    raise DesktopError(f"{user_dir() / entry} was not made by yama-run: "
                                       "left alone")
                os.unlink(entry, dir_fd=dfd)
                return user_dir() / entry
    finally:
        os.close(dfd)
    raise DesktopError(f"no menu entry of yama-run's for {name!r} in {user_dir()}")
