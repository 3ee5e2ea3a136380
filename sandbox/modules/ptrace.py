"""Yama's ptrace_scope (security/yama/yama_lsm.c), per sandbox.

scope 0: classic ptrace permissions only (PR_SET_PTRACER still answers 0)
scope 1: attach only to descendants, to a process that named you with
         PR_SET_PTRACER, or with CAP_SYS_PTRACE
scope 2: attach only with CAP_SYS_PTRACE
scope 3: no attach at all, not even root
Denials are EPERM, as in the kernel."""
from __future__ import annotations

import errno
import threading

from ..chain import Deny
from ..requests import PTRACER_ANY
from . import Module, Setting


class Relation:
    """One PR_SET_PTRACER declaration: tracee (the declaring process's group
    leader task) -> tracer task (a thread or a leader), or ANY. Both are
    tasks pinned by the core (sandbox/taskwatch.py), held while recorded."""

    __slots__ = ("tracee", "tracer")

    def __init__(self, tracee, tracer):
        self.tracee = tracee
        self.tracer = tracer

    def tasks(self):
        return [t for t in (self.tracee, self.tracer) if t != PTRACER_ANY]

    def alive(self) -> bool:
        """yama_task_free drops a relation when either task is freed."""
        return all(task.alive() for task in self.tasks())

    def release(self) -> None:
        for task in self.tasks():
            task.release()


class Ptrace(Module):
    name = "ptrace"
    settings = {
        "scope": Setting(1, (0, 1, 2, 3), "kernel.yama.ptrace_scope: 0 classic, "
                         "1 descendants only, 2 CAP_SYS_PTRACE only, 3 no attach"),
    }

    def __init__(self, config):
        super().__init__(config)
        self.scope = self.config["scope"]
        # tracee tgid -> relation: one per process, as yama_ptracer_add keeps
        self.relations: dict[int, Relation] = {}
        self._by_tracer: dict[object, set[int]] = {}   # tracer task -> its tracees' tgids
        self._lock = threading.Lock()    # hooks come from the notification and task threads

    def hooks(self) -> set[str]:
        if self.scope == 0:
            return {"task_prctl"}
        # ptrace_proc_open: opens are routed, so that /proc/PID/mem is asked too
        hooks = {"ptrace_access_check", "ptrace_proc_open", "ptrace_traceme", "task_prctl"}
        if self.scope == 1:              # relations are only consulted at scope 1
            hooks.add("task_free")
        return hooks

    def adopt(self, old) -> None:
        """A live change of scope keeps the PR_SET_PTRACER declarations, as
        the kernel keeps its relations whatever ptrace_scope is written. Both
        instances share them (and their lock) while a walk under the old one
        finishes."""
        self._lock = old._lock
        with self._lock:
            self.relations, self._by_tracer = old.relations, old._by_tracer

    # -- hooks --------------------------------------------------------------

    def ptrace_access_check(self, req):
        # EPERM for ptrace and process_vm_*; EACCES for an open of /proc/PID/mem
        # (the kernel's proc_mem_open) and perf_event_open, which the core routes here too.
        err = req.deny_errno
        if self.scope >= 3:
            return Deny(err, "ptrace_scope 3: attaching is disabled")
        if self.scope == 2:
            if req.caller_capable():
                return None
            return Deny(err, "ptrace_scope 2: needs CAP_SYS_PTRACE")
        if self.scope == 1:
            if not req.target_alive():
                return Deny(err, "target is exiting")
            # Yama ORs these; ask the cheapest first (capget is already in hand,
            # the descendant walk and the tracer look-up read /proc).
            if req.caller_capable() or req.target_is_descendant() or self._exception(req):
                return None
            return Deny(err, "not a descendant")
        return None

    def ptrace_traceme(self, req):
        if self.scope >= 3:
            return Deny(errno.EPERM, "ptrace_scope 3: attaching is disabled")
        if self.scope == 2 and not req.parent_capable():
            return Deny(errno.EPERM, "ptrace_scope 2: the parent lacks CAP_SYS_PTRACE")
        return None

    def task_prctl(self, req):
        """Record PR_SET_PTRACER; a new declaration replaces the old one and
        releases what it held (yama_ptracer_add, yama_ptracer_del)."""
        with self._lock:
            old = self._drop(req.caller.tgid)
            if req.tracer is not None:
                relation = Relation(req.process, req.tracer)
                for task in relation.tasks():
                    task.hold()
                self.relations[req.caller.tgid] = relation
                if req.tracer != PTRACER_ANY:
                    self._by_tracer.setdefault(req.tracer, set()).add(req.caller.tgid)
        if old is not None:
            old.release()
        return None

    def task_free(self, req):
        """yama_task_free: relations whose tracee or tracer is that task go
        (found through the indexes: no walk over every relation)."""
        with self._lock:
            tracees = set(self._by_tracer.get(req.task, ()))
            own = self.relations.get(req.task.tgid)
            if own is not None and own.tracee is req.task:
                tracees.add(req.task.tgid)
            dropped = [self._drop(tgid) for tgid in tracees]
        for relation in dropped:
            if relation is not None:
                relation.release()
        return None

    def _drop(self, tgid: int):
        """Unrecord tgid's relation (the lock held); the caller releases it."""
        relation = self.relations.pop(tgid, None)
        if relation is not None and relation.tracer != PTRACER_ANY:
            tracees = self._by_tracer.get(relation.tracer)
            if tracees is not None:
                tracees.discard(tgid)
                if not tracees:
                    del self._by_tracer[relation.tracer]
        return relation

    # -- helpers ------------------------------------------------------------

    def _exception(self, req) -> bool:
        """Yama's ptracer_exception_found: a PR_SET_PTRACER declaration, or the
        caller already traces the target."""
        with self._lock:
            relation = self.relations.get(req.target_tgid)
        if relation is not None and relation.alive() and (
                relation.tracer == PTRACER_ANY
                or req.caller_descends_from(relation.tracer.tgid)):
            return True
        return req.caller_is_tracer()


MODULE = Ptrace
