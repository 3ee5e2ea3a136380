"""The user's running sandboxes, seen from outside: where their control
sockets live, who may talk to them, and the client of `--list-running`,
`--show-running` and `--change-running`.

Each supervisor owns one socket, PID.TOKEN.sock, in the user's control
directory (control_dir): $XDG_RUNTIME_DIR/yama-run, else /run/user/UID/yama-run
when systemd made that directory for us, else /run/yama-run for root and
/tmp/yama-run-UID for the others; the directory 0700 and the socket 0600,
both the user's. The server side is sandbox/control.py.

A sandboxed program runs as the same uid in the same filesystem: it can
connect to these sockets, remove them or plant its own. So nothing here is
trusted for what it is called:

  * the supervisor answers only a peer that cannot be inside any sandbox:
    one without no_new_privs or without a seccomp filter (sandboxed(), which
    no process can clear; control.py);
  * the client believes a socket only when the process listening on it is
    the supervisor its name says, of our uid (or root), and not possibly
    sandboxed (an impostor inside a sandbox always is);
  * a socket nobody listens on (its supervisor is gone) is removed, never
    read;
  * every read is bounded in size and time.

Pure Python: the C extension is not needed to list or change sandboxes."""
from __future__ import annotations

import errno
import json
import os
import select
import socket
import stat
import struct
import time

SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)      # Linux 6.5
SUFFIX = ".sock"
ROOT_RUN = "/run"                   # root's runtime files, when systemd made none for it
PROTOCOL = 1
REQUEST_MAX = 64 << 10              # bytes a supervisor reads of one request
REPLY_MAX = 4 << 20                 # bytes a client reads of one reply
CLIENT_TIMEOUT = 5.0                # s: a supervisor that does not answer is skipped


class ControlError(Exception):
    """A sandbox cannot be found, reached or changed (yama-run exits 125)."""


# -- the directory -------------------------------------------------------------------

def control_dir() -> tuple[str, str]:
    """(the control directory, why this one)."""
    uid = os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and _owned_dir(runtime, uid):
        return os.path.join(runtime, "yama-run"), "$XDG_RUNTIME_DIR"
    why = ("XDG_RUNTIME_DIR is unset" if not runtime else
           f"XDG_RUNTIME_DIR ({runtime}) is not a directory of uid {uid}")
    systemd = f"/run/user/{uid}"
    if _owned_dir(systemd, uid):
        return os.path.join(systemd, "yama-run"), f"{why}; {systemd} is the user's"
    if uid == 0 and _owned_dir(ROOT_RUN, 0, private=True):
        # not /tmp/yama-run-0: any user may make that first, and root's
        # sandboxes would then have no control socket
        return os.path.join(ROOT_RUN, "yama-run"), f"{why}, and there is no {systemd}"
    return f"/tmp/yama-run-{uid}", f"{why}, and there is no {systemd}"


def _owned_dir(path: str, uid: int, private: bool = False) -> bool:
    """A real directory of uid's (private: that no one else may write to)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and \
        not (private and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def open_dir(create: bool) -> int:
    """An O_PATH descriptor of the control directory, checked: a real
    directory (not a link), ours, 0700 (made so when we created it). Raises
    ControlError if it is someone else's or cannot be had."""
    path, _ = control_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ControlError(f"cannot create {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
        os.close(fd)
        raise ControlError(f"{path} is not a directory of uid {os.geteuid()} with mode 0700 "
                           f"(owner {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}): "
                           "not used")
    return fd


def in_dir(dir_fd: int, name: str) -> str:
    """A path to name inside the directory held by dir_fd that is short
    enough for a socket address whatever the directory's own path, and never
    follows a directory swapped in meanwhile."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def socket_name(pid: int, token: str) -> str:
    return f"{pid}.{token}{SUFFIX}"


def pid_of_name(name: str) -> int | None:
    head = name.split(".", 1)[0]
    return int(head) if name.endswith(SUFFIX) and head.isdigit() else None


# -- who is at the other end ----------------------------------------------------------

def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer, as the kernel recorded them at connect()
    (for the client: at the server's listen()), in our namespaces."""
    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))


