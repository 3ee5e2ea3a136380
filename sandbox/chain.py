"""The chain: modules in profile order, walked for each hook; first Deny wins."""
from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class Deny:
    """A module's objection: the errno the caller gets and why."""

    errno: int
    reason: str


class Chain:
    def __init__(self, modules, audit, permissive: bool = False):
        self.modules = list(modules)
        self.audit = audit
        self.permissive = permissive
        # Hooks run in several threads (the receivers, the task watch):
        # one module is asked at a time, so the state modules keep (the
        # ptrace module's relations) needs no lock of its own. Only the
        # modules' own code runs under it: never a read of a caller's
        # memory or a filesystem operation for it (those may stall,
        # docs/stall.md), nor a write to the terminal.
        self._lock = threading.RLock()
        self._by_hook: dict[str, list] = {}
        for module in self.modules:
            for hook in module.hooks():
                self._by_hook.setdefault(hook, []).append(module)

    def hooks(self) -> set[str]:
        return set(self._by_hook)

    def walk(self, hook: str, request) -> Deny | None:
        """Ask every module that hooks `hook`. Returns the denial to apply, if any.

        In permissive mode every module is asked and every objection recorded,
        and nothing is denied."""
        for module in self._by_hook.get(hook, ()):
            verdict = self._ask(module, hook, request)
            if verdict is None:
                continue
            self.audit.denial(module.name, hook, request, verdict, self.permissive)
            if not self.permissive:
                return verdict
        return None

    def _ask(self, module, hook: str, request) -> Deny | None:
        try:
            with self._lock:
                verdict = getattr(module, hook)(request)
        except Exception as exc:  # fail closed: a broken module denies
            self.audit.module_error(module.name, hook, request, traceback.format_exc())
            return Deny(request.default_errno, f"module error: {exc!r}")
        if verdict is not None and not isinstance(verdict, Deny):
            self.audit.module_error(module.name, hook, request,
                                    f"hook returned {verdict!r}, not None or Deny")
            return Deny(request.default_errno, "module error: bad verdict")
        return verdict
