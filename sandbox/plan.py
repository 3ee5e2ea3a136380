"""The compiled plan: everything a run needs before its program starts (the
BPF program, the routed syscalls of every ABI, the chain's rules over the
facts C finds, the -v lines), cached per user so that the next run of the
same command starts without reading a profile, importing a policy module or
building a filter (docs/startup.md).

A plan is rebuilt whenever one of its inputs changes. The inputs are its key
(yama-run's version and location, the Python and kernel, the options that
choose and change the profile, the command as far as the profile lookup
reads it, the environment the lookup reads) and its facts, checked on every
use: every profile file and directory the lookup read, the code of yama-run
and of libseccomp, where the program resolves on PATH, the fs.protected_*
sysctls that "auto" reads, and Landlock's ABI. A plan is only kept when
every module of its chain is bundled (a third-party module's inputs are its
own) and when no input changed within the second before it was read
(timestamps are coarse: a change in the same tick would go unseen).

Plans live in $XDG_CACHE_HOME/yama-run/plans (~/.cache), one file each,
owner-only, and are only read from a directory and a file the user owns that
nobody else can write: a plan says which filter a program runs under.

Only modules written in C are imported at module level (`posix`, not `os`:
sandbox/bareos.py): the cached launch path (sandbox/launch.py) runs this
before the program starts."""
import errno
import marshal
import posix
import sys
import zlib

from . import bareos

FORMAT = 1
SYSCTLS = ("protected_symlinks", "protected_hardlinks", "protected_fifos", "protected_regular")
ENVIRONMENT = ("HOME", "XDG_CONFIG_HOME", "PATH", "YAMA_RUN_NO_FAST_PATH",
               "YAMA_RUN_NO_LANDLOCK", "YAMA_RUN_LANDLOCK_ABI")
# The profile lookup reads a launcher's whole command line (sandbox/launchers.py).
LAUNCHERS = frozenset({"env", "nice", "ionice", "taskset", "chrt", "nohup", "setsid",
                       "stdbuf", "timeout"})
RACY_NS = 1_000_000_000         # an input changed this close to the build: not kept
MAX_PLANS = 256                 # the oldest are removed past this many
# A plan is about 16 KiB; a bigger file in its place is not read at all (the
# program, of the same uid, may plant one: a sparse terabyte must cost nothing).
MAX_PLAN_BYTES = 4 << 20
PACKAGE = bareos.dirname(bareos.abspath(__file__))


class Options:
    """What shapes a plan on yama-run's command line."""

    def __init__(self, profile=None, no_profile=False, overrides=(), permissive=False,
                 ready=False):
        self.profile = profile
        self.no_profile = no_profile
        self.overrides = tuple(overrides)
        self.permissive = permissive
        self.ready = ready                      # --ready-to-tighten: more routes


# -- the key: which plan a run wants ---------------------------------------------------

def key(options: Options, command: list[str]) -> tuple:
    profile = options.profile
    if profile and ("/" in profile or profile.endswith(".toml")):
        profile = bareos.abspath(profile)       # a path: relative to our cwd
    lookup = ()
    if not profile and not options.no_profile:
        program = command[0]
        base = bareos.basename(program.rstrip("/")) or program
        lookup = tuple(command) if base in LAUNCHERS else (program,)
    return (FORMAT, _version(), sys.version, PACKAGE, posix.geteuid(), posix.uname().release,
            profile, options.no_profile, options.overrides, options.permissive, options.ready,
            lookup,
            tuple(bareos.getenv(name) for name in ENVIRONMENT))


def _version() -> str:
    from . import __version__
    return __version__


# -- facts: the inputs checked on every use ----------------------------------------------

def signature(path: str):
    """What tells a changed file or directory (ctime cannot be set back)."""
    try:
        st = posix.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def which(program: str, search_path: str | None, cwd: str | None) -> str | None:
    """Where shutil.which finds program (then its real path), as the profile
    lookup asks it; cwd: where a relative result is relative to."""
    if bareos.dirname(program):
        candidates = [program]
    else:
        if search_path is None:
            search_path = bareos.getenv("PATH")
            if search_path is None:
                search_path = posix.confstr("CS_PATH") or bareos.DEFPATH
        candidates, seen = [], set()
        for directory in search_path.split(":") if search_path else ():
            if directory not in seen:
                seen.add(directory)
                candidates.append(bareos.join(directory, program))
    for candidate in candidates:
        if (bareos.exists(candidate) and posix.access(candidate, posix.F_OK | posix.X_OK)
                and not bareos.is_dir(candidate)):
            try:
                return bareos.resolved(candidate)
            except OSError:             # gone since: the next check compares again
                return bareos.abspath(candidate)
    return None


