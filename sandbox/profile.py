"""Profiles: which modules form the chain, in which order, with which settings.

A profile is TOML:

    description = "what it is for"
    aliases = ["firefox-esr"]       # other program names it is found by
    include = ["default"]           # profiles read first; this file's values win
    chain = ["ptrace"]
    [ptrace]
    scope = 1

Profiles are searched by name in the user's directory, the system's, then the
bundled ones; the first file of a name shadows the others. Every error names
the file (and line, where there is one), the key and the valid keys or values."""
from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import bareos, launchers, modules, plan

TOP_KEYS = ("description", "aliases", "include", "chain")
DEFAULT = "default"
# A profile is a few KiB; a bigger file is not read at all (a sparse
# terabyte must cost nothing), as plans are bounded (sandbox/plan.py).
MAX_PROFILE_BYTES = 1 << 20


class ProfileError(Exception):
    pass


class Inputs:
    """What the profile lookup and loading read: the files and directories
    (their absolute paths) and where programs were found on PATH, so that a
    compiled plan (sandbox/plan.py) knows when it must be made again."""

    def __init__(self):
        self.paths: set[str] = set()
        self.lookups: list[tuple] = []

    def read(self, path) -> None:
        self.paths.add(os.path.abspath(str(path)))

    def which(self, program: str, search_path: str | None) -> str | None:
        from .plan import which_fact
        fact = which_fact(program, search_path)
        self.lookups.append(fact)
        return fact[-1]


inputs = Inputs()


# -- where profiles live -------------------------------------------------------

def bundled_dir() -> Path:
    """The bundled profiles: the source tree's when run from a checkout (so a
    worktree uses its own files), else the installed package data."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "profiles" / "default.toml").is_file():
        return root / "profiles"
    return Path(str(resources.files("sandbox.profiles")))


def search_dirs() -> list[tuple[str, Path]]:
    """(kind, directory) in the order they are searched; no user directory
    without an absolute XDG_CONFIG_HOME or HOME (bareos.xdg_home)."""
    config = bareos.xdg_home("XDG_CONFIG_HOME", ".config")
    user = [("user", Path(config) / "yama-run" / "profiles")] if config else []
    return [*user, ("system", Path("/etc/yama-run/profiles")), ("bundled", bundled_dir())]


def _judged_dirs() -> set[Path]:
    """The search directories whose profiles are judged (plan.trusted): the
    bundled one is part of yama-run's code, trusted as the code is."""
    return {directory for kind, directory in search_dirs() if kind != "bundled"}


def is_path(name_or_path: str) -> bool:
    return "/" in name_or_path or name_or_path.endswith(".toml")


@dataclass
class Entry:
    """One profile file found in the search directories."""

    name: str
    path: Path
    kind: str                           # user, system, bundled
    shadowed_by: Path | None = None

    @property
    def header(self) -> dict:
        """Its description and aliases (read without following includes)."""
        data, _ = _parse(self.path)
        aliases = data.get("aliases", [])
        if isinstance(aliases, str):
            aliases = [aliases]
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ProfileError(f"{_where(self.path, None, 'aliases')}: 'aliases' must be a "
                               f"list of program names")
        return {"aliases": aliases, "description": str(data.get("description", ""))}


def _unreadable(path: Path, exc: OSError) -> ProfileError:
    """A profile directory or file that cannot be looked at is an error, not
    an absence: a profile there would have applied (fail closed), even in a
    HOME that is not the user's (sudo may keep one)."""
    return ProfileError(f"cannot read {path}: {exc.strerror} (a profile there would apply; "
                        f"its permissions, or HOME and XDG_CONFIG_HOME, are to be fixed)")


def _untrusted(path: Path, what: str) -> ProfileError:
    """root run with another user's HOME (sudo -E, su -m) must not take that
    user's profiles, nor anyone those another user can write: refused, not
    skipped, since a profile there was meant to apply (fail closed)."""
    return ProfileError(f"{path} is not a {what} of uid {os.geteuid()} or root that only its "
                        f"owner can write: not trusted (a profile there would apply; its "
                        f"owner or permissions, or HOME and XDG_CONFIG_HOME, are to be fixed)")


