/* The supervisor out of the sandbox's reach, and the ABIs the kernel refuses.
 *
 * Kernel-enforced first: the child enters a Landlock domain that handles no
 * filesystem or network access, only the signal scope (ABI 6). A task in a
 * domain can then neither signal nor ptrace-access (attach, process_vm_*,
 * /proc/PID/mem, pidfd_getfd, any PTRACE_MODE_READ check) a task outside it,
 * and the supervisor is outside. Without ABI 6 the supervisor routes the kill
 * family through the filter instead (sandbox/shield.py). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "yama.h"

/* Debian 12's uapi header predates the scoped field (Linux 6.12). */
struct yr_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
#define YR_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define YR_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#define YR_X32_SYSCALL_BIT 0x40000000

int yr_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                       YR_LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? -errno : (int)abi;
}

/* In the child, after no_new_privs: a domain with the signal scope and no
 * access rights handled, so files and sockets are untouched. */
int yr_landlock_shield_self(void)
{
    struct yr_landlock_ruleset_attr attr = { .scoped = YR_LANDLOCK_SCOPE_SIGNAL };
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (fd < 0)
        return -errno;
    long rc = syscall(SYS_landlock_restrict_self, fd, 0);
    int e = errno;
    close(fd);
    return rc < 0 ? -e : 0;
}

/* A non-dumpable supervisor: its /proc files belong to root and only
 * CAP_SYS_PTRACE in its user namespace passes the kernel's dumpable check. */
int yr_set_nondumpable(void)
{
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ? -errno : 0;
}

/* Does this kernel run x32 syscalls at all? (CONFIG_X86_X32_ABI, and the
 * x32 command-line switch.) getpid through the x32 entry tells. */
int yr_x32_enabled(void)
{
    static int known = -1;
    if (known < 0)
        known = syscall(YR_X32_SYSCALL_BIT | SYS_getpid) >= 0;
    return known;
}

/* 1 when the kernel would refuse this ABI itself: the supervisor answers as
 * the kernel would (ENOSYS) rather than emulate a call that cannot exist. */
int yr_abi_refused(uint32_t arch, int32_t nr)
{
    return arch == 0xC000003E && (nr & YR_X32_SYSCALL_BIT) && !yr_x32_enabled();
}

/* pidfd_send_signal performed by the supervisor on its own copy of the
 * caller's pidfd, with the caller's credentials (so the kernel's permission
 * check is the caller's); info_addr, if not 0, is read from the caller once. */
int yr_pidfd_signal_as(const struct yr_creds *c, pid_t tid, int pidfd, int sig,
                       uint64_t info_addr, uint32_t flags)
{
    siginfo_t info, *pinfo = NULL;
    if (info_addr) {
        struct iovec local = { &info, sizeof(info) };
        struct iovec remote = { (void *)(uintptr_t)info_addr, sizeof(info) };
        if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(info))
            return -EFAULT;
        pinfo = &info;
    }
    struct yr_creds_saved saved;
    if (yr_creds_enter(c, &saved) < 0)
        return -errno;
    long rc = syscall(SYS_pidfd_send_signal, pidfd, sig, pinfo, flags);
    int e = errno;
    yr_creds_leave(&saved);
    return rc < 0 ? -e : 0;
}

/* 1: tid lives in the supervisor's pid namespace (its pid arguments are our
 * numbers), 0: in another one, -1: gone. A task never changes its own pid
 * namespace, but a tid can be reused, so this is asked per call. */
int yr_in_our_pidns(pid_t tid)
{
    static struct stat ours;
    static int have_ours;
    if (!have_ours) {
        if (stat("/proc/self/ns/pid", &ours) < 0)
            return -1;
        have_ours = 1;
    }
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)tid);
    if (stat(path, &st) < 0)
        return -1;
    return st.st_ino == ours.st_ino && st.st_dev == ours.st_dev;
}

/* A sandboxed child that called PTRACE_TRACEME made us its tracer: let it go
 * (with the signal it stopped for), as if nobody traced it. The exec SIGTRAP
 * that TRACEME asks for is dropped: nobody here wants it. */
int yr_ptrace_release(pid_t pid, int sig)
{
    long rc = syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, pid, 0, sig == SIGTRAP ? 0 : sig);
    return rc < 0 ? -errno : 0;
}