def _depends_on_cwd(program: str, search_path: str | None) -> bool:
    if bareos.dirname(program):
        return not bareos.isabs(program)
    entries = (search_path if search_path is not None else bareos.getenv("PATH", "")).split(":")
    return any(not bareos.isabs(entry) for entry in entries)


def which_fact(program: str, search_path: str | None) -> tuple:
    cwd = posix.getcwd() if _depends_on_cwd(program, search_path) else None
    return ("which", program, search_path, cwd, which(program, search_path, cwd))


def sysctl(name: str) -> bytes | None:
    try:
        with open(f"/proc/sys/fs/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def holds(fact: tuple, landlock_abi) -> bool:
    """Is this fact still true? landlock_abi: a callable (the extension's)."""
    kind = fact[0]
    if kind == "stat":
        return signature(fact[1]) == fact[2]
    if kind == "sysctl":
        return sysctl(fact[1]) == fact[2]
    if kind == "which":
        _, program, search_path, cwd, found = fact
        if cwd is not None and cwd != posix.getcwd():
            return False
        return which(program, search_path, cwd) == found
    if kind == "landlock":
        return landlock_abi() == fact[1]
    return False


# -- where plans are kept ------------------------------------------------------------------

def cache_dir() -> str | None:
    base = bareos.xdg_home("XDG_CACHE_HOME", ".cache")
    if base is None:
        return None                     # no home: no cache
    return bareos.join(bareos.join(base, "yama-run"), "plans")


def file_name(run_key: tuple) -> str:
    data = repr(run_key).encode("utf-8", "surrogateescape")    # (marshal's bytes vary)
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}.plan"


def trusted(st, kind: int, owners, forbidden: int, fd: int) -> bool:
    """The one rule for a file or directory that says which filter runs or
    what yama-run writes (a plan here, a profile in sandbox/profile.py, the
    applications directory in sandbox/desktop.py): of this kind (S_IFDIR or
    S_IFREG), owned by one of owners, and none of the forbidden mode bits set
    (0o022: nobody else may write it; its group's write bit is no one else's
    where the group is its owner's own). st is fd's fstat."""
    bits = st.st_mode & forbidden
    if bits & 0o020 and owners_own_group(st, fd):
        bits &= ~0o020
    return st.st_mode & bareos.S_IFMT == kind and st.st_uid in owners and not bits


def owners_own_group(st, fd: int) -> bool:
    """Is st's group its owner's private group, so that its write bit is the
    owner's alone? Where users have groups of their own, their umask is 002
    (Debian's and Fedora's login), so what a user makes is group-writable, by
    nobody but them: refused, every run of such a user with a profile
    directory ended 125. Private only if it is the owner's primary group, no
    other user's primary group (nobody, _apt and sync share 65534; openSUSE's
    users all have 100), no entry of that gid lists anyone else (getgrgid
    gives the first entry only; initgroups grants every one), and fd has no
    ACL (whose named users write through the mask the group bits show)."""
    import grp
    import pwd
    try:
        owner = pwd.getpwuid(st.st_uid)
    except KeyError:                        # no entry: nothing proves the group private
        return False
    entries = [g for g in grp.getgrall() if g.gr_gid == st.st_gid]
    return (owner.pw_gid == st.st_gid and bool(entries)
            and not any(p.pw_gid == st.st_gid and p.pw_uid != st.st_uid for p in pwd.getpwall())
            and all(set(g.gr_mem) <= {owner.pw_name} for g in entries)
            and not _has_acl(fd))


def _has_acl(fd: int) -> bool:
    """Has fd an access ACL? Asked through /proc/self/fd (flistxattr refuses
    an O_PATH descriptor); an answer not had counts as an ACL (fail closed)."""
    try:
        names = posix.listxattr(f"/proc/self/fd/{fd}")
    except OSError as exc:
        return exc.errno != errno.EOPNOTSUPP    # no xattrs on this file system: no ACL
    return "system.posix_acl_access" in names


