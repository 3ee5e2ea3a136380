"""Refuse prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY).

Under ptrace scope 1 a process may name one process that may attach to it;
PR_SET_PTRACER_ANY names every process of the user, which undoes scope 1 for
it. This module refuses that declaration (EPERM) unless `allow = true`.
Put it before `ptrace` in the chain, so a refused declaration is never
recorded by the ptrace module."""
from __future__ import annotations

import errno

from sandbox.modules import Deny, Module, Setting
from sandbox.requests import PTRACER_ANY


class NoPtracerAny(Module):
    name = "no_ptracer_any"
    settings = {"allow": Setting(False, (False, True), "let PR_SET_PTRACER_ANY through")}

    def hooks(self) -> set[str]:
        return set() if self.config["allow"] else {"task_prctl"}

    def task_prctl(self, req):
        if req.tracer == PTRACER_ANY:
            return Deny(errno.EPERM, "PR_SET_PTRACER_ANY would let any process attach")
        return None