def peer_pidfd(sock: socket.socket) -> int | None:
    """A pidfd of the peer process (SO_PEERPIDFD): the process itself, which
    a reused pid can never be. None where the kernel lacks it (before 6.5).
    Raises ProcessLookupError when the kernel has it but gives none: a peer
    already reaped on kernels that refuse those (EINVAL), whose pid may be
    another's by now (6.18 gives a pidfd that says it exited)."""
    try:
        return struct.unpack("i", sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4))[0]
    except OSError as exc:
        if exc.errno == errno.ENOPROTOOPT:
            return None
        raise ProcessLookupError(f"no pidfd of the peer ({exc.strerror})") from None


def exited(pidfd: int) -> bool:
    """Has the process behind pidfd exited (a zombie included)?"""
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return bool(p.poll(0))


def status_field(pid: int | str, name: str) -> str | None:
    """One field of /proc/PID/status (readable for every process)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except OSError:
        pass
    return None


def sandboxed(pid: int | str) -> bool | None:
    """Could pid be inside a yama-run sandbox? Every process of one runs
    with no_new_privs and in seccomp filter mode (both set by spawn.c before
    the program runs, inherited by every descendant, whatever it execs or
    wherever it is re-parented), and no process can ever clear either. None
    if /proc cannot tell (the caller fails closed)."""
    no_new_privs, mode = status_field(pid, "NoNewPrivs"), status_field(pid, "Seccomp")
    if no_new_privs is None or mode is None:
        return None
    return no_new_privs != "0" and mode != "0"


def terminal_of(pid: int) -> str | None:
    """The controlling terminal of pid (pts/3, tty2), from /proc/PID/stat."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 5:
        return None
    number = int(fields[4])
    major, minor = number >> 8 & 0xFFF, (number & 0xFF) | (number >> 12 & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return f"tty {major}:{minor}" if number else None


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/PID/stat's fields after the parenthesised comm (which may
    itself hold parentheses): state, ppid, pgrp, session, tty_nr..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def parent_of(pid: int) -> int | None:
    """The parent's pid (from /proc/PID/stat)."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields is not None and len(fields) > 1 else None


def ancestry(pid: int) -> list[int]:
    """pid and its ancestors up to pid 1 (a gone process ends the list)."""
    out = [pid]
    while out[-1] > 1 and len(out) < 4096:
        parent = parent_of(out[-1])
        if not parent:
            break
        out.append(parent)
    return out


# -- one exchange ---------------------------------------------------------------------

def read_bounded(sock: socket.socket, limit: int, deadline: float) -> bytes:
    """Up to limit bytes, until EOF or a newline; past the deadline or the
    limit: TimeoutError or ValueError."""
    data = bytearray()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError(f"more than {limit} bytes")
    return bytes(data)


def send_line(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message, sort_keys=True).encode() + b"\n")


def ask(path: str, request: dict, expected_pid: int) -> dict:
    """Send one request to the supervisor at path and return its answer,
    after checking that the socket is served by that supervisor (the pid its
    name says, our uid or root, not possibly inside a sandbox). Raises
    ControlError (with .stale set when nobody listens)."""
    [(_, sock, error)] = _connect_all([path], time.monotonic() + CLIENT_TIMEOUT)
    return _exchange(sock, error, request, expected_pid)


def _exchange(sock: socket.socket | None, error: OSError | None, request: dict,
              expected_pid: int) -> dict:
    """One request and its answer on a socket _connect_all gave (closed
    after), or the ControlError its connect() failed with."""
    if sock is None:
        if isinstance(error, (ConnectionRefusedError, FileNotFoundError, NotADirectoryError)):
            stale = ControlError(f"nobody listens ({error.strerror})")
            stale.stale = True
            raise stale
        raise ControlError(f"cannot connect: {error.strerror or error}")
    try:
        sock.setblocking(True)
        sock.settimeout(CLIENT_TIMEOUT)
        _check_server(sock, expected_pid)
        try:
            send_line(sock, {**request, "v": PROTOCOL})
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass        # a supervisor that refuses us answers without reading: read that
        try:
            raw = read_bounded(sock, REPLY_MAX, time.monotonic() + CLIENT_TIMEOUT)
            answer = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ControlError(f"no valid answer ({exc})") from None
    finally:
        sock.close()
    if not isinstance(answer, dict):
        raise ControlError("no valid answer")
    if "refused" in answer:
        raise ControlError(f"refused: {answer['refused']}")
    if answer.get("supervisor") != expected_pid:
        raise ControlError("the answer is not from the supervisor the socket is named after")
    return answer


def _connect_all(paths: list[str], deadline: float):
    """Yields (index, socket, None) or (index, None, the OSError) for each
    path as its connect() ends, waiting for a place in a listen queue until
    deadline, for every path in turn, round after round; the caller's
    exchange on a socket follows its connect at once (a supervisor waits
    REQUEST_TIMEOUT for the request). A sandboxed program may keep a queue
    full with connections of its own (each refused, but it makes them as
    fast as they are), and may plant sockets of its own in the control
    directory and never accept on them: waited for one after another, 5 s
    each, four of them held --list-running (and --change-running, which
    looks first) for 20 s, a hundred for 500 s. A non-blocking connect to a
    full queue fails with EAGAIN at once, where a blocking one would wait;
    that path is tried again next round.

    One socket at a time: an AF_UNIX connect is made or refused at once
    (never in progress), so a try that finds the queue full closes its
    socket, and the caller has ended its exchange on a yielded socket before
    it asks for the next (this is a generator). One socket held per name,
    all at once, let 25,000 names planted by the program take every
    descriptor the client could have, the real supervisors' included."""
    waiting = list(range(len(paths)))
    while waiting:
        full = []
        for i in waiting:
            sock, error = _connect(paths[i])
            if isinstance(error, BlockingIOError) and time.monotonic() < deadline:
                full.append(i)
            else:
                yield i, sock, error
        waiting = full
        if waiting:
            time.sleep(0.005)