def _owned_privately(st, directory: bool, fd: int) -> bool:
    """Ours, and nobody else may write it (nor read a plan)."""
    if directory:
        return trusted(st, bareos.S_IFDIR, (posix.geteuid(),), 0o022, fd)
    return trusted(st, bareos.S_IFREG, (posix.geteuid(),), 0o077, fd)


class Miss(Exception):
    """Why no cached plan is used; said with -v."""


def load(run_key: tuple, landlock_abi) -> tuple[dict, str]:
    """(plan, its path) for this key, every fact checked; raises Miss."""
    directory = cache_dir()
    if directory is None:
        raise Miss("no cache directory (no home)")
    path = bareos.join(directory, file_name(run_key))
    try:
        dfd = open_own_dir(directory, 0o700, create=False)
    except OSError as exc:
        raise Miss(f"{directory}: {exc.strerror}") from None
    try:
        if not _owned_privately(posix.fstat(dfd), directory=True, fd=dfd):
            raise Miss(f"{directory} is not a directory of uid {posix.geteuid()} that only it "
                       "can write: not trusted")
        try:
            # O_NONBLOCK: a FIFO planted under the plan's name (by the program,
            # which runs as the same uid) must not hold the open until a
            # writer comes; O_NOFOLLOW: nor a link lead elsewhere. What was
            # opened is then judged by fstat on this descriptor, and read
            # from it: a rename swap after the open changes nothing read.
            fd = posix.open(bareos.basename(path), posix.O_RDONLY | posix.O_NOFOLLOW
                            | posix.O_CLOEXEC | posix.O_NONBLOCK, dir_fd=dfd)
        except FileNotFoundError:
            raise Miss("no plan for this command yet") from None
        except OSError as exc:
            raise Miss(f"{path}: {exc.strerror}") from None
    finally:
        posix.close(dfd)
    try:
        st = posix.fstat(fd)
        if not _owned_privately(st, directory=False, fd=fd):
            raise Miss(f"{path} is not a file of uid {posix.geteuid()} that only it can "
                       "write: not trusted")
        if st.st_size > MAX_PLAN_BYTES:
            raise Miss(f"{path} is larger than a plan ({st.st_size} bytes): not read")
        data = _read_all(fd)
    finally:
        posix.close(fd)
    try:
        plan = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        raise Miss(f"{path} is not a plan") from None
    if not isinstance(plan, dict) or plan.get("key") != run_key:
        raise Miss("the cached plan is another command's")
    for fact in plan["facts"]:
        if not holds(fact, landlock_abi):
            raise Miss(f"changed since the plan was made: {describe(fact)}")
    return plan, path


