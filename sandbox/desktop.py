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
import subprocess
import sys
from pathlib import Path

MARKER = "X-Yama-Run-Source"        # our key: the file we copied from
GROUP = re.compile(r"^\[(.+)\]\s*$")


class DesktopError(Exception):
    pass


def system_dirs() -> list[Path]:
    dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(d) / "applications" for d in dirs.split(":") if d]


def user_dir() -> Path:
    home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(home) / "applications"


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
    target = user_dir() / source.name
    if target.exists() and MARKER not in _keys(target):
        raise DesktopError(f"{target} exists and was not made by yama-run: left alone")
    text = rewrite(source.read_text(encoding="utf-8"), source, yama_run_command())
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside it, then renamed: a menu never reads half a file. Named
    # .desktop (the validator insists), hidden (menus skip dot files).
    partial = target.with_name(f".yama-run-{target.name}")
    partial.write_text(text, encoding="utf-8")
    try:
        _validate(partial)
    except DesktopError:
        partial.unlink()
        raise
    os.replace(partial, target)
    return target


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


def _keys(path: Path) -> set[str]:
    try:
        return {line.partition("=")[0].strip() for line in path.read_text().splitlines()}
    except (OSError, UnicodeDecodeError):
        return set()


def remove(name: str) -> Path:
    desktop_id = name if name.endswith(".desktop") else f"{name}.desktop"
    candidates = [user_dir() / desktop_id]
    try:
        candidates.append(user_dir() / find(name).name)
    except DesktopError:
        pass
    for target in candidates:
        if target.is_file():
            if MARKER not in _keys(target):
                raise DesktopError(f"{target} was not made by yama-run: left alone")
            target.unlink()
            return target
    raise DesktopError(f"no menu entry of yama-run's for {name!r} in {user_dir()}")
