"""Items written by a thread of their own, so that whoever hands one over
waits on the file, pipe or terminal it goes to only as long as it chooses.
Once the program runs it can hold a write of the supervisor's forever: a
terminal whose output it stopped (tcflow TCOOFF), a pipe it fills while its
reader waits, a FIFO planted in place of a file. The audit's stderr lines
and the journal's records go through one each."""
from __future__ import annotations

import collections
import os
import threading
import time


class Writer:
    """write(item) for each item put, in order, by one thread of the process
    that made the Writer. A process forked from it has no such thread: what
    it puts is written there and then. Past `most` items waiting, put()
    refuses (False): the caller counts what is lost."""

    def __init__(self, write, most: int, name: str):
        self._write = write
        self._most = most
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._items: collections.deque = collections.deque()
        self._queued = self._written = 0
        self._since = 0.0                   # time.monotonic() of the write under way, or 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item, wait: float = 0.0) -> bool:
        """Queued; with wait, until it is written, for at most that long, and
        not at all while a write has already taken longer (the stream takes
        nothing now)."""
        if os.getpid() != self._pid:
            self._write(item)
            return True
        with self._cond:
            if len(self._items) >= self._most or self._closed:
                return False
            self._items.append(item)
            self._queued += 1
            mine = self._queued
            self._cond.notify_all()
            if wait:
                self._wait_locked(lambda: self._written >= mine, wait, wait)
        return True

    def drain(self, timeout: float, stuck_after: float = float("inf")) -> bool:
        """Wait (at most timeout, or until a write has taken stuck_after)
        until everything put so far is written."""
        if os.getpid() != self._pid:
            return True
        with self._cond:
            return self._wait_locked(lambda: self._written >= self._queued, timeout,
                                     stuck_after)

    def close(self, timeout: float) -> None:
        """Drained (bounded), then the thread ends; put() refuses from here."""
        self.drain(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if os.getpid() == self._pid:
            self._thread.join(timeout)

    def _wait_locked(self, done, timeout: float, stuck_after: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            now = time.monotonic()
            if now >= deadline or (self._since and now - self._since > stuck_after):
                return False
            self._cond.wait(deadline - now)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
                self._since = time.monotonic()
            try:
                self._write(item)       # (as long as the stream makes it wait)
            except Exception:           # a lost line or record, never the sandbox
                pass
            with self._cond:
                self._since = 0.0
                self._written += 1
                self._cond.notify_all()