def _may_judge(fd: int, path: Path, what: str):
    """fd's fstat, if fd may be taken as the profile directory or file path."""
    st = os.fstat(fd)
    kind = stat.S_IFDIR if what == "directory" else stat.S_IFREG
    if not plan.trusted(st, kind, {os.geteuid(), 0}, 0o022, fd):
        raise _untrusted(path, what)
    return st


@contextmanager
def _opened_dir(directory: Path):
    """A search directory's descriptor (None where there is none), judged on
    that descriptor. Whatever is listed, stat'ed or opened in it goes through
    this descriptor: a directory swapped in by path after the judgement (by
    whoever owns a parent, such as the HOME root was run with) is never used.
    Links are followed (a dotfiles checkout may be linked in): the directory
    reached is the one judged."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        yield None
        return
    except OSError as exc:
        raise _unreadable(directory, exc) from None
    try:
        if directory in _judged_dirs():
            _may_judge(fd, directory, "directory")
        yield fd
    finally:
        os.close(fd)


def _is_file(directory: Path, name: str) -> bool:
    with _opened_dir(directory) as fd:
        if fd is None:
            return False
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=fd).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:          # (ELOOP included: a broken link is no absence)
            raise _unreadable(directory / name, exc) from None


def _profile_files(directory: Path) -> list[Path]:
    """The *.toml files of a profile directory; none when there is none."""
    with _opened_dir(directory) as fd:
        if fd is None:
            return []
        try:
            names = [name for name in os.listdir(fd) if name.endswith(".toml")]
        except OSError as exc:
            raise _unreadable(directory, exc) from None
    return sorted(directory / name for name in names if _is_file(directory, name))


def catalogue() -> list[Entry]:
    """Every profile file in search order; later files of a seen name are shadowed."""
    entries, first = [], {}
    for kind, directory in search_dirs():
        inputs.read(directory)
        for path in _profile_files(directory):
            entry = Entry(path.stem, path, kind)
            if path.stem in first:
                entry.shadowed_by = first[path.stem].path
            else:
                first[path.stem] = entry
            entries.append(entry)
    return entries


def find(name: str, skip: Path | None = None) -> tuple[Path, str]:
    """The file of profile `name` and its kind. `skip` (an including file) is
    passed over, so ~/.config/.../firefox.toml can include the bundled firefox."""
    for kind, directory in search_dirs():
        candidate = directory / f"{name}.toml"
        inputs.read(directory)
        inputs.read(candidate)
        if _is_file(directory, candidate.name) and (skip is None or not _same(candidate, skip)):
            return candidate, kind
    looked = ", ".join(str(d) for _, d in search_dirs())
    raise ProfileError(f"no profile named {name!r} (looked in {looked}); "
                       f"valid names: {', '.join(sorted(names())) or '(none)'}")


def names() -> set[str]:
    return {entry.name for entry in catalogue()}


def for_command(argv: list[str]) -> tuple[Path, str, str]:
    """The profile for a command line: the program's, seen through the usual
    launchers (env, nice, timeout...: sandbox/launchers.py) unless a profile
    is named after the launcher itself."""
    base = os.path.basename(argv[0].rstrip("/")) or argv[0]
    if base in launchers.LAUNCHERS and not _by_name_or_alias(base):
        inner, seen = launchers.see_through(argv)
        if seen.launchers:
            path, kind, why = for_program(inner[0], seen.path)
            return path, kind, f"{why} (started by {', '.join(seen.launchers)})"
    return for_program(argv[0])


def for_program(program: str, search_path: str | None = None) -> tuple[Path, str, str]:
    """The profile for PROGRAM when no --profile is given: (file, kind, why).
    Its basename as a profile name, then as an alias; then the same for the
    file it resolves to (x-www-browser -> /etc/alternatives/... -> firefox-esr);
    else the default. search_path: the PATH it is looked up in, if not ours."""
    base = os.path.basename(program.rstrip("/")) or program
    found = _by_name_or_alias(base)
    if found:
        return found
    located = inputs.which(program, search_path)        # its real path
    real = os.path.basename(located) if located else base
    if real != base:
        found = _by_name_or_alias(real)
        if found:
            path, kind, why = found
            return path, kind, f"{base} resolves to {located}: {why}"
    path, kind = find(DEFAULT)
    return path, kind, f"no profile for {base}"


def _by_name_or_alias(base: str) -> tuple[Path, str, str] | None:
    for entry in catalogue():
        if entry.name == base and entry.shadowed_by is None:
            return entry.path, entry.kind, f"named {base}"
    # An alias belongs to a name: a user file that shadows firefox keeps its aliases.
    for entry in catalogue():
        if base in entry.header["aliases"]:
            path, kind = find(entry.name)
            declared = "" if _same(path, entry.path) else f" (declared in {entry.path})"
            return path, kind, f"{base} is an alias of {entry.name}{declared}"
    return None


# -- reading -------------------------------------------------------------------

def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


_cache: dict[Path, tuple[dict, str]] = {}


def _parse(path: Path) -> tuple[dict, str]:
    """(data, text) of a profile file; a syntax error names file and line."""
    key = path.resolve()
    if key not in _cache:
        inputs.read(path)
        try:
            text = _read(path).decode("utf-8")
        except OSError as exc:
            raise ProfileError(f"{path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{path}: not UTF-8 text ({exc.reason})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = re.search(r"at line (\d+)", str(exc))
            number = line.group(1) if line else len(text.splitlines())   # at end of document
            raise ProfileError(f"{path}:{number}: {exc}") from None
        except RecursionError:
            raise ProfileError(f"{path}: nested too deeply to be a profile") from None
        _cache[key] = (data, text)
    return _cache[key]


def _read(path: Path) -> bytes:
    """A profile file's bytes: one in a judged search directory opened
    through the directory's descriptor, and judged itself (plan.trusted);
    any other (--profile PATH, an include by path) as named. O_NONBLOCK: a
    FIFO in a profile's place fails below, never waits for a writer."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    if path.parent not in _judged_dirs():
        return _read_bounded(os.open(path, flags), path, judge=False)
    with _opened_dir(path.parent) as dfd:
        if dfd is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        return _read_bounded(os.open(path.name, flags, dir_fd=dfd), path, judge=True)


