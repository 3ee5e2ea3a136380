"""Yama's ptrace_scope (security/yama/yama_lsm.c), per sandbox.

scope 0: classic ptrace permissions only (PR_SET_PTRACER still answers 0)
scope 1: attach only to descendants, to a process that named you with
         PR_SET_PTRACER, or with CAP_SYS_PTRACE
scope 2: attach only with CAP_SYS_PTRACE
scope 3: no attach at all, not even root
Denials are EPERM, as in the kernel."""
from __future__ import annotations

import errno

from ..chain import Deny
from ..requests import PTRACER_ANY
from . import Module, Setting


class Relation:
    """One PR_SET_PTRACER declaration: tracee process -> tracer task (or ANY)."""

    __slots__ = ("tracee", "tracer")

    def __init__(self, tracee, tracer):
        self.tracee = tracee
        self.tracer = tracer

    def alive(self) -> bool:
        """Dropped when either task is gone, as Yama's task_free does."""
        return self.tracee.alive() and (self.tracer == PTRACER_ANY or self.tracer.alive())


class Ptrace(Module):
    name = "ptrace"
    settings = {
        "scope": Setting(1, (0, 1, 2, 3), "kernel.yama.ptrace_scope: 0 classic, "
                         "1 descendants only, 2 CAP_SYS_PTRACE only, 3 no attach"),
    }

    def __init__(self, config):
        super().__init__(config)
        self.scope = self.config["scope"]
        self.relations: dict[int, Relation] = {}   # tracee tgid -> relation

    def hooks(self) -> set[str]:
        if self.scope == 0:
            return {"task_prctl"}
        return {"ptrace_access_check", "ptrace_traceme", "task_prctl"}

    # -- hooks --------------------------------------------------------------

    def ptrace_access_check(self, req):
        # EPERM for ptrace and process_vm_*; EACCES for an open of /proc/PID/mem
        # (the kernel's proc_mem_open), which the core routes here too.
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
        """Record PR_SET_PTRACER; a new declaration replaces the old one."""
        self._prune()
        if req.tracer is None:
            self.relations.pop(req.caller.tgid, None)
        else:
            self.relations[req.process.tgid] = Relation(req.process, req.tracer)
        return None

    # -- helpers ------------------------------------------------------------

    def _exception(self, req) -> bool:
        """Yama's ptracer_exception_found: a PR_SET_PTRACER declaration, or the
        caller already traces the target."""
        relation = self.relations.get(req.target_tgid)
        if relation is not None and not relation.alive():
            del self.relations[req.target_tgid]
            relation = None
        if relation is not None and (relation.tracer == PTRACER_ANY
                                     or req.caller_descends_from(relation.tracer.tgid)):
            return True
        return req.caller_is_tracer()

    def _prune(self) -> None:
        for tgid in [t for t, r in self.relations.items() if not r.alive()]:
            del self.relations[tgid]


MODULE = Ptrace