def _read_all(fd: int) -> bytes:
    """At most MAX_PLAN_BYTES (the file may grow while it is read: a file
    that does is no plan, and is not read to its end)."""
    chunks, size = [], 0
    while size <= MAX_PLAN_BYTES:
        chunk = posix.read(fd, MAX_PLAN_BYTES + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise Miss("the cached plan grew past any plan's size while it was read: not read")


def describe(fact: tuple) -> str:
    kind = fact[0]
    if kind == "stat":
        return fact[1]
    if kind == "sysctl":
        return f"fs.{fact[1]}"
    if kind == "which":
        return f"where {fact[1]} is found on PATH"
    return "the Landlock ABI"


def store(plan: dict) -> str:
    """Keep the plan for the next run; returns where. Raises OSError or
    Miss (why it is not kept)."""
    if plan.get("uncacheable"):
        raise Miss(plan["uncacheable"])
    directory = cache_dir()
    if directory is None:
        raise Miss("not kept: no cache directory (no home)")
    dfd = open_own_dir(directory, 0o700, create=True)
    try:
        if not _owned_privately(posix.fstat(dfd), directory=True, fd=dfd):
            raise Miss(f"not kept: {directory} is not a directory of uid {posix.geteuid()} that "
                       "only it can write")
        name = file_name(plan["key"])
        temporary = f".{name}.{posix.getpid()}"
        fd = posix.open(temporary, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL
                        | posix.O_NOFOLLOW | posix.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            with open(fd, "wb") as f:
                f.write(marshal.dumps(plan))
            posix.rename(temporary, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                posix.unlink(temporary, dir_fd=dfd)
            except OSError:
                pass
            raise
        _prune(dfd)
    finally:
        posix.close(dfd)
    return bareos.join(directory, name)


MAX_LINKS = 40       # as the kernel's path walk (ELOOP)


def open_own_dir(directory: str, mode: int, create: bool) -> int:
    """The absolute directory opened O_RDONLY, walked from / one component
    at a time, following a link in its parents only if the kernel would
    where fs.protected_symlinks is 1: a link of the effective uid or root.
    root run with uid 1001's HOME made and wrote in a root-only directory
    uid 1001 chose by a link ~/.cache or ~/.local (review 11-H, finding 2).
    The directory itself is never a link. With create, what is missing is
    made, each one only inside a directory of the effective uid (the one
    rule of every directory yama-run makes: root made a root-owned, 0700
    ~/.cache in a user's HOME). Raises OSError (EPERM, ELOOP, ENOENT...)."""
    where = bareos.dirname(directory)
    parent = _walk(posix.open("/", _PATH_FLAGS | posix.O_DIRECTORY), "/", where, mode, create,
                   [MAX_LINKS])
    try:
        fd = _open_or_make(parent, where, directory, mode, create)
    finally:
        posix.close(parent)
    try:
        if posix.fstat(fd).st_mode & bareos.S_IFMT != bareos.S_IFDIR:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory (a link is not followed)",
                                     directory)
        return posix.open(".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, dir_fd=fd)
    finally:
        posix.close(fd)


_PATH_FLAGS = posix.O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC


def _walk(dfd: int, where: str, path: str, mode: int, create: bool, links: list) -> int:
    """The descriptor path leads to from dfd, named where (absolute: from
    /); dfd is consumed. Each step opens one name with O_NOFOLLOW and judges what that
    descriptor is: a name swapped after the step is not the one walked."""
    if path.startswith("/"):
        posix.close(dfd)
        dfd, where = posix.open("/", _PATH_FLAGS | posix.O_DIRECTORY), "/"
    for name in path.split("/"):
        if name and name != ".":
            dfd = _step(dfd, where, name, mode, create, links)
            where = bareos.join(where, name)
    return dfd


def _step(dfd: int, where: str, name: str, mode: int, create: bool, links: list) -> int:
    """The directory name leads to in dfd (named where; consumed)."""
    path = bareos.join(where, name)
    try:
        fd = _open_or_make(dfd, where, path, mode, create)
        st = posix.fstat(fd)
        if st.st_mode & bareos.S_IFMT == bareos.S_IFLNK:
            fd = _follow(dfd, where, (fd, path, st.st_uid), mode, create, links)
        elif st.st_mode & bareos.S_IFMT != bareos.S_IFDIR:
            posix.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, posix.strerror(errno.ENOTDIR), path)
    finally:
        posix.close(dfd)
    return fd


def _follow(dfd: int, where: str, link: tuple, mode: int, create: bool, links: list) -> int:
    """Where link (its O_PATH descriptor, consumed; its path; its owner)
    leads from dfd (named where; kept). Its target is read from that
    descriptor: the link judged is the one followed."""
    fd, path, owner = link
    try:
        if owner not in (posix.geteuid(), 0):
            raise PermissionError(errno.EPERM, f"not followed: a link of uid {owner}", path)
        links[0] -= 1
        if links[0] < 0:
            raise OSError(errno.ELOOP, posix.strerror(errno.ELOOP), path)
        target = posix.readlink("", dir_fd=fd)
    finally:
        posix.close(fd)
    return _walk(posix.dup(dfd), where, target, mode, create, links)


def _open_or_make(dfd: int, where: str, path: str, mode: int, create: bool) -> int:
    """path's last name in dfd (named where) opened O_PATH|O_NOFOLLOW; if
    missing and create, made first, only if dfd is the effective uid's."""
    name = bareos.basename(path)
    try:
        return posix.open(name, _PATH_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        if not create:
            raise FileNotFoundError(errno.ENOENT, posix.strerror(errno.ENOENT), path) from None
    owner = posix.fstat(dfd).st_uid
    if owner != posix.geteuid():
        raise PermissionError(errno.EPERM, f"not made: {where} is a directory of uid {owner}",
                              path)
    try:
        posix.mkdir(name, mode, dir_fd=dfd)
    except FileExistsError:
        pass                        # made meanwhile: judged as any other below
    return posix.open(name, _PATH_FLAGS, dir_fd=dfd)


def _prune(dfd: int) -> None:
    """Past MAX_PLANS, the least recently written go (a plan per command)."""
    names = [n for n in posix.listdir(dfd) if n.endswith(".plan")]
    if len(names) <= MAX_PLANS:
        return
    dated = []
    for name in names:
        try:
            dated.append((posix.stat(name, dir_fd=dfd).st_mtime_ns, name))
        except OSError:
            pass
    for _, name in sorted(dated)[:len(dated) - MAX_PLANS]:
        try:
            posix.unlink(name, dir_fd=dfd)
        except OSError:
            pass


# -- compiling (the cold path: the chain is loaded) -----------------------------------------

def routing(chain, ready: bool = False) -> dict:
    """What the supervisor routes and what C settles alone, for a chain: the
    part of a plan that does not depend on how the profile was found. ready
    (--ready-to-tighten): every route any value of the settings needs."""
    from . import filter as seccomp_filter
    from .control import routed_hooks
    from .shield import Shield
    from .supervisor import rule_tables
    shield = Shield(chain)
    hooks = routed_hooks(chain, shield.kernel, ready)
    shield.nondumpable = True
    shielded = shield.describe()
    shield.nondumpable = False
    return {
        "format": FORMAT,
        "hooks": sorted(hooks),
        "bpf": seccomp_filter.build(hooks, shield.kernel),
        "syscalls": list(seccomp_filter.syscall_table(hooks, shield.kernel)),
        "tables": rule_tables(chain, hooks, shield),
        "landlock": shield.domain,
        "exec_watch": "task_free" in hooks,
        "shield_says": {True: shielded, False: shield.describe()},
        "enforcement": [module.enforcement() for module in chain.modules
                        if hasattr(module, "enforcement")],
    }


def compile(run_key: tuple, profile, chain, since_ns: int, says: list[str],
            ready: bool = False) -> dict:
    """The whole plan: routing, the profile it was made from, the -v lines
    (escaped) and every fact it depends on. since_ns: when this run began
    (before the profile lookup read anything)."""
    from . import modules as policy_modules
    from . import profile as profiles
    from ._yama import lib
    from .audit import printable
    plan = routing(chain, ready)
    plan.update({
        "key": run_key,
        "profile": {"name": profile.name, "source": profile.source, "chain": list(profile.chain),
                    "settings": {name: dict(values) for name, values in profile.settings.items()},
                    "origins": dict(profile.origins)},
        "says": [printable(line) for line in says],
    })
    facts = []
    for path in sorted(set(profiles.inputs.paths) | set(_code_files())):
        facts.append(("stat", path, signature(path)))
    facts += [fact for fact in profiles.inputs.lookups]
    facts += [("sysctl", name, sysctl(name)) for name in SYSCTLS]
    facts.append(("landlock", lib.yr_landlock_abi()))
    plan["facts"] = facts
    foreign = [name for name in profile.chain if name not in policy_modules.BUNDLED]
    racy = [fact[1] for fact in facts if fact[0] == "stat" and fact[2] is not None
            and fact[2][5] >= since_ns - RACY_NS]
    if foreign:
        plan["uncacheable"] = f"not kept: modules not bundled ({', '.join(foreign)})"
    elif racy:
        plan["uncacheable"] = f"not kept: changed a moment ago ({racy[0]})"
    return plan


def _code_files() -> list[str]:
    """yama-run's own code as loaded (the package, its extension), pyseccomp
    and the libseccomp that built the filter: a change to any of them may
    change the plan."""
    files = [module.__file__ for name, module in list(sys.modules.items())
             if (name == "sandbox" or name.startswith("sandbox.") or name == "pyseccomp")
             and getattr(module, "__file__", None)]
    try:
        with open("/proc/self/maps") as maps:
            files += {line.split(None, 5)[5].strip() for line in maps
                      if "libseccomp" in line and len(line.split(None, 5)) == 6}
    except OSError:
        pass
    return [bareos.abspath(path) for path in files]