def _read_bounded(fd: int, path: Path, judge: bool) -> bytes:
    """What fd opened, judged on fd; a file larger than a profile is not read."""
    try:
        st = _may_judge(fd, path, "file") if judge else os.fstat(fd)
        if not judge and not stat.S_ISREG(st.st_mode):
            raise ProfileError(f"{path}: not a regular file")
        chunks, size = [], 0
        while size <= MAX_PROFILE_BYTES and st.st_size <= MAX_PROFILE_BYTES:
            chunk = os.read(fd, MAX_PROFILE_BYTES + 1 - size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    raise ProfileError(f"{path}: larger than a profile ({max(size, st.st_size)} bytes; at most "
                       f"{MAX_PROFILE_BYTES}): not read")


def _line_of(text: str, table: str | None, key: str | None) -> int | None:
    """The line where `key` is set: inside [table] (or as `table.key =` or
    `table = {key = ...}` at the top level); key None: the table itself."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header.group(1)
            if key is None and current == table:
                return number
        elif current is None and table and re.match(rf"\s*{re.escape(table)}\s*[.=]", line):
            if key is None or re.search(rf"[.{{,]\s*{re.escape(key)}\s*=", line):
                return number
        elif current == table and key and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def _where(path: Path, table: str | None, key: str | None) -> str:
    _, text = _parse(path)
    line = _line_of(text, table, key)
    return f"{path}:{line}" if line else str(path)


# -- the effective profile -----------------------------------------------------

@dataclass
class Profile:
    name: str
    source: str                         # file path, or "built-in"
    chain: list[str]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)   # file:line or --set
    chain_origin: str = ""
    files: list[str] = field(default_factory=list)      # read, includes first
    kind: str = ""                      # user, system, bundled, path
    found: str = ""                     # why it was chosen
    description: str = ""
    _own: set = field(default_factory=set, repr=False)  # (module, key) set by the top file

    def instantiate(self):
        """The chain's module objects, in order; a module that hooks a point
        the supervisor does not route is an error (it would never be asked)."""
        from .routes import ROUTES
        objects = []
        for name in self.chain:
            module = modules.load(name)(self.settings.get(name, {}))
            unknown = sorted(set(module.hooks()) - set(ROUTES))
            if unknown:
                raise ProfileError(f"module {name!r} hooks {', '.join(unknown)}, which yama-run "
                                   f"does not route; valid hooks: {', '.join(sorted(ROUTES))}")
            objects.append(module)
        return objects

    def value(self, module: str, key: str) -> tuple[Any, str]:
        """The value in force and where it came from."""
        if key in self.settings.get(module, {}):
            return self.settings[module][key], self.origins.get((module, key), "?")
        return modules.load(module).settings[key].default, "module default"


def builtin() -> Profile:
    """--no-profile: every bundled module with its default settings."""
    return Profile("built-in", "built-in", list(modules.BUNDLED), {},
                   chain_origin="--no-profile", kind="built-in")


def load(name_or_path: str) -> Profile:
    """--profile NAME|PATH (a name is searched; a value with / or .toml is a path)."""
    if is_path(name_or_path):
        path = Path(name_or_path)
        inputs.read(path)
        if not path.is_file():
            raise ProfileError(f"{name_or_path}: no such profile file")
        return load_file(path, "path")
    path, kind = find(name_or_path)
    return load_file(path, kind)


def load_file(path: Path, kind: str, found: str = "") -> Profile:
    profile = Profile(path.stem, str(path), [], kind=kind, found=found)
    _read_into(profile, path, stack=[], top=True)
    profile.description = Entry(path.stem, path, kind).header["description"]
    if not profile.chain_origin:
        raise ProfileError(f"{path}: no 'chain' (a list of module names), here or in an "
                           f"included profile; valid modules: {', '.join(modules.available())}")
    _drop_or_refuse_outside_chain(profile)
    return profile


# A chain of 1,000 includes ended in RecursionError's traceback (a review);
# the bundled profiles nest two deep.
MAX_INCLUDE_DEPTH = 64


def _read_into(profile: Profile, path: Path, stack: list[Path], top: bool) -> None:
    """Merge the file at path (its includes first) into profile."""
    data, _ = _parse(path)
    stack = [*stack, path.resolve()]
    for key, value in data.items():
        if key not in TOP_KEYS and not isinstance(value, dict):
            raise ProfileError(f"{_where(path, None, key)}: unknown key {key!r}; valid keys: "
                               f"{', '.join(TOP_KEYS)}, and one table per module "
                               f"({', '.join(modules.available())})")
    for text_key in ("description",):
        if text_key in data and not isinstance(data[text_key], str):
            raise ProfileError(f"{_where(path, None, text_key)}: {text_key!r} must be a string")
    if "aliases" in data:
        Entry(path.stem, path, "").header     # validates it
    for target in _includes(path, data):
        child = _resolve_include(path, target)
        if child.resolve() in stack:
            cycle = " -> ".join(str(p) for p in [*stack, child.resolve()])
            raise ProfileError(f"{_where(path, None, 'include')}: include cycle: {cycle}")
        if len(stack) >= MAX_INCLUDE_DEPTH:
            raise ProfileError(f"{_where(path, None, 'include')}: includes nested deeper than "
                               f"{MAX_INCLUDE_DEPTH} files")
        _read_into(profile, child, stack, top=False)
    if "chain" in data:
        profile.chain = _chain(path, data["chain"])
        profile.chain_origin = _where(path, None, "chain")
    for table, values in data.items():
        if table in TOP_KEYS:
            continue
        for key, raw in values.items():
            try:
                set_value(profile, table, key, raw, origin=_where(path, table, key))
            except ProfileError as exc:
                where = _where(path, table, key if _known(table) else None)
                raise ProfileError(f"{where}: {exc}") from None
            if top:
                profile._own.add((table, key))
    profile.files.append(str(path))


def _known(module: str) -> bool:
    try:
        modules.load(module)
        return True
    except modules.SettingError:
        return False


def _includes(path: Path, data: dict) -> list[str]:
    value = data.get("include", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProfileError(f"{_where(path, None, 'include')}: 'include' must be a profile "
                           f"name or path, or a list of them; valid names: "
                           f"{', '.join(sorted(names()))}")
    return value


def _resolve_include(path: Path, target: str) -> Path:
    """A name in the search order (never the including file itself), or a
    path relative to the including file's directory."""
    if is_path(target):
        child = (path.parent / target) if not os.path.isabs(target) else Path(target)
        inputs.read(child)
        if not child.is_file():
            raise ProfileError(f"{_where(path, None, 'include')}: include {target!r}: "
                               f"no such profile file ({child})")
        return child
    try:
        child, _ = find(target, skip=path)
    except ProfileError as exc:
        raise ProfileError(f"{_where(path, None, 'include')}: include: {exc}") from None
    return child


def _chain(path: Path, chain: Any) -> list[str]:
    where = _where(path, None, "chain")
    if not isinstance(chain, list) or not all(isinstance(m, str) for m in chain):
        raise ProfileError(f"{where}: 'chain' must be a list of module names; "
                           f"valid modules: {', '.join(modules.available())}")
    seen: list[str] = []
    for name in chain:
        try:
            modules.load(name)
        except modules.SettingError as exc:
            raise ProfileError(f"{where}: chain: {exc}") from None
        if name in seen:
            raise ProfileError(f"{where}: chain: {name!r} appears twice")
        seen.append(name)
    return seen


def _drop_or_refuse_outside_chain(profile: Profile) -> None:
    """A value set by the profile itself for a module outside its chain is a
    mistake; one inherited from an include is simply not used."""
    for module in list(profile.settings):
        if module in profile.chain:
            continue
        for key in list(profile.settings[module]):
            if (module, key) in profile._own:
                raise ProfileError(
                    f"{profile.origins[(module, key)]}: {module}.{key}: module {module!r} is "
                    f"not in the chain ({', '.join(profile.chain) or 'empty'})")
        del profile.settings[module]
        for key in [k for k in profile.origins if k[0] == module]:
            del profile.origins[key]


def set_value(profile: Profile, module_name: str, key: str, raw: Any, origin: str) -> None:
    """Validate and set module.key."""
    try:
        cls = modules.load(module_name)
    except modules.SettingError as exc:
        raise ProfileError(str(exc)) from None
    setting = cls.settings.get(key)
    if setting is None:
        raise ProfileError(f"{module_name}: unknown key {key!r}; valid keys: "
                           f"{', '.join(sorted(cls.settings)) or '(none)'}")
    try:
        value = setting.parse(raw)
    except modules.SettingError as exc:
        raise ProfileError(f"{module_name}.{key}: {exc}") from None
    profile.settings.setdefault(module_name, {})[key] = value
    profile.origins[(module_name, key)] = origin


def apply(profile: Profile, dotted: str, raw: Any) -> None:
    """--set MODULE.KEY=VALUE: validated, and only for a module in the chain."""
    module_name, sep, key = dotted.partition(".")
    if not sep or not key:
        raise ProfileError(f"{dotted!r}: expected MODULE.KEY=VALUE")
    set_value(profile, module_name, key, raw, origin="--set")
    if module_name not in profile.chain:
        raise ProfileError(f"{module_name}.{key}: module {module_name!r} is not in the chain "
                           f"of profile {profile.name!r} ({', '.join(profile.chain) or 'empty'})")


# -- showing -------------------------------------------------------------------

def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def render(profile: Profile) -> str:
    """The effective profile as TOML (usable as a profile file), each value
    commented with where it came from."""
    lines = [f"# profile {profile.name}: {profile.source}"
             + (f" ({profile.kind})" if profile.kind else "")]
    if profile.description:
        lines.append(f"# {profile.description}")
    if profile.found:
        lines.append(f"# chosen because: {profile.found}")
    if len(profile.files) > 1:
        lines.append(f"# read in order: {', '.join(profile.files)}")
    rows = [(f"chain = {toml_value(profile.chain)}", profile.chain_origin)]
    for name in profile.chain:
        cls = modules.load(name)
        rows.append(("", None))
        rows.append((f"[{name}]", None))
        for key in sorted(cls.settings):
            value, origin = profile.value(name, key)
            rows.append((f"{key} = {toml_value(value)}", origin))
    width = max(len(text) for text, _ in rows)
    for text, origin in rows:
        lines.append(f"{text:<{width}}  # {origin}" if origin else text)
    # The description, names and paths are the profile's text: a newline in
    # one would forge a line of this "usable as a profile" output, an escape
    # sequence hide one (audit.printable, as for every line yama-run prints).
    from .audit import printable
    return "\n".join(printable(line) for line in lines) + "\n"