def _connect(path: str) -> tuple[socket.socket | None, OSError | None]:
    """(a socket connected to path, None), or (None, the OSError)."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC
                             | socket.SOCK_NONBLOCK)
    except OSError as exc:
        return None, exc
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        return None, exc
    return sock, None


def _check_server(sock: socket.socket, expected_pid: int) -> None:
    pid, uid, _ = peer_credentials(sock)
    try:
        pidfd = peer_pidfd(sock)
    except ProcessLookupError as exc:
        raise ControlError(f"served by pid {pid}, which has exited: {exc}") from None
    try:
        if pid != expected_pid:
            raise ControlError(f"served by pid {pid}, not by supervisor {expected_pid}: "
                               "not a yama-run supervisor's socket (planted?)")
        if uid not in (os.geteuid(), 0):
            raise ControlError(f"served by uid {uid}: not ours")
        if sandboxed(pid) is not False:
            raise ControlError(f"served by pid {pid}, which runs with no_new_privs under a "
                               "seccomp filter (a sandboxed program's socket?): not trusted")
        if pidfd is not None and exited(pidfd):
            raise ControlError("its process has exited")      # what was read may be another's
    finally:
        if pidfd is not None:
            os.close(pidfd)


# -- finding them -------------------------------------------------------------------

class Found:
    """One socket of the control directory and what came of asking it."""

    def __init__(self, name: str, pid: int, answer: dict | None = None, error: str = ""):
        self.name, self.pid, self.answer, self.error = name, pid, answer, error


def survey(request: dict | None = None) -> tuple[list[Found], list[str], str]:
    """Ask every supervisor of the user's control directory (request:
    status by default). Returns (those found, notes such as stale sockets
    removed, the directory and why it is the one)."""
    path, why = control_dir()
    where = f"{path} ({why})" if not why.startswith("$") else path
    try:
        dir_fd = open_dir(create=False)
    except ControlError:
        if not os.path.lexists(path):
            return [], [], where
        raise
    found, notes = [], []
    try:
        names, skipped = _socket_names(dir_fd)
        if skipped:
            notes.append(f"ignored {skipped} name{'s' if skipped > 1 else ''} of the form "
                         f"PID.*{SUFFIX} that {'are' if skipped > 1 else 'is'} not a socket of "
                         f"uid {os.geteuid()} (planted?)")
        connected = _connect_all([in_dir(dir_fd, name) for name, _ in names],
                                 time.monotonic() + CLIENT_TIMEOUT)
        for i, sock, error in connected:
            name, pid = names[i]
            try:
                answer = _exchange(sock, error, request or {"op": "status"}, pid)
                found.append(Found(name, pid, answer))
            except ControlError as exc:
                if getattr(exc, "stale", False):
                    if _remove_stale(dir_fd, name):
                        notes.append(f"removed {name}: stale (its supervisor {pid} is gone)")
                else:
                    found.append(Found(name, pid, error=str(exc)))
    finally:
        os.close(dir_fd)
    found.sort(key=lambda f: f.name)
    return found, notes, where


def _socket_names(dir_fd: int) -> tuple[list[tuple[str, int]], int]:
    """(name, pid) of each entry named like a control socket that is a
    socket of ours, and how many entries so named are not: skipped, judged
    by lstat alone, nothing opened for them (25,000 regular files planted
    under such names were each given a descriptor, and never removed as
    stale). An entry swapped for another after this look costs one connect
    at most: what is not a socket refuses it, and is not removed."""
    uid = os.geteuid()
    names, skipped = [], 0
    for name in sorted(os.listdir(in_dir(dir_fd, "."))):
        pid = pid_of_name(name)
        if pid is None:
            continue
        try:
            st = os.lstat(in_dir(dir_fd, name))
        except OSError:
            continue                    # gone meanwhile
        if stat.S_ISSOCK(st.st_mode) and st.st_uid == uid:
            names.append((name, pid))
        else:
            skipped += 1
    return names, skipped


def _remove_stale(dir_fd: int, name: str) -> bool:
    """Remove a socket nobody listens on, if it is still the one we tried
    (a supervisor binds under a new name, never this one again)."""
    try:
        st = os.lstat(in_dir(dir_fd, name))
        if stat.S_ISSOCK(st.st_mode):
            os.unlink(in_dir(dir_fd, name))
            return True
    except OSError:
        pass
    return False


def resolve(ident: str, found: list[Found]) -> Found:
    """The sandbox a user means by ident: a supervisor's pid, any pid of its
    tree, or its program's or profile's name when only one matches."""
    live = [f for f in found if f.answer is not None]
    if ident.isdigit():
        for pid in ancestry(int(ident)):
            for f in live:
                if pid == f.pid or pid == f.answer.get("main_pid"):
                    return f
        raise ControlError(f"no running sandbox of this user holds process {ident}"
                           + _unanswered(found))
    named = [f for f in live if ident in (f.answer.get("program"), f.answer.get("profile"))]
    if len(named) == 1:
        return named[0]
    if not named:
        raise ControlError(f"no running sandbox of this user runs {ident!r} "
                           "(see yama-run --list-running)" + _unanswered(found))
    pids = ", ".join(str(f.pid) for f in named)
    raise ControlError(f"{len(named)} sandboxes run {ident!r} (supervisors {pids}): "
                       "name one by pid")


def _unanswered(found: list[Found]) -> str:
    silent = [f for f in found if f.answer is None]
    if not silent:
        return ""
    return (f"; {len(silent)} control socket{'s' if len(silent) > 1 else ''} did not "
            f"answer: {silent[0].error}")


def one(ident: str, request: dict) -> dict:
    """Send request to the sandbox ident names."""
    found, _, _ = survey()
    target = resolve(ident, found)
    path, _ = control_dir()
    return ask(os.path.join(path, target.name), request, target.pid)


# -- what the user sees -------------------------------------------------------------

def list_running(echo) -> int:
    """--list-running: one line per sandbox."""
    from .audit import printable
    found, notes, where = survey()
    rows = [("SUPERVISOR", "PID", "PROGRAM", "PROFILE", "STATE", "PROCS", "DENIALS", "SETTINGS")]
    for f in found:
        a = f.answer
        if a is None:
            continue
        rows.append((str(f.pid), str(a.get("main_pid") or "-"), a.get("program", "?"),
                     a.get("profile", "?"), a.get("state", "?"), str(a.get("processes", "?")),
                     str(a.get("denials", "?")), compact_settings(a.get("settings", []))))
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            echo(printable("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths))
                           + "  " + row[-1]))
    for f in found:
        if f.answer is None:
            echo(printable(f"yama-run: {f.name}: {f.error}"))
    for note in notes:
        echo(printable(f"yama-run: {note}"))
    count = len(rows) - 1
    echo(printable(f"({count} running sandbox{'es' if count != 1 else ''}; control sockets in "
                   f"{where})"))
    return 0


def compact_settings(settings: list[dict]) -> str:
    """ptrace.scope=1 hardlinks.protected=1 ... (every setting in force)."""
    return " ".join(f"{s['module']}.{s['key']}={toml(s['value']).strip(chr(34))}"
                    for s in settings)


def toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def show_running(ident: str, echo) -> int:
    """--show-running: one sandbox in detail."""
    from .audit import printable
    a = one(ident, {"op": "detail"})
    for line in detail_lines(a):
        echo(printable(line))
    return 0


def detail_lines(a: dict) -> list[str]:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.get("started", 0)))
    lines = [f"sandbox of {a.get('program', '?')} (supervisor {a.get('supervisor')})",
             f"  command:    {' '.join(a.get('argv', []))}",
             f"  state:      {a.get('state_detail', a.get('state', '?'))}",
             f"  started:    {started} by uid {a.get('uid')}",
             f"  profile:    {a.get('profile')} ({a.get('profile_source')})",
             f"  backend:    {a.get('backend')}; {a.get('protection')}",
             f"  control:    {a.get('control')}",
             f"  denials:    {a.get('denials')} so far (yama-run --list-denials shows them)",
             "  settings:   (value  # where it comes from; what it may be changed to live)"]
    for s in a.get("settings", []):
        lines.append(f"    {s['module']}.{s['key']} = {toml(s['value'])}  # {s.get('origin')}")
        lines.append(f"      {live_note(s.get('live', {}))}")
    for text in a.get("enforcement", []):
        lines.append(f"  enforced:   {text}")
    lines.append(f"  routed:     {a.get('routed')}")
    changes = a.get("changes", [])
    if changes:
        lines.append("  changes:")
        for c in changes:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.get("time", 0)))
            lines.append(f"    {when} {c.get('message')}")
    lines.append(f"  processes:  {len(a.get('tree', []))}")
    for depth, pid, comm, cmdline in a.get("tree", []):
        lines.append(f"    {'  ' * depth}{pid} {comm}: {cmdline}")
    return lines


def live_note(live: dict[str, str]) -> str:
    """may become 0, 1, 2, 3 live; not 0, 1: why (values refused for one
    reason said once)."""
    allowed = [value for value, why in live.items() if not why]
    refused: dict[str, list[str]] = {}
    for value, why in live.items():
        if why:
            refused.setdefault(why, []).append(value)
    note = f"may become {', '.join(allowed)} live" if allowed else "cannot change live"
    return note + "".join(f"; not {', '.join(values)}: {why}" for why, values in refused.items())


def change_running(ident: str, changes: list[str], echo) -> int:
    """--change-running ID --set MODULE.KEY=VALUE...: every change or none."""
    from .audit import printable
    pairs = []
    for item in changes:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ControlError(f"--set {item!r}: expected MODULE.KEY=VALUE")
        pairs.append([key.strip(), value.strip()])
    if not pairs:
        raise ControlError("--change-running needs at least one --set MODULE.KEY=VALUE")
    a = one(ident, {"op": "set", "changes": pairs})
    head = f"sandbox {a.get('supervisor')} ({a.get('program')})"
    if a.get("error"):
        raise ControlError(f"{head}: {a['error']}")
    for line in a.get("applied", []):
        echo(printable(f"yama-run: {head}: {line}"))
    return 0
