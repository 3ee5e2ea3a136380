"""Where denials are kept for later, whether or not -v or --audit-log was
given: the user's journal where systemd-journald runs (structured fields,
SYSLOG_IDENTIFIER=yama-run, as AppArmor's denials are kept by the audit
system), else a rotated JSON-lines file under $XDG_STATE_HOME/yama-run/.
`yama-run --list-denials` reads them back.

A hostile program decides how many denials it causes, so neither the disk
nor the supervisor may pay without bound: records are written by a thread of
their own from a bounded queue (the notification path never waits on a
disk), at most BURST at once and RATE a second after that per run (the rest
are counted, and the count recorded), and the file is rotated at MAX_BYTES,
one old generation kept: at most 2 x MAX_BYTES on disk for all runs. The
file's lock is one any process of the user may hold for ever: it is waited
for LOCK_WAIT at most, then the line appended without it (never past
MAX_BYTES), and a record that cannot be written is said on stderr."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import time

from .plan import open_own_dir
from .writer import Writer

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "yama-run"
FILE_NAME = "denials.jsonl"
MAX_BYTES = 1 << 20
BURST, RATE = 100, 10.0
QUEUE_SIZE = 256
# s: how long a record waits for the file's lock (another yama-run holds it
# for one write), and how often it tries meanwhile
LOCK_WAIT, LOCK_POLL = 0.2, 0.005


def state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "yama-run")


def journald_reachable() -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(JOURNAL_SOCKET)
        return True
    except OSError:
        return False


def open_default(program: str, profile: str) -> "Journal":
    sink = SystemJournal() if journald_reachable() else FileJournal(state_dir())
    return Journal(sink, program, profile)


class RateLimit:
    """A token bucket: BURST records at once, then RATE a second."""

    def __init__(self, burst: int = BURST, rate: float = RATE):
        self.burst, self.rate = burst, rate
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.dropped = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False

    def next_token_at(self) -> float:
        """When (time.monotonic()) allow() can next say yes: 0 for now. The
        bucket only fills with time, so no allow() before this says yes."""
        if self.tokens >= 1:
            return 0.0
        return self.last + (1 - self.tokens) / self.rate


class Journal:
    """One run's denials, to their sink, from a writer thread."""

    def __init__(self, sink, program: str, profile: str):
        self.sink = sink
        self.program = os.path.basename(program)
        self.profile = profile
        self.limit = RateLimit()
        self._writer: Writer | None = None
        self._lock = threading.Lock()
        self._unwritten = 0             # records the sink refused since unwritten() asked
        self._unwritten_why = ""

    def where(self) -> str:
        return self.sink.where()

    def admit(self) -> bool:
        """May one more record be kept? (Called before the record is built.)"""
        with self._lock:
            return self.limit.allow()

    def next_admit_at(self) -> float:
        """When admit() can next say yes (time.monotonic(); 0: now)."""
        with self._lock:
            return self.limit.next_token_at()

    def not_admitted(self, count: int) -> None:
        """count denials refused a record elsewhere (settled in C while no
        token was due: csrc/ptrace_fast.c), counted as admit() counts them."""
        with self._lock:
            self.limit.dropped += count

    def record(self, record: dict, message: str) -> None:
        record = {**record, "program": self.program, "profile": self.profile,
                  "message": message}
        self._put(record)

    def _put(self, record: dict) -> None:
        with self._lock:
            if self._writer is None:        # started in the supervisor, not before the fork
                self._writer = Writer(self._write, QUEUE_SIZE, "yama-run-journal")
        if not self._writer.put(record):
            with self._lock:
                self.limit.dropped += 1

    def _write(self, record: dict) -> None:
        """The record to the sink; one it refuses is counted (unwritten)."""
        try:
            self.sink.write(record)
        except OSError as exc:
            with self._lock:
                self._unwritten += 1
                self._unwritten_why = exc.strerror or str(exc)

    def unwritten(self) -> tuple[int, str]:
        """(how many records the sink refused since the last call, why the
        last one was): said on stderr by the audit, as the journal cannot
        keep a record of its own loss."""
        with self._lock:
            count, self._unwritten = self._unwritten, 0
            return count, self._unwritten_why

    def flush(self, timeout: float = 1.0) -> None:
        """Wait (a bounded time) until what was recorded so far is written,
        with the count of what was not: before yama-run returns, so that
        --list-denials right after sees it."""
        self._summarize()
        if self._writer is not None:
            self._writer.drain(timeout)

    def _summarize(self) -> None:
        """One record for the records dropped since the last one."""
        with self._lock:
            dropped, self.limit.dropped = self.limit.dropped, 0
        if dropped:
            self._put({"time": time.time(), "action": "not-recorded", "count": dropped,
                       "program": self.program, "profile": self.profile,
                       "message": f"{dropped} more denials were not recorded (rate limit)"})

    def close(self) -> None:
        self._summarize()
        if self._writer is not None:
            self._writer.close(timeout=5)


