"""Containment: nothing inside the sandbox signals, traces or acts on a process
outside it.

The kernel has no such rule: with containment off (the default, and what
--no-profile gives) the ptrace knob and the kernel's own checks decide for
targets inside and outside alike, and only yama-run's own processes are kept
out of reach (sandbox/guard.py). With it on:

  * every call that acts on another process by pid, or by pidfd, is refused
    when that process is outside the sandbox (not one of the supervisor's
    descendants): the kill family and file owners (SIGIO), ptrace attach and
    seize, process_vm_readv/writev, pidfd_getfd, prlimit64, setpriority,
    ioprio_set, sched_setaffinity/setscheduler/setparam/setattr,
    migrate_pages, move_pages, process_madvise, process_mrelease and
    perf_event_open; and, without Landlock to refuse them, the
    PTRACE_MODE_READ accesses that have no /proc path (a pidfd's
    namespaces, setns by pidfd, kcmp, get_robust_list). Each refusal is this module's, audited:
    "contain: denied kill of 4242 (sleep) by 1200 (sh): outside the sandbox";
  * /proc entries of outsiders are out of reach of the core's opens;
  * no cgroup file is opened for writing (cgroup.kill, cgroup.freeze,
    memory.max, cgroup.procs... act on processes outside): EACCES;
  * the program runs in a Landlock domain with the signal scope (ABI 6+):
    the kernel's own backstop for signals and ptrace-class access, whatever
    route a call takes.

Errnos: EPERM as the kernel's own refusals of these calls, EACCES for
perf_event_open (its permission check's)."""
from __future__ import annotations

from ..chain import Deny
from . import Module, Setting

# The LSM hooks (security/security.c names) of the calls containment judges.
HOOKS = ("task_kill", "task_prlimit", "task_setnice", "task_setioprio", "task_setscheduler",
         "task_movememory", "perf_event_open", "ptrace_access_check", "ptrace_read_access",
         "cgroup_write")

REASON = "outside the sandbox"
# cgroup.kill, cgroup.freeze, a limit, cgroup.procs: a cgroup file acts on
# every process of its cgroup, and which processes those are is known only
# at write() (a cgroup.procs write, a process moving): never inside alone
CGROUP_REASON = "a cgroup file acts on processes outside the sandbox"


class Contain(Module):
    name = "contain"
    settings = {
        "enabled": Setting(False, (False, True),
                           "nothing inside may signal, trace or act on a process outside "
                           "the sandbox (off: the kernel's rules alone)"),
    }

    def __init__(self, config):
        super().__init__(config)
        self.contained = self.config["enabled"]

    def hooks(self) -> set[str]:
        return set(HOOKS) if self.contained else set()

    def enforcement(self) -> str:
        if self.contained:
            return ("contain: on: nothing inside may signal, trace or act on a process "
                    "outside the sandbox")
        return ("contain: off: processes outside the sandbox are reached as the kernel "
                "allows (only yama-run's own are shielded)")

    def _judge(self, req):
        if req.target_outside():
            return Deny(req.deny_errno, REASON)
        return None

    task_kill = task_prlimit = task_setnice = task_setioprio = _judge
    task_setscheduler = task_movememory = perf_event_open = ptrace_access_check = _judge
    ptrace_read_access = _judge

    def cgroup_write(self, req):
        return Deny(req.default_errno, CGROUP_REASON)


MODULE = Contain
