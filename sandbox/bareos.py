"""What the launch path needs of os and os.path before the program runs, from
`posix` alone: importing `os` costs about a millisecond of every start (its
_collections_abc, stat and posixpath; docs/startup.md). Each function
answers as its os namesake does for the inputs the launch path gives it
(tests/test_launch.py compares them); once the program runs, the rest of
yama-run uses os as usual.

The environment yama-run reads for itself is posix.environ, which is what
os.environ is made from; the program's is environ(), the one yama-run was
started with (the interpreter's own start may have changed posix.environ)."""
import errno
import posix
import sys

DEVNULL = "/dev/null"
DEFPATH = "/bin:/usr/bin"               # os.defpath
S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


def fsencode(text: str) -> bytes:
    return text.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def fsdecode(data: bytes) -> str:
    return data.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def environ() -> dict[str, str]:
    """The environment this process was started with, read as os.environ
    reads its own: the program's. Not os.environ itself: with no locale
    set, or LANG=C, the interpreter's start set LC_CTYPE=C.UTF-8 in it (PEP
    538's coercion, which -I's isolation cannot turn off), and the program
    then counted and matched characters as UTF-8 where it would have used
    bytes. The kernel keeps the exec's strings in /proc/self/environ; glibc's
    setenv never writes over them (it points environ elsewhere)."""
    try:
        pairs = _environ_pairs(_read_whole("/proc/self/environ"))
    except OSError:                     # no procfs (where nothing else of ours works)
        pairs = posix.environ
    return {fsdecode(name): fsdecode(value) for name, value in pairs.items()}


def _environ_pairs(block: bytes) -> dict[bytes, bytes]:
    """NAME=VALUE strings, NUL-ended, as CPython's convertenviron reads
    environ: one without "=" is skipped, and the first of a name wins
    (as getenv finds it)."""
    pairs: dict[bytes, bytes] = {}
    for entry in block.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if eq:
            pairs.setdefault(name, value)
    return pairs


def _read_whole(path: str) -> bytes:
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = []
        while chunk := posix.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        posix.close(fd)


def getenv(name: str, default: str | None = None) -> str | None:
    value = posix.environ.get(fsencode(name))
    return default if value is None else fsdecode(value)


# -- names (os.path's, for str paths) -----------------------------------------------------

def join(directory: str, name: str) -> str:
    """os.path.join of two parts."""
    if name.startswith("/"):
        return name
    if not directory or directory.endswith("/"):
        return directory + name
    return f"{directory}/{name}"


def basename(path: str) -> str:
    return path[path.rfind("/") + 1:]


def dirname(path: str) -> str:
    head = path[:path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def isabs(path: str) -> bool:
    return path.startswith("/")


def normpath(path: str) -> str:
    if not path:
        return "."
    initial = 1 if path.startswith("/") else 0
    if path.startswith("//") and not path.startswith("///"):
        initial = 2                     # POSIX leaves a leading // to the system
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != ".." or (not initial and not parts) or (parts and parts[-1] == ".."):
            parts.append(part)
        elif parts:
            parts.pop()
    return "/" * initial + "/".join(parts) or "."


def abspath(path: str) -> str:
    return normpath(path if isabs(path) else join(posix.getcwd(), path))


def home() -> str:
    """os.path.expanduser("~")."""
    directory = getenv("HOME")
    if directory is None:
        import pwd
        try:
            directory = pwd.getpwuid(posix.getuid()).pw_dir
        except KeyError:
            return "~"
    return directory.rstrip("/") or "/"


def xdg_home(variable: str, under_home: str) -> str | None:
    """An XDG base directory: $variable, else HOME/under_home; absolute, or
    None. The XDG spec calls a relative value invalid, to be ignored; a
    relative HOME, or none and no passwd entry (home() is then "~"), gives
    none: never a directory relative to the cwd, which another user may own."""
    base = getenv(variable)
    if base and isabs(base):
        return base
    directory = home()
    return join(directory, under_home) if isabs(directory) else None


def resolved(path: str) -> str:
    """The path of an existing file with every symbolic link resolved, as the
    kernel names the file it opened (os.path.realpath's answer for a file
    that exists and can be reached). Raises OSError."""
    fd = posix.open(path, posix.O_PATH | posix.O_CLOEXEC)
    try:
        return posix.readlink(f"/proc/self/fd/{fd}")
    finally:
        posix.close(fd)


# -- kinds of file (os.path's: False when it cannot be told) ----------------------------------

def _mode(path) -> int | None:
    try:
        return posix.stat(path).st_mode
    except (OSError, ValueError):
        return None


def exists(path) -> bool:
    return _mode(path) is not None


def is_dir(path) -> bool:
    mode = _mode(path)
    return mode is not None and mode & S_IFMT == S_IFDIR


def is_file(path) -> bool:
    mode = _mode(path)
    return mode is not None and mode & S_IFMT == S_IFREG


# -- a name opened only once what it holds is judged --------------------------------------------

NAME_CHANGES = 40                       # looks at a name that keeps changing, at most


def open_judged(name: str, flags: int, judge, dir_fd: int | None = None,
                shown: str | None = None) -> int | None:
    """name opened with flags, or made (O_EXCL) if missing; what it holds is
    taken first without opening it (O_PATH, no link followed), given to
    judge(stat), which raises to refuse, and that object opened again
    through /proc/self/fd. None for a symlink: its caller's to judge and
    follow. A name looked at and then opened was a race: a FIFO planted
    between the look (nothing there) and the open was opened, its reader
    woken. Here nothing another planted is opened but to be judged, and
    O_EXCL's EEXIST looks again. OSError otherwise, naming shown (or name)."""
    shown = shown or name
    for _ in range(NAME_CHANGES):
        try:
            held = posix.open(name, posix.O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC,
                              dir_fd=dir_fd)
        except FileNotFoundError:
            try:
                return posix.open(name, flags | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW,
                                  0o666, dir_fd=dir_fd)
            except FileExistsError:
                continue                        # planted meanwhile: judged as found
        try:
            st = posix.fstat(held)
            judge(st)
            if st.st_mode & S_IFMT == S_IFLNK:
                return None
            try:
                return posix.open(f"/proc/self/fd/{held}", flags)
            except OSError as exc:              # named as given, never by our descriptor
                raise OSError(exc.errno, exc.strerror, shown) from None
        finally:
            posix.close(held)
    raise OSError(errno.EAGAIN, "its name kept changing", shown)