class FileJournal:
    """JSON lines in STATE_DIR/denials.jsonl, rotated to denials.jsonl.1."""

    def __init__(self, directory: str):
        self.dir = directory
        self.path = os.path.join(directory, FILE_NAME)
        # The lock was held past LOCK_WAIT at the last write: the next ones
        # only try it (each record waiting LOCK_WAIT, a run's records took
        # longer than the second the end of a run gives them).
        self._contended = False

    def where(self) -> str:
        return self.path

    def write(self, record: dict) -> None:
        """Append one line: under the lock, rotating at MAX_BYTES; without it
        (append only) when the lock is held past LOCK_WAIT. Raises OSError
        when the line cannot be written (the caller counts it)."""
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        dfd = self._open_dir(create=True)
        try:
            fd = self._open_locked(dfd, 0 if self._contended else LOCK_WAIT)
            self._contended = fd is None
            if fd is not None and os.fstat(fd).st_size + len(line) > MAX_BYTES:
                # under the lock: one rotation, whoever else writes
                os.replace(FILE_NAME, FILE_NAME + ".1", src_dir_fd=dfd, dst_dir_fd=dfd)
                os.close(fd)
                fd = self._open_locked(dfd, LOCK_WAIT)
            if fd is None:
                self._append_unlocked(dfd, line)
                return
            try:
                _write_whole(fd, line, locked=True)
            finally:
                os.close(fd)
        finally:
            os.close(dfd)

    @staticmethod
    def _append_unlocked(dfd: int, line: bytes) -> None:
        """The line appended without the lock: any process of the user (the
        program under yama-run among them) may hold the lock for ever, and a
        writer that waited for it lost every record of the run. One write()
        with O_APPEND puts a line whole at the end of a regular file, beside
        any other writer. A rotation under the lock between this open and
        the write moves the file this line goes to to denials.jsonl.1, which
        is kept and listed: the line is not lost. Never a rotation here: a
        rename without the lock could race one under it and drop a
        generation. So past MAX_BYTES the line is refused (the disk's bound
        holds); the size check and the write are not atomic, so unlocked
        writers at the same moment may pass it by a line each."""
        fd = FileJournal._open_file(dfd)
        try:
            if os.fstat(fd).st_size + len(line) > MAX_BYTES:
                raise OSError(errno.EWOULDBLOCK, "locked by another process, and full",
                              FILE_NAME)
            _write_whole(fd, line, locked=False)
        finally:
            os.close(fd)

    def _open_dir(self, create: bool) -> int:
        """The directory, walked to without following a link of another uid
        (plan.open_own_dir), and only if it is the effective uid's and nobody
        else may write it: root run with a user's HOME (sudo keeps it on some
        systems) must neither write where that user points
        ~/.local/state/yama-run or ~/.local (a link to /etc/apt/apt.conf.d)
        nor list records that user wrote. Every name below is opened
        relative to this descriptor: a directory swapped in later is not used."""
        fd = open_own_dir(self.dir, 0o700, create)
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            os.close(fd)
            raise OSError(errno.EPERM, f"not a directory of uid {os.geteuid()} that only it "
                          "can write", self.dir)
        return fd

    @staticmethod
    def _open_file(dfd: int) -> int:
        """The current file, opened for appending (not locked)."""
        # The file is the user's, so a program of the same uid may put a
        # FIFO in its place: O_NONBLOCK fails the open (ENXIO) rather than
        # wait for a reader, and what opened must be a regular file.
        fd = os.open(FILE_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                     | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600, dir_fd=dfd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file", FILE_NAME)
        return fd

    @staticmethod
    def _open_locked(dfd: int, wait: float) -> int | None:
        """The current file, locked (one writer at a time, across yama-runs);
        opened again if another run rotated it meanwhile. None when the lock
        was not had within wait seconds: another yama-run holds it for one
        write, so only a process that keeps it (the program may: the file is
        its uid's) holds it longer."""
        deadline = time.monotonic() + wait
        while True:
            fd = FileJournal._open_file(dfd)
            if not _lock_until(fd, deadline):
                os.close(fd)
                return None
            try:
                if os.stat(FILE_NAME, dir_fd=dfd, follow_symlinks=False).st_ino == \
                        os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def recent(self, limit: int) -> list[dict]:
        try:
            dfd = self._open_dir(create=False)
        except OSError:
            return []
        try:
            lines = [line for name in (FILE_NAME + ".1", FILE_NAME)
                     for line in _read_lines(name, dfd)]
        finally:
            os.close(dfd)
        out = []
        for line in lines[-limit:]:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _write_whole(fd: int, line: bytes, locked: bool) -> None:
    """One line appended whole, or OSError. A write cut short (the user's
    RLIMIT_FSIZE, which the supervisor has too, a full disk) is taken back
    under the lock, so that the next line does not join the cut one and
    both be skipped when read; without the lock another writer may have
    appended after it, so it stays (the reader skips it, the next line
    with it) and the loss is counted either way."""
    before = os.fstat(fd).st_size
    written = os.write(fd, line)
    if written != len(line):
        if locked:
            os.ftruncate(fd, before)
        raise OSError(errno.EFBIG, f"cut short after {written} of {len(line)} bytes", FILE_NAME)


def _lock_until(fd: int, deadline: float) -> bool:
    """flock(LOCK_EX) on fd, tried until deadline (time.monotonic()), never
    waited for beyond it."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_POLL)


def _read_lines(name: str, dfd: int) -> list[str]:
    """The lines of a kept file; nothing from a FIFO or device planted in its
    place (it would block --list-denials, or never end), or past what
    rotation lets a file grow to."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dfd)
    except OSError:
        return []
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        data = f.read(2 * MAX_BYTES)
    return data.decode("utf-8", "replace").splitlines(keepends=True)


class SystemJournal:
    """systemd-journald's native protocol: one datagram of KEY=value fields."""

    def __init__(self):
        self._sock = None

    def where(self) -> str:
        return f"the journal (journalctl -t {IDENTIFIER})"

    def write(self, record: dict) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.sendto(encode_fields(journal_fields(record)), JOURNAL_SOCKET)

    @staticmethod
    def recent(limit: int) -> list[dict]:
        if shutil.which("journalctl") is None:
            return []
        r = subprocess.run(["journalctl", "--no-pager", "-o", "json", "-n", str(limit),
                            "-t", IDENTIFIER], capture_output=True, text=True, timeout=30)
        out = []
        for line in r.stdout.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            out.append({key[len("YAMA_RUN_"):].lower(): value for key, value in entry.items()
                        if key.startswith("YAMA_RUN_")}
                       | {"time": _number(entry.get("__REALTIME_TIMESTAMP")) / 1e6,
                          "message": entry.get("MESSAGE", ""), "escaped": True})
        return out


def journal_fields(record: dict) -> list[tuple[str, str]]:
    """MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and each field as YAMA_RUN_KEY.
    MESSAGE is the line journalctl shows: escaped as yama-run's own lines are
    (a newline in a path would show as a line of its own, an override
    reverse what follows); the YAMA_RUN_* fields keep the values whole."""
    from .audit import printable
    fields = [("MESSAGE", printable(str(record.get("message", "")))), ("PRIORITY", "4"),
              ("SYSLOG_IDENTIFIER", IDENTIFIER)]
    for key, value in sorted(record.items()):
        if key in ("message", "time") or value is None:
            continue
        name = "YAMA_RUN_" + "".join(c if c.isalnum() else "_" for c in key.upper())
        fields.append((name, value if isinstance(value, str) else json.dumps(value)))
    return fields


def encode_fields(fields) -> bytes:
    """KEY=value lines; a value with a newline in the length-prefixed form."""
    out = bytearray()
    for key, value in fields:
        data = value.encode("utf-8", "surrogateescape")
        if b"\n" in data:
            out += key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def show_recent(echo, limit: int = 50) -> int:
    """--list-denials: the last LIMIT records, one readable line each."""
    from .audit import printable
    sink = SystemJournal() if journald_reachable() else FileJournal(state_dir())
    # The file is the user's: the program may have written any JSON there (a
    # "time" of "abc" or 1e300, a list for a record). Such a record is shown
    # as well as it can be, never a traceback; each field escaped whole.
    records = [record for record in sink.recent(limit) if isinstance(record, dict)]
    for record in records:
        # a journal's MESSAGE was escaped when written (journal_fields); any
        # process of the user may log as yama-run, so it is escaped again but
        # for its backslashes
        message = printable(str(record.get("message", "")),
                            backslashes=record.get("escaped") is not True)
        echo(printable(f"{_when(record.get('time'))} {record.get('program', '?')} "
                       f"[{record.get('profile', '?')}] ") + message)
    echo(f"({len(records)} recent denials; kept in {printable(sink.where())})"
         if records else f"(no denials recorded in {printable(sink.where())})")
    return 0


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _when(value) -> str:
    """A record's time as local time, or ? for one that is none."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value or 0)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"
