"""Audit: one JSON object per line for each denial (or would-be denial in
permissive mode), and with -v a readable line on stderr."""
from __future__ import annotations

import errno
import json
import sys
import threading
import time


class Audit:
    def __init__(self, log_path: str | None = None, verbose: bool = False, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._log = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None
        self.denials = 0

    def close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def _write(self, record: dict) -> None:
        with self._lock:
            if self._log:
                self._log.write(json.dumps(record, sort_keys=True) + "\n")

    def say(self, text: str) -> None:
        """A readable line on stderr, only with -v."""
        if self.verbose:
            print(f"yama-run: {text}", file=self.stream, flush=True)

    def denial(self, module: str, hook: str, request, deny, permissive: bool) -> None:
        self.denials += 1
        if not self._log and not self.verbose:
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
        self.say(f"{module}: {verb} {request.describe()} by {caller.describe()}: {deny.reason}")

    def emulated(self, request) -> None:
        """A call the core performed for the caller because the kernel cannot
        (PR_SET_PTRACER here: no Yama): recorded, so that what a program was
        granted is as visible as what it was refused."""
        if not self._log and not self.verbose:
            return
        caller = request.caller
        self._write({"time": time.time(), "action": "emulated", "hook": request.hook,
                     "syscall": request.syscall, "pid": caller.tgid, "tid": caller.tid,
                     "comm": caller.comm, "operation": request.describe(),
                     **request.audit_fields()})
        self.say(f"emulated {request.describe()} by {caller.describe()}")

    def module_error(self, module: str, hook: str, request, trace: str) -> None:
        record = {"time": time.time(), "action": "module-error", "module": module,
                  "hook": hook, "traceback": trace}
        if request is not None:
            record.update(pid=request.caller.tgid, tid=request.caller.tid,
                          syscall=request.syscall)
        self._write(record)
        print(f"yama-run: {module}: error in {hook} (denied):\n{trace}",
              file=self.stream, flush=True)
