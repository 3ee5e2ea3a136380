"""Tasks pinned as the kernel's Yama keeps them, and released the moment they go.

Yama's PR_SET_PTRACER relation holds two task_structs (security/yama/yama_lsm.c:
the tracee is the declaring process's group leader, the tracer is the task the
declaration names, a thread or a leader) and yama_task_free drops it when
either task is freed. A Task here is such a task, pinned by a pidfd:

  leader  a process's group leader, named by its tgid: freed when the whole
          thread group is gone (a process pidfd fires), or when a non-leader
          thread's exec frees it (de_thread)
  thread  a non-leader thread, named by its tid: freed when it ends (its
          thread pidfd fires), or when another thread's exec kills it; if it
          execs itself it becomes the leader and takes the process's pid, and
          stays the same task (it is then watched as that leader)

Pidfds follow pids, not tasks, and de_thread swaps the two threads' pids, so
an exec by a non-leader thread is noted by the notification loop while the
thread waits on it (csrc/procinfo.c, yr_exec_note) with what tells later
whether it succeeded; see ExecNote.

Every pidfd sits in one epoll set that a thread of ours waits on: a task that
ends is released at once (its owner is told through on_free), never found by
a sweep. The descriptors held are bounded (room()); beyond, the caller that
wanted one more is refused, no one else."""
from __future__ import annotations

import os
import resource
import select
import signal
import threading
import time

from ._yama import ffi, lib

PIDFD_THREAD = os.O_EXCL
RECHECK_EVERY = 0.02         # s: an exec note whose thread is gone while its old mm lives on
RECHECK_FOR = 1.0            # s: after that, the thread ended without exec
MAX_NOTES = 128              # unresolved exec notes kept (3 descriptors each)
FDS_AT_MOST = 4096           # descriptors the watch may hold, whatever the limit


class Task:
    """One task_struct, pinned. Shared: a tracer named by many declarations
    is one Task with a count of holders."""

    __slots__ = ("tid", "tgid", "leader", "fd", "holders", "freed", "note", "watch")

    def __init__(self, watch, tid: int, tgid: int, leader: bool, fd: int):
        self.watch = watch
        self.tid, self.tgid, self.leader, self.fd = tid, tgid, leader, fd
        self.holders = 1
        self.freed = False
        self.note = None         # an exec note still deciding this thread's fate

    @property
    def pid(self) -> int:
        """The number the task is known by now (a thread that exec'd: its tgid)."""
        return self.tid

    def alive(self) -> bool:
        return self.watch.alive(self)

    def hold(self) -> None:
        """One more holder (a module that records the task)."""
        with self.watch.lock:
            self.holders += 1

    def release(self) -> None:
        self.watch.release(self)

    def __repr__(self):
        kind = "leader" if self.leader else "thread"
        return f"Task({kind} {self.tid} of {self.tgid}{', freed' if self.freed else ''})"


class ExecNote:
    """An execve by non-leader thread tid of process tgid, noted before it ran.

    Once tid's own pid is released (thread_fd fires) either the exec succeeded
    (de_thread gave that pid to the old leader and freed it) or the thread
    ended. Which: the old mm, pinned through /proc/TID/mem, reads EOF once an
    exec has replaced it, and an exec draws a new layout. Between de_thread
    and the mm's replacement (microseconds) neither shows yet, so a note whose
    thread is gone while its old mm lives is asked again for RECHECK_FOR
    before it is taken as "no exec"; meanwhile the tasks it concerns count as
    freed (fail closed)."""

    __slots__ = ("tid", "tgid", "thread_fd", "process_fd", "mm_fd", "layout", "lost",
                 "fired_at")

    def __init__(self, raw):
        self.tid, self.tgid = raw.tid, raw.tgid
        self.thread_fd, self.process_fd, self.mm_fd = raw.thread_fd, raw.process_fd, raw.mm_fd
        self.layout = tuple(raw.layout[i] for i in range(lib.YR_MM_LAYOUT))
        self.lost = bool(raw.lost)
        self.fired_at = None

    def fds(self):
        return [fd for fd in (self.thread_fd, self.process_fd, self.mm_fd) if fd >= 0]

    def exec_happened(self) -> bool:
        try:
            if os.pread(self.mm_fd, 1, 0) == b"":
                return True              # the old mm is gone
        except OSError:
            pass                         # EIO at address 0: the old mm lives
        layout = ffi.new("uint64_t[]", lib.YR_MM_LAYOUT)
        if lib.yr_mm_layout(self.tgid, layout) < 0:
            return False                 # the process is going: its pidfds will say
        return tuple(layout) != self.layout


