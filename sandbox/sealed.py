"""The package's code, read before the program runs: every later import of a
sandbox module is served from what was read then, never from the files.

The program runs as the user, and a user's install (README: a venv in
~/.local/lib/yama-run) is the user's to write. The supervisor imports most
of the package once the program already runs (the cached start,
docs/startup.md): a program that appended a line to sandbox/supervisor.py in
its first milliseconds had that line run in the supervisor, outside the
sandbox, holding its listener. Read here, before the spawn, the files are
as they were before the program existed; a program can only change what a
later run reads, as it can change any file of the user's (docs/hostile.md).
Any other module is looked for in the standard library alone from then on:
every other package is imported by then, and a name the standard library
tries and lacks here, planted in site-packages, was imported too.

Loaded before the program runs: posix and marshal only, no os."""

import marshal
import posix
import sys

import _frozen_importlib as _bootstrap
import _frozen_importlib_external as _external

PACKAGE = "sandbox"
_DIR_TYPE, _TYPE_MASK = 0o040000, 0o170000


class _Code:
    """One module's code as read: its .pyc's code (compiled) when the .pyc
    matches its source's time and size, as import checks it, else the source."""
    __slots__ = ("path", "package", "compiled", "data")

    def __init__(self, path: str, package: bool, compiled: bool, data: bytes):
        self.path, self.package, self.compiled, self.data = path, package, compiled, data


def _read(path: str) -> bytes:
    """The whole file, in one read sized by fstat (a buffer of a fixed large
    size cost a fresh mapping per file: a third of a millisecond in all)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = [posix.read(fd, posix.fstat(fd).st_size + 1)]
        while chunks[-1]:           # on to the end, should it have grown since
            chunks.append(posix.read(fd, 1 << 16))
        return b"".join(chunks)
    finally:
        posix.close(fd)


def _pyc_code(source: str, directory: str, stem: str) -> bytes | None:
    """The code of stem's .pyc, when its header says it was compiled from
    the source as it is (timestamp mode: magic, flags 0, mtime, size)."""
    try:
        pyc = _read(f"{directory}/__pycache__/{stem}.{sys.implementation.cache_tag}.pyc")
        st = posix.stat(source)
    except OSError:
        return None
    header = (_external.MAGIC_NUMBER + bytes(4) + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
              + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little"))
    return pyc[16:] if pyc[:16] == header else None


def _module_code(source: str, directory: str, stem: str, package: bool) -> _Code:
    code = _pyc_code(source, directory, stem)
    if code is not None:
        return _Code(source, package, True, code)
    return _Code(source, package, False, _read(source))


def _walk(directory: str, name: str, found: dict[str, _Code]) -> None:
    """Every module of package name (at directory) and of its subpackages
    that is not imported yet."""
    for entry in posix.listdir(directory):
        path = f"{directory}/{entry}"
        if entry.endswith(".py"):
            stem = entry[:-3]
            module = name if stem == "__init__" else f"{name}.{stem}"
            if module not in sys.modules:
                found[module] = _module_code(path, directory, stem, stem == "__init__")
        elif entry != "__pycache__" and posix.stat(path).st_mode & _TYPE_MASK == _DIR_TYPE \
                and posix.access(f"{path}/__init__.py", posix.F_OK):
            _walk(path, f"{name}.{entry}", found)


class SealedPackage:
    """A finder ahead of every other for the package's modules: those not
    imported yet are served from the code read at seal(); a name it did not
    read is refused (ImportError), never looked for on disk."""

    def __init__(self, code: dict[str, _Code], path: list[str]):
        self.code = code
        self.path = path                # sys.path before the seal: unseal() gives it back

    def find_spec(self, name: str, path=None, target=None):
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            return None
        found = self.code.get(name)
        if found is None:
            raise ImportError(f"{name}: not among yama-run's modules read before the program ran",
                              name=name)
        spec = _bootstrap.ModuleSpec(name, self, origin=found.path, is_package=found.package)
        spec.has_location = True
        if found.package:
            spec.submodule_search_locations = [found.path.rpartition("/")[0]]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        found = self.code[module.__name__]
        code = marshal.loads(found.data) if found.compiled else \
            compile(found.data, found.path, "exec", dont_inherit=True)
        exec(code, module.__dict__)


def _standard_library_only(path: list[str]) -> list[str]:
    """The entries of sys.path that are the interpreter's own: its standard
    library, lib-dynload and zip. Any other (the venv's site-packages, the
    cwd of `python -m`) the program may write: a module planted there under
    a name the standard library tries and may lack (`nt`, `msvcrt`,
    `_winapi`; `org` for copy.py) was imported by the supervisor."""
    stdlib = sys.modules["encodings"].__path__[0].rpartition("/")[0]
    zipped = "/python%d%d.zip" % sys.version_info[:2]
    return [entry for entry in path
            if entry in (stdlib, stdlib + "/lib-dynload") or entry.endswith(zipped)]


def seal() -> None:
    """Read every module of the package not imported yet and serve them
    from here on, and look for any other module in the standard library
    alone. Once per process: the spawn calls it, before the program exists;
    every other package the supervisor needs is imported by then."""
    if any(isinstance(finder, SealedPackage) for finder in sys.meta_path):
        return
    found: dict[str, _Code] = {}
    _walk(sys.modules[PACKAGE].__path__[0], PACKAGE, found)
    sys.meta_path.insert(0, SealedPackage(found, list(sys.path)))
    sys.path[:] = _standard_library_only(sys.path)


def unseal() -> None:
    """seal() undone, for a spawn whose child never became the program (it
    failed before its exec, and was reaped): no program of ours has run, and
    the fallback to the ptrace backend imports python-ptrace before it seals
    again for its own spawn."""
    for finder in [f for f in sys.meta_path if isinstance(f, SealedPackage)]:
        sys.meta_path.remove(finder)
        sys.path[:] = finder.path
