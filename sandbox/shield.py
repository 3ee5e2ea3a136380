"""The supervisor out of the sandbox's reach, and the sandbox's containment.

Containment is a choice (sandbox/modules/contain.py). When the sandbox is
contained, the program starts in a Landlock domain: no ptrace-class access
from inside (attach, process_vm_*, /proc/PID/mem and links, pidfd_getfd, any
PTRACE_MODE_READ check) reaches a process outside the domain, at any ptrace
scope, whatever path the kernel reads. From ABI 6 the domain has the signal
scope and no access rights handled, and no signal reaches outside either;
with ABI 2-5 it handles reparenting only, allowed everywhere (csrc/harden.c),
so mounts are refused inside, and signals are routed to the contain module.
The domain is the kernel's backstop: the calls themselves are routed and
refused by the contain module first, which says so. yama-run's own processes
are outside the domain too.

Not contained, there is no domain: the kernel's rules alone decide which
process reaches which, and the filter routes every call that could reach
yama-run's own processes (the kill family, file owners, every ptrace-class
access, and the calls that act on a process by pid) to the guard
(sandbox/guard.py), which refuses only those aimed at them. Those calls that
Landlock does not cover (prlimit, setpriority, sched_*, ioprio_set...) are
routed to the guard in both modes. The supervisor is also made non-dumpable."""
import posix

from ._yama import lib
from .bareos import getenv

# What the kernel refuses from inside the program's domain, by itself.
KERNEL_PTRACE = 1      # every ptrace-class access to a process outside
KERNEL_SIGNALS = 2     # every signal to one (the signal scope)
KERNEL_BOTH = KERNEL_PTRACE | KERNEL_SIGNALS


def tables_shared_by_threads_only(hooks: set[str], kernel: int) -> bool:
    """Does the filter for hooks keep routes.py's SHARED_TABLE_GUARDS (no
    process cloned with another's descriptor table)? Contained from the
    start without Landlock's domain: the sandboxes whose setns needs the
    table check (one contained later, live, has them not)."""
    return "ptrace_read_access" in hooks and not kernel & KERNEL_PTRACE

LANDLOCK_REFER_ABI = 2               # the first a domain can be made harmless with
LANDLOCK_SIGNAL_SCOPE_ABI = 6

# What the hooks alone cannot promise (docs/containment.md, "Residual windows"):
# the kernel reads the path of a call checked then continued once more, after
# the check, and a second thread may have rewritten it by then. A program in
# a user namespace of yama-run's own is kept from processes outside by the
# kernel's own rule whatever it names (the capability check of commoncap).
RACED = ("without a user namespace of its own, a call checked then continued (chdir, exec, "
         "an O_PATH open, an AF_UNIX address) can be raced past the check to a process "
         "outside (docs/containment.md)")


class Shield:
    """Which protection is in force; decided once, before the spawn."""

    def __init__(self, chain=None):
        self.abi = lib.yr_landlock_abi()
        modules = chain.modules if chain is not None else ()
        self.contained = any(getattr(module, "contained", False) for module in modules)
        self.permissive = chain is not None and chain.permissive
        forced_off = getenv("YAMA_RUN_NO_LANDLOCK") == "1"   # tests the hooks alone
        self.usable_abi = min(self.abi, _abi_cap())
        wanted = self.contained and not self.permissive and not forced_off
        usable = self.usable_abi if wanted else 0
        self.domain = (lib.YR_DOMAIN_NONE if usable < LANDLOCK_REFER_ABI else
                       lib.YR_DOMAIN_PTRACE if usable < LANDLOCK_SIGNAL_SCOPE_ABI else
                       lib.YR_DOMAIN_SCOPED)
        # the kernel refuses ptrace-class access out of any domain; signals
        # out of a scoped one only
        self.landlock = self.domain != lib.YR_DOMAIN_NONE
        self.signal_scope = self.domain == lib.YR_DOMAIN_SCOPED
        self.nondumpable = False

    @property
    def kernel(self) -> int:
        """What the kernel refuses itself from inside (KERNEL_*), so that the
        filter need not route it (sandbox/routes.py)."""
        return ((KERNEL_PTRACE if self.landlock else 0)
                | (KERNEL_SIGNALS if self.signal_scope else 0))

    def harden_supervisor(self) -> None:
        """After the spawn (the program inherits neither): non-dumpable, and
        every descriptor the hard limit allows: the program decides how many
        the supervisor holds (pidfds of PR_SET_PTRACER declarations, bounded
        by sandbox/taskwatch.py within what is raised here)."""
        self.nondumpable = lib.yr_set_nondumpable() == 0
        lib.yr_raise_nofile()       # (it fails only as setrlimit may: kept as it is)

    def describe(self) -> str:
        dumpable = ", non-dumpable" if self.nondumpable else ", dumpable (prctl failed)"
        if self.signal_scope:
            return (f"contained: nothing inside reaches a process outside; calls routed "
                    f"and refused by contain, landlock (ABI {self.abi}: signal scope, "
                    f"ptrace domain) the kernel's backstop; supervisor shielded{dumpable}")
        if self.landlock:
            return (f"contained: nothing inside reaches a process outside; calls routed "
                    f"and refused by contain, landlock (ABI {self.usable_abi}: "
                    f"ptrace domain; no signal scope: the kill family routed) the kernel's "
                    f"backstop; mounts refused inside; supervisor shielded{dumpable}")
        if not self.contained:
            return (f"not contained: processes outside the sandbox are reached as the "
                    f"kernel allows; supervisor shielded by seccomp hooks (kill family, "
                    f"file owners, ptrace access and calls on a process by pid "
                    f"routed){dumpable}")
        if self.permissive:
            why = "landlock not used: --permissive"
        elif getenv("YAMA_RUN_NO_LANDLOCK") == "1":
            why = "landlock not used: YAMA_RUN_NO_LANDLOCK=1"
        elif self.abi > 0:
            why = f"landlock ABI {self.usable_abi} has no harmless domain"
        else:
            why = f"no landlock: {posix.strerror(-self.abi)}"
        return (f"contained by seccomp hooks alone ({why}: kill family, file owners, "
                f"ptrace access and calls on a process by pid routed); supervisor "
                f"shielded{dumpable}; {RACED}")


def _abi_cap() -> int:
    """YAMA_RUN_LANDLOCK_ABI=N: use no Landlock feature after ABI N (the tests
    try an older kernel's domain on this one)."""
    value = getenv("YAMA_RUN_LANDLOCK_ABI")
    return int(value) if value and value.isdigit() else 1 << 30