def _fired(fd: int) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


class TaskWatch:
    """The pinned tasks of one sandbox. Every descriptor is held by exactly
    one owner (a Task or an ExecNote) and counted once (room())."""

    def __init__(self, on_free, on_error=None):
        self.lock = threading.RLock()
        self._on_free = on_free          # called with each freed Task, without our lock
        self._on_error = on_error        # told of a failure of ours (never a traceback on the terminal)
        self._ep = None
        self._events = -1                # the exec notes' eventfd (C's)
        self._tasks: dict[tuple[bool, int], Task] = {}
        self._listening: dict[int, object] = {}
        self._notes: list[ExecNote] = []
        self._freed: list[Task] = []
        self._held = 0

    # -- set-up ----------------------------------------------------------------

    def _start(self) -> None:
        if self._ep is not None:
            return
        self._ep = select.epoll()
        # Born with every signal blocked: a process-directed SIGCHLD or a
        # forwarded SIGINT must reach the thread that waits for it, never
        # this one (which would take and drop it).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            threading.Thread(target=self._serve, name="yama-run-tasks", daemon=True).start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def watch_execs(self) -> None:
        """Have the notification loop note non-leader execs (csrc/procinfo.c)."""
        lib.yr_exec_watch(1)
        with self.lock:
            self._start()
            fd = lib.yr_exec_eventfd()
            if fd >= 0 and self._events < 0:
                self._events = fd
                self._ep.register(fd, select.EPOLLIN)

    def room(self, fds: int = 2) -> bool:
        """May the watch take fds more descriptors? At most half of what is
        left once the supervisor's own needs (workers, caches) are met, as
        the limit is now (raised after the spawn)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        capacity = max(32, min(FDS_AT_MOST, (soft - 1024) // 2))
        with self.lock:
            self._start()
            return self._held + fds <= capacity

    def held(self) -> int:
        with self.lock:
            return self._held

    # -- descriptors ----------------------------------------------------------------

    def _listen(self, fd: int, owner) -> None:
        self._listening[fd] = owner
        self._ep.register(fd, select.EPOLLIN)

    def _unlisten(self, fd: int) -> None:
        """Stop hearing of fd (it may still pin): the set is level-triggered."""
        if self._listening.pop(fd, None) is not None:
            try:
                self._ep.unregister(fd)
            except OSError:
                pass

    def _drop(self, fd: int) -> None:
        if fd >= 0:
            self._unlisten(fd)
            os.close(fd)
            self._held -= 1

    # -- handles ------------------------------------------------------------------

    def leader(self, tgid: int) -> Task | None:
        """The group leader of process tgid, pinned (None: no such process)."""
        return self._pin(tgid, tgid, True)

    def thread(self, tid: int, tgid: int) -> Task | None:
        """Task tid (the leader when tid == tgid), pinned."""
        return self._pin(tid, tgid, tid == tgid)

    def _pin(self, tid: int, tgid: int, leader: bool) -> Task | None:
        with self.lock:
            self._start()
            self._settle()
            task = self._tasks.get((leader, tid))
            if task is not None and self._alive_locked(task):
                task.holders += 1
                return task
            try:
                fd = os.pidfd_open(tid, 0 if leader else PIDFD_THREAD)
            except OSError:
                return None
            self._held += 1
            task = Task(self, tid, tgid, leader, fd)
            self._listen(fd, task)
            self._tasks[(leader, tid)] = task
            return task

    def alive(self, task: Task) -> bool:
        with self.lock:
            self._settle()
            return self._alive_locked(task)

    def _alive_locked(self, task: Task) -> bool:
        if not task.freed and task.fd >= 0 and task.fd in self._listening and _fired(task.fd):
            self._fd_fired(task.fd)      # before the watcher thread got to it
        return not task.freed and task.note is None and not self._suspect(task)

    def release(self, task: Task) -> None:
        with self.lock:
            task.holders -= 1
            if task.holders > 0:
                return
            if self._tasks.get((task.leader, task.tid)) is task:
                del self._tasks[(task.leader, task.tid)]
            self._drop(task.fd)
            task.fd = -1

    def _free(self, task: Task) -> None:
        if not task.freed:
            task.freed, task.note = True, None
            if task.fd >= 0:
                self._unlisten(task.fd)
            self._freed.append(task)

    def flush(self) -> None:
        """Tell the owners of tasks found freed (on the caller's thread)."""
        with self.lock:
            freed, self._freed = self._freed, []
        for task in freed:
            self._on_free(task)

    # -- the watcher thread ----------------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                self._serve_once()
            except Exception as exc:     # noqa: BLE001  the watch must outlive its own errors
                if self._on_error is not None:
                    self._on_error(f"task watch: {exc!r}")
                time.sleep(RECHECK_EVERY)   # the decisions still hold: each consult polls itself

    def _serve_once(self) -> None:
        with self.lock:
            deciding = any(n.fired_at is not None for n in self._notes)
        try:
            ready = self._ep.poll(RECHECK_EVERY if deciding else -1)
        except InterruptedError:
            return
        with self.lock:
            for fd, _ in ready:
                if fd == self._events:
                    self._drain()
                elif fd in self._listening:
                    self._fd_fired(fd)
            self._settle()
        self.flush()

    def _fd_fired(self, fd: int) -> None:
        owner = self._listening.get(fd)
        self._unlisten(fd)
        if isinstance(owner, ExecNote):
            owner.fired_at = owner.fired_at or time.monotonic()
            self._resolve(owner)
            return
        self._drain()           # the thread's own exec is noted before it runs
        note = next((n for n in self._notes if not owner.leader and n.tid == owner.tid), None)
        if note is None:
            self._free(owner)
        else:                   # its exec, maybe: the note decides
            owner.note = note
            self._resolve(note)

    # -- exec notes ----------------------------------------------------------------

    def _drain(self) -> None:
        raw = ffi.new("struct yr_exec_note *")
        while lib.yr_exec_take(raw) == 1:
            note = ExecNote(raw)
            self._held += len(note.fds())
            if note.lost:
                self._exec_done(note)
                continue
            if len(self._notes) >= MAX_NOTES:     # bounded: the oldest is decided now, closed
                oldest = self._notes[0]
                oldest.lost = True
                self._exec_done(oldest)
            self._notes.append(note)
            self._listen(note.thread_fd, note)

    def _settle(self) -> None:
        """Take the new notes; decide those whose thread is gone."""
        if self._events >= 0:
            self._drain()
        for note in list(self._notes):
            if note.fired_at is None and note.thread_fd in self._listening \
                    and _fired(note.thread_fd):
                self._unlisten(note.thread_fd)
                note.fired_at = time.monotonic()
            if note.fired_at is not None:
                self._resolve(note)

    def _suspect(self, task: Task) -> bool:
        """Is a leader's fate still being decided (a thread of its process
        exec'd and is gone, the old mm not yet)? Freed meanwhile: fail closed."""
        return task.leader and any(n.tgid == task.tgid and n.fired_at is not None
                                   for n in self._notes)

    def _resolve(self, note: ExecNote) -> None:
        if note.lost:
            self._exec_done(note)
        elif _fired(note.process_fd):
            self._forget(note)          # the process is gone: its tasks say so themselves
            waiting = self._tasks.get((False, note.tid))
            if waiting is not None and waiting.note is note:
                self._free(waiting)
        elif note.fired_at is None:
            return                      # the thread lives on: no exec (yet)
        elif note.exec_happened():
            self._exec_done(note)
        elif time.monotonic() - note.fired_at > RECHECK_FOR:
            self._forget(note)          # the thread ended without exec
            waiting = self._tasks.get((False, note.tid))
            if waiting is not None and waiting.note is note:
                self._free(waiting)

    def _exec_done(self, note: ExecNote) -> None:
        """de_thread: the old leader of note.tgid is freed with every other
        thread; the exec'ing thread, if watched, leads the process now."""
        successor = self._tasks.get((False, note.tid)) if note.tgid else None
        for task in list(self._tasks.values()):
            if task is not successor and (not note.tgid or task.tgid == note.tgid):
                self._free(task)        # no tgid: notes were lost, whose is unknown
        if successor is not None and not successor.freed and not note.lost:
            del self._tasks[(False, note.tid)]
            self._drop(successor.fd)
            successor.fd, note.process_fd = note.process_fd, -1   # the process, led by it
            successor.tid, successor.leader, successor.note = note.tgid, True, None
            self._listen(successor.fd, successor)
            self._tasks[(True, note.tgid)] = successor
        elif successor is not None:
            self._free(successor)       # cannot be followed: fail closed
        self._forget(note)

    def _forget(self, note: ExecNote) -> None:
        if note in self._notes:
            self._notes.remove(note)
        for fd in note.fds():
            self._drop(fd)
        note.thread_fd = note.process_fd = note.mm_fd = -1

    def notes(self) -> int:
        with self.lock:
            return len(self._notes)
