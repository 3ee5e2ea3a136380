"""Audit: each denial (or would-be denial in permissive mode) kept in the
user's journal (sandbox/journal.py), one JSON object per line in --audit-log,
with -v a readable line on stderr, and without -v one short line for the
first denial of a run. The supervisor's own errors go to the same places.

Every human-readable line is escaped (printable): a process name or a path
with a newline or an escape sequence must not forge a line, or drive the
terminal. The JSON log escapes by itself."""
from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
import time
import unicodedata

from . import bareos
from .journal import RateLimit
from .writer import Writer

# -v lines: a hostile program decides how many denials it causes.
VERBOSE_BURST, VERBOSE_RATE = 200, 20.0
# Once the program runs, stderr lines are written by a thread of their own
# (write_aside): how many may wait, how long a line's sayer waits for it (so
# that it comes before the call's answer, unless the stream takes nothing),
# and how long the end of a run waits for them all.
PENDING_LINES, LINE_WAIT, DRAIN_WAIT = 1000, 0.05, 1.0

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e", "\\": "\\\\"}


def printable(text: str, backslashes: bool = True) -> str:
    """text with every control character (C0, DEL, C1), every Unicode format
    character (the bidirectional overrides and isolates U+202A-202E and
    U+2066-2069, the marks U+200E/F and U+061C, zero-width ones), the line and
    paragraph separators, and undecodable bytes (surrogate escapes) written as
    escapes, and backslashes doubled so that an escape cannot be forged. A
    process name holding U+202E made a terminal show the rest of a -v line,
    the --list-denials line or the --show-running tree reversed, so that
    "evil" read as another name or a refusal as something else.
    backslashes=False: text escaped so already (a journal's MESSAGE), its
    backslashes kept as they are."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\" and not backslashes:
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\x{code:02x}")
        elif code < 0xA0:
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:          # a byte os.fsdecode could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(ch) in _HIDDEN:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


# Format characters (bidi controls, zero-width ones), line and paragraph
# separators, lone surrogates: what reorders, hides or breaks a line.
_HIDDEN = frozenset({"Cf", "Zl", "Zp", "Cs"})


class QuietStream:
    """A stream whose write errors (EPIPE once the reader is gone, ENOSPC on
    /dev/full) are dropped: a message is never worth a stalled sandbox or a
    changed exit status."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def open_log(path: str) -> int:
    """--audit-log's descriptor, for appending. Raises OSError.

    Opened without waiting: a FIFO planted under the log's name (the program
    runs as the user, and the log is often the same name run after run) held
    yama-run's start forever; one nobody reads now fails (ENXIO).

    A symlink as the last component is followed only as the kernel's
    fs.protected_symlinks would, whatever that sysctl says: root's yama-run
    given --audit-log /tmp/app.jsonl appended its records (with the names the
    program chose) to a root-only file through a link the program, as uid
    1001, left there for the next run (fs.protected_symlinks=0). Each link of
    a chain is judged so, in the directory it is in.

    What is opened meets fs.protected_regular and fs.protected_fifos as a
    user's `>>` would (the open has O_CREAT, so the kernel's own check runs
    where they are on) and, whatever they say, their rule for a sticky
    world-writable directory: opened without O_CREAT, an existing file was
    never judged, and root's records went to a file or a FIFO uid 1001 made
    in /tmp (and read, or rewrote for --propose-profile)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = _open_log(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a FIFO that nobody reads (yama-run does not wait "
                          "for a reader)", path) from None
        raise
    os.set_blocking(fd, True)       # (a reader's pipe: written aside, write_aside)
    return fd


MAXSYMLINKS = 40                    # the kernel's: links followed in one open


def _open_log(path: str, flags: int) -> int:
    """path opened, its trailing links followed by hand: each name is opened
    in its directory's descriptor, so the directory judged is the one the
    name was found in (a relative link's target is relative to it)."""
    at = None                       # the directory a relative name starts from
    try:
        for _ in range(MAXSYMLINKS):
            head, name = os.path.split(path)
            where = os.open(head or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=at)
            if at is not None:
                os.close(at)
            at = where
            fd = _open_in(at, name or ".", flags, path)
            if fd is not None:
                return fd
            if _on_proc(at):
                # a magic link (/dev/stderr's /proc/self/fd/2) names an object,
                # not a path: the kernel follows it (no sticky directory there)
                return os.open(name, flags | os.O_CREAT, 0o666, dir_fd=at)
            # The link judged cannot be another by now: where the rule is
            # needed (a sticky directory) only its owner or the directory's,
            # both trusted by it, may remove or rename it.
            path = os.readlink(name, dir_fd=at)
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    finally:
        if at is not None:
            os.close(at)


def _on_proc(at: int) -> bool:
    try:
        return os.fstat(at).st_dev == os.stat("/proc").st_dev
    except OSError:
        return False


def _open_in(at: int, name: str, flags: int, path: str) -> int | None:
    """name in the directory at, opened (created if missing), or None for a
    symlink that may be followed; what it holds judged by the sticky rule
    before it is opened (bareos.open_judged: a FIFO swapped in after a look
    was opened, its reader woken, 1 run in 10 of a tight race). Raises
    OSError."""
    where = os.fstat(at)
    return bareos.open_judged(name, flags, lambda st: _sticky_rule(st, where, path), dir_fd=at,
                              shown=path)


def _sticky_rule(st, where, path: str) -> None:
    """The kernel's rule for what is found in a sticky world-writable
    directory (may_follow_link, may_create_in_sticky): only what is our own
    or the directory owner's; whatever the knobs say, and in a sticky
    group-writable directory too where fs.protected_regular or
    fs.protected_fifos is 2 (the kernel's own check of an O_CREAT open,
    which the reopen of what was judged does not make). Raises OSError
    (EACCES) otherwise."""
    if st.st_uid in (os.geteuid(), where.st_uid) or not where.st_mode & stat.S_ISVTX:
        return
    if not where.st_mode & stat.S_IWOTH and not (
            where.st_mode & stat.S_IWGRP and _knob_at_2(st)):
        return
    if stat.S_ISLNK(st.st_mode):
        what, rule = "a symlink", "not followed (the rule of fs.protected_symlinks)"
    elif stat.S_ISFIFO(st.st_mode):
        what, rule = "a FIFO", "not opened (the rule of fs.protected_fifos)"
    else:
        what, rule = "a file", "not opened (the rule of fs.protected_regular)"
    writable = "world-writable" if where.st_mode & stat.S_IWOTH else "group-writable"
    raise OSError(errno.EACCES, f"{what} of uid {st.st_uid} in a sticky {writable} "
                  f"directory: {rule}", path)


def _knob_at_2(st) -> bool:
    """Is the fs.protected_* knob of what st is (a FIFO, a regular file) 2?"""
    kind = "fifos" if stat.S_ISFIFO(st.st_mode) else "regular" if stat.S_ISREG(st.st_mode) \
        else None
    if kind is None:
        return False
    try:
        with open(f"/proc/sys/fs/protected_{kind}") as knob:
            return knob.read().strip() == "2"
    except OSError:
        return True                     # unknown: as the strictest


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass                        # a full disk loses records, never the sandbox


def _write_line(stream, line: str) -> None:
    """One write: another writer of the stream (the program) never splits it."""
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass                            # a lost stderr only loses messages


class Audit:
    def __init__(self, log_path: str | None = None, verbose: bool = False, stream=None,
                 journal=None, quiet: bool = False):
        self.verbose = verbose
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.journal = journal
        self._lock = threading.Lock()
        self._log = open_log(log_path) if log_path else None     # a descriptor
        self._log_writer: Writer | None = None  # its records, once written aside
        self._log_lost = 0                      # records its writer refused (too many wait)
        self._said = RateLimit(VERBOSE_BURST, VERBOSE_RATE)
        self._writer: Writer | None = None     # stderr lines, once written aside
        self._denials = 0
        # Denials settled without a record while unread_until() said nobody
        # reads them (csrc/ptrace_fast.c): a callable giving their number.
        self.silent_source = None

    @property
    def denials(self) -> int:
        self._absorb_silent()
        return self._denials

    def _absorb_silent(self) -> None:
        """Count the denials settled elsewhere as denial() would have: each
        one more denial, and (none was due a record) one more not kept."""
        count = self.silent_source() if self.silent_source is not None else 0
        if not count:
            return
        with self._lock:
            self._denials += count
        if self.journal is not None:
            self.journal.not_admitted(count)

    def unread_until(self) -> float:
        """Until when (time.monotonic()) a denial would leave no trace but the
        counts: nothing logged or said (-v), not the first of the run, and no
        journal token due. 0: the next one is read."""
        if self._log is not None or self.verbose or self._denials == 0:
            return 0.0
        return self.journal.next_admit_at() if self.journal is not None else float("inf")

    def write_aside(self) -> None:
        """From now on stderr lines are written by a thread of their own
        (sandbox/writer.py): called in the supervisor process before the
        program runs, since the program can then hold a write to stderr
        forever (a stopped terminal: every decision that says a line would
        wait with it). Past PENDING_LINES waiting, lines are dropped."""
        if self._writer is None:
            self._writer = Writer(lambda line: _write_line(self.stream, line), PENDING_LINES,
                                  "yama-run-stderr")
        if self._log is not None and self._log_writer is None and \
                not stat.S_ISREG(os.fstat(self._log).st_mode):
            # --audit-log /dev/stderr, a terminal, a FIFO, a pipe: the program
            # can stop it or fill it, as stderr; a regular file never waits
            log = self._log
            self._log_writer = Writer(lambda data: _write_all(log, data), PENDING_LINES,
                                      "yama-run-audit-log")

    def flush(self) -> None:
        """Records of the run so far written (bounded wait)."""
        self._absorb_silent()
        if self.journal is not None:
            self.journal.flush()
            self._say_unwritten()
        for writer in (self._writer, self._log_writer):
            if writer is not None:
                writer.drain(DRAIN_WAIT, stuck_after=LINE_WAIT)

    def close(self) -> None:
        self._absorb_silent()
        if self._log_lost:
            lost, self._log_lost = self._log_lost, 0
            self._write({"time": time.time(), "action": "not-recorded", "count": lost,
                         "message": f"{lost} records were not written: the log took nothing "
                                    f"while {PENDING_LINES} waited"})
        if self._said.dropped:
            self._print(f"yama-run: {self._said.dropped} more lines not shown (rate limit)")
            self._said.dropped = 0
        for writer in (self._writer, self._log_writer):
            if writer is not None:
                writer.drain(DRAIN_WAIT, stuck_after=LINE_WAIT)
        if self.journal is not None:
            self.journal.close()
            self._say_unwritten()
        if self._log is not None and self._log_writer is None:
            os.close(self._log)         # (a writer still stuck on it keeps it open)
            self._log = None

    def _say_unwritten(self) -> None:
        """A line for the journal's records that its sink refused (the file
        locked by another process and full, a FIFO in its place): lost,
        but never silently."""
        count, why = self.journal.unwritten()
        if count:
            self._print(f"yama-run: {count} record{'s' if count > 1 else ''} not kept in "
                        f"{printable(self.journal.where())}: {printable(why)}")

    def _write(self, record: dict) -> None:
        """One record, one line, one write(): O_APPEND keeps it whole beside
        another writer of the file (another yama-run given the same log)."""
        if self._log is None:
            return
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        if self._log_writer is not None:
            if not self._log_writer.put(data):      # past PENDING_LINES waiting: counted
                with self._lock:
                    self._log_lost += 1
            return
        with self._lock:
            _write_all(self._log, data)

    def _print(self, line: str) -> None:
        if self._writer is not None:
            self._writer.put(line, wait=LINE_WAIT)
        else:
            _write_line(self.stream, line)

    def say(self, text: str) -> None:
        """A readable line on stderr, only with -v (rate-limited)."""
        if self.verbose:
            with self._lock:
                allowed = self._said.allow()
            if allowed:
                self._print(f"yama-run: {printable(text)}")

    def denial(self, module: str, hook: str, request, deny, permissive: bool) -> None:
        self._absorb_silent()
        with self._lock:
            self._denials += 1
            first = self._denials == 1
        kept = self.journal is not None and self.journal.admit()
        if not (self._log is not None or self.verbose or kept or first):
            return      # nobody reads it: skip the /proc look-ups a record needs
        caller = request.caller
        record = {
            "time": time.time(),
            "action": "would-deny" if permissive else "deny",
            "module": module,
            "hook": hook,
            "syscall": request.syscall,
            "pid": caller.tgid,
            "tid": caller.tid,
            "comm": caller.comm,
            "errno": errno.errorcode.get(deny.errno, str(deny.errno)),
            "reason": deny.reason,
        }
        record.update(request.audit_fields())
        self._write(record)
        verb = "would deny" if permissive else "denied"
        message = f"{module}: {verb} {request.describe()} by {caller.describe()}: {deny.reason}"
        if kept:
            self.journal.record(record, message)
        self.say(message)
        if first and not self.verbose and not self.quiet:
            where = " (see yama-run --list-denials)" if self.journal is not None else ""
            self._print(f"yama-run: {printable(message)}{where}")

    def records_emulated(self) -> bool:
        """Does emulated() leave any trace? (Fixed for the run.)"""
        return self._log is not None or self.verbose

    def emulated(self, request) -> None:
        """A call the core performed for the caller because the kernel cannot
        (PR_SET_PTRACER here: no Yama): recorded, so that what a program was
        granted is as visible as what it was refused."""
        if not self.records_emulated():
            return
        caller = request.caller
        self._write({"time": time.time(), "action": "emulated", "hook": request.hook,
                     "syscall": request.syscall, "pid": caller.tgid, "tid": caller.tid,
                     "comm": caller.comm, "operation": request.describe(),
                     **request.audit_fields()})
        self.say(f"emulated {request.describe()} by {caller.describe()}")

    def notice(self, kind: str, message: str, always: bool = False, **fields) -> None:
        """Something the user should know of a run, neither a denial nor an
        error (a setuid program run without its privilege): the audit log, the
        journal, and -v. always: kept in the journal whatever the rate limit
        (a settings change, which only the sandbox's owner makes)."""
        record = {"time": time.time(), "action": kind, **fields}
        self._write(record)
        if self.journal is not None and (always or self.journal.admit()):
            self.journal.record(record, message)
        self.say(message)

    def internal_error(self, what: str, trace: str, always: bool = False,
                       action: str = "internal-error", **fields) -> None:
        """The supervisor's own code failed (the call concerned fails closed):
        the traceback in the audit log and the journal, one line with -v (or
        always, when yama-run cannot start at all), never a raw traceback."""
        last = trace.strip().splitlines()[-1] if trace.strip() else "unknown error"
        message = f"internal error in {what}: {last}"
        record = {"time": time.time(), "action": action, "what": what,
                  "traceback": trace, **fields}
        self._write(record)
        if self.journal is not None and self.journal.admit():
            self.journal.record(record, message)
        if always and not self.verbose:
            self._print(f"yama-run: {printable(message)}")
        else:
            self.say(message)

    def module_error(self, module: str, hook: str, request, trace: str) -> None:
        fields = {"module": module, "hook": hook}
        if request is not None:
            fields.update(pid=request.caller.tgid, tid=request.caller.tid,
                          syscall=request.syscall)
        self.internal_error(f"module {module} ({hook}; denied)", trace, action="module-error",
                            **fields)
