/* The supervisor out of the sandbox's reach, and the ABIs the kernel refuses.
 *
 * Kernel-enforced first: the child enters a Landlock domain. A task in any
 * domain can no longer ptrace-access (attach, process_vm_*, /proc/PID/mem,
 * pidfd_getfd, /proc/PID links, any PTRACE_MODE_READ check) a task outside
 * it, and the supervisor is outside. From ABI 6 the domain handles no file or
 * network access, only the signal scope: signals out of it are dropped too.
 * Before (ABI 2-5) a domain must handle some file access: it handles
 * reparenting (a link or rename into another directory) and allows it under
 * "/", so nothing of the program's files changes but mounts, which the kernel
 * refuses in any domain that handles file access; signals are then routed
 * through the filter instead (sandbox/shield.py). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "engine.h"
#include "rawsys.h"
#include "yama.h"

/* Debian 12's uapi header predates the scoped field (Linux 6.12). */
struct yr_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
struct yr_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
#define YR_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define YR_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#define YR_LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#define YR_LANDLOCK_RULE_PATH_BENEATH 1
#define YR_X32_SYSCALL_BIT 0x40000000

int yr_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                       YR_LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? -errno : (int)abi;
}

/* Reparenting allowed beneath our root: the ruleset then refuses nothing a
 * program does with its files. */
static long allow_refer_beneath_root(int ruleset)
{
    long root = yr_raw4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (root < 0)
        return root;
    struct yr_landlock_path_beneath_attr rule = {
        .allowed_access = YR_LANDLOCK_ACCESS_FS_REFER, .parent_fd = (int32_t)root };
    long rc = yr_raw4(SYS_landlock_add_rule, ruleset, YR_LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    yr_raw1(SYS_close, root);
    return rc < 0 ? rc : 0;
}

/* In the spawn's child, after no_new_privs: the domain (YR_DOMAIN_*). Raw
 * calls only: the child may share the supervisor's memory (rawsys.h). A
 * larger attribute than an older kernel knows is accepted while its tail is
 * zero. */
int yr_landlock_shield_self(int32_t domain)
{
    struct yr_landlock_ruleset_attr attr = { 0 };
    if (domain == YR_DOMAIN_SCOPED)
        attr.scoped = YR_LANDLOCK_SCOPE_SIGNAL;
    else
        attr.handled_access_fs = YR_LANDLOCK_ACCESS_FS_REFER;
    long fd = yr_raw3(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (fd < 0)
        return (int)fd;
    long rc = domain == YR_DOMAIN_SCOPED ? 0 : allow_refer_beneath_root((int)fd);
    if (rc == 0)
        rc = yr_raw2(SYS_landlock_restrict_self, fd, 0);
    yr_raw1(SYS_close, fd);
    return (int)(rc < 0 ? rc : 0);
}

/* A non-dumpable supervisor: its /proc files belong to root and only
 * CAP_SYS_PTRACE in its user namespace passes the kernel's dumpable check. */
int yr_set_nondumpable(void)
{
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ? -errno : 0;
}

/* Every descriptor the hard limit allows (sandbox/shield.py says why). */
int yr_raise_nofile(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        return -errno;
    if (limit.rlim_cur == limit.rlim_max)
        return 0;
    limit.rlim_cur = limit.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &limit) < 0 ? -errno : 0;
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
 * check is the caller's). The siginfo, if any (NULL: none), is the
 * supervisor's copy: read once from the caller, its own while it still
 * waited after the read (sysargs.read_caller), or an i386 one converted. */
int yr_pidfd_signal_as(const struct yr_creds *c, int pidfd, int sig, const void *info,
                       uint32_t flags)
{
    const siginfo_t *pinfo = info;
    struct yr_creds_saved saved;
    if (yr_creds_enter(c, &saved) < 0)
        return -errno;
    long rc = syscall(SYS_pidfd_send_signal, pidfd, sig, pinfo, flags);
    int e = errno;
    yr_creds_leave(&saved);
    return rc < 0 ? -e : 0;
}

/* 1: tid lives in the supervisor's pid namespace (its pid arguments are our
 * numbers), 0: in another one, -1: gone.
 *
 * A task never changes its own pid namespace (setns and unshare change only
 * its children's), so the answer is kept per task, with a pidfd of it. The
 * pidfd is bound to that task, not to the number: a signal 0 through it
 * answers ESRCH once the task is gone, and then the number is looked at
 * again (a later task with the same tid may live elsewhere). A kept answer
 * is used only after that test, made on every call. */
#define PIDNS_CACHE 64
static struct { pid_t tid; int pidfd, ours; } pidns_cache[PIDNS_CACHE];
static pthread_mutex_t pidns_lock = PTHREAD_MUTEX_INITIALIZER;

static int pidns_lookup(pid_t tid)
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

int yr_pidfd_alive(int pidfd)
{
    return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno == EPERM;
}

int yr_in_our_pidns(pid_t tid)
{
    pthread_mutex_lock(&pidns_lock);
    int slot = (int)((unsigned)tid % PIDNS_CACHE), rc = -1;
    if (pidns_cache[slot].tid == tid && yr_pidfd_alive(pidns_cache[slot].pidfd)) {
        rc = pidns_cache[slot].ours;
    } else {
        if (pidns_cache[slot].tid)
            close(pidns_cache[slot].pidfd);
        pidns_cache[slot].tid = 0;
        /* The pidfd first: the answer read after it is that very task's. */
        int pidfd = (int)syscall(SYS_pidfd_open, tid, O_EXCL /* PIDFD_THREAD */);
        if (pidfd < 0 && errno == EINVAL)
            rc = pidns_lookup(tid);        /* before 6.9: no thread pidfd, nothing kept */
        else
            rc = pidfd < 0 ? -1 : pidns_lookup(tid);
        if (rc >= 0 && yr_pidfd_alive(pidfd)) {
            pidns_cache[slot].tid = tid;
            pidns_cache[slot].pidfd = pidfd;
            pidns_cache[slot].ours = rc;
        } else if (pidfd >= 0) {
            close(pidfd);
        }
    }
    pthread_mutex_unlock(&pidns_lock);
    return rc;
}

/* The init of tid's pid namespace (its active one, where kill(-1) and
 * PRIO_USER look), as a process of ours: > 0, or -errno (ENOTTY before Linux
 * 6.9, which has no NS_GET_TGID_FROM_PIDNS). Read through the namespace
 * itself, so the answer is that namespace's whoever holds the number tid
 * now; a caller gone meanwhile has its call's answer refused anyway. */
#define YR_NS_GET_TGID_FROM_PIDNS _IOR(0xb7, 0x7, int)
int yr_pidns_init(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = ioctl(fd, YR_NS_GET_TGID_FROM_PIDNS, 1);
    int err = rc < 0 ? errno : ESRCH;            /* 0: not a process of ours */
    close(fd);
    return rc > 0 ? rc : -err;
}

/* A sandboxed child that called PTRACE_TRACEME made us its tracer: let it go
 * (with the signal it stopped for), as if nobody traced it. The exec SIGTRAP
 * that TRACEME asks for is dropped: nobody here wants it. */
int yr_ptrace_release(pid_t pid, int sig)
{
    long rc = syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, pid, 0, sig == SIGTRAP ? 0 : sig);
    return rc < 0 ? -errno : 0;
}

/* process_vm_readv/writev: the errors the kernel finds before it looks at
 * the target (flags, then the local iovecs, then an empty transfer, which
 * returns 0 whatever the pid, then the remote iovecs, and no remote page:
 * 0 again). 1: go on to the
 * target; 0 or -errno: the answer, given by the supervisor without letting
 * the call through (the iovecs are the caller's memory, read once). */
#define YR_UIO_MAXIOV 1024
#define YR_USER_MAX 0x7ffffffff000ULL

/* The kernel copies the iovecs one by one, refusing a negative length as it
 * meets it (EINVAL) and a fault where the array stops being readable
 * (EFAULT); only then does it check the local ranges (access_ok: EFAULT). */
static int read_iovecs(pid_t tid, uint64_t addr, uint64_t count, int compat,
                       uint64_t *total, int check_range)
{
    if (count > YR_UIO_MAXIOV)
        return -EINVAL;
    size_t each = compat ? 8 : 16;
    unsigned char raw[YR_UIO_MAXIOV * 16];
    ssize_t got = 0;
    if (count) {
        struct iovec local = { raw, count * each };
        struct iovec remote = { (void *)(uintptr_t)addr, count * each };
        got = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        if (got < 0 && errno != EFAULT)
            return 1;           /* cannot tell: the kernel will (see below) */
        if (got < 0)
            got = 0;
    }
    uint64_t base[YR_UIO_MAXIOV], len[YR_UIO_MAXIOV];
    *total = 0;
    for (uint64_t i = 0; i < count; i++) {
        if ((uint64_t)got < (i + 1) * each)
            return -EFAULT;
        if (compat) {
            uint32_t v[2];
            memcpy(v, raw + i * 8, 8);
            base[i] = v[0];
            len[i] = (uint64_t)(int64_t)(int32_t)v[1];
        } else {
            memcpy(&base[i], raw + i * 16, 8);
            memcpy(&len[i], raw + i * 16 + 8, 8);
        }
        if ((int64_t)len[i] < 0)
            return -EINVAL;
    }
    for (uint64_t i = 0; i < count; i++) {
        if (check_range && len[i] && (base[i] + len[i] < base[i] ||
                                      base[i] + len[i] > YR_USER_MAX))
            return -EFAULT;
        *total += len[i];
    }
    return 0;
}

int yr_pvm_precheck(const struct yr_event *ev)
{
    int compat = ev->arch == 0x40000003 || (ev->nr & YR_X32_SYSCALL_BIT);
    uint64_t local_total, remote_total;
    if (ev->args[5] != 0)
        return -EINVAL;
    /* Where our own read fails for another reason (1), the call goes on to
     * the target's checks and the kernel validates the iovecs itself. */
    int rc = read_iovecs(ev->tid, ev->args[1], ev->args[2], compat, &local_total, 1);
    if (rc != 0)
        return rc;
    if (local_total == 0)
        return 0;
    rc = read_iovecs(ev->tid, ev->args[3], ev->args[4], compat, &remote_total, 0);
    if (rc != 0)
        return rc;
    return remote_total == 0 ? 0 : 1;   /* no remote page: 0, whatever the pid */
}

/* Bytes of the caller's memory, read once. 0 or -EFAULT. */
int yr_read_mem(pid_t tid, uint64_t addr, void *out, size_t size)
{
    struct iovec local = { out, size };
    struct iovec remote = { (void *)(uintptr_t)addr, size };
    return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)size ? 0 : -EFAULT;
}

/* Bytes written into the caller's memory (a value the kernel writes back on
 * an error it gives, answered by us), only right after the caller is seen
 * waiting in call id: its number is its own until it is killed and reaped,
 * and a decision in Python may have taken long enough for that and for
 * another task (a new thread of ours) to take the number (caller.c). 0 or
 * -EFAULT. */
int yr_write_mem(struct yr_ctx *ctx, uint64_t id, pid_t tid, uint64_t addr, const void *in,
                 size_t size)
{
    struct iovec local = { (void *)in, size };
    struct iovec remote = { (void *)(uintptr_t)addr, size };
    if (!yr_id_valid(ctx, id))
        return -EFAULT;
    return process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)size ? 0 : -EFAULT;
}

/* F_SETOWN, F_SETOWN_EX, FIOSETOWN or SIOCSPGRP performed by the supervisor
 * on its copy of the caller's descriptor, with the caller's credentials (the
 * kernel keeps them with the owner and checks them when it sends the signal).
 * The value was read once from the caller; have_value 0: it could not be
 * read, and the kernel gives its own answer for a bad pointer (EFAULT, or
 * ENOTTY first). pin: a pidfd of the task the pid named when it was judged,
 * or -1 (none, a group, the caller's own).
 *
 * The kernel looks the pid up by number here. A task holds its number until
 * it is reaped, so while the pin lives the number is the pin's: it is tested
 * alive before the call (gone: ESRCH, nothing set) and after it (gone
 * meanwhile: the owner found may be a task that took the number since, a
 * thread of ours among them; the owner is reset to none, and ESRCH).
 * Between the two tests the owner is a later task only if the pin was
 * reaped and its number taken again in the microseconds between the first
 * test and the call; it is reset as fast. */
int yr_setown_as(const struct yr_creds *c, int fd, uint32_t cmd, int32_t type, int32_t pid,
                 int have_value, int pin)
{
    struct { int32_t type, pid; } owner = { type, pid };
    int32_t value = pid;
    void *bad = (void *)(uintptr_t)8;   /* unmapped: the kernel's EFAULT */
    struct yr_creds_saved saved;
    if (yr_creds_enter(c, &saved) < 0)
        return -errno;
    long rc;
    int e;
    if (pin >= 0 && !yr_pidfd_alive(pin)) {
        rc = -1;
        e = ESRCH;
    } else {
        if (cmd == F_SETOWN)
            rc = syscall(SYS_fcntl, fd, cmd, (long)pid);
        else if (cmd == F_SETOWN_EX)
            rc = syscall(SYS_fcntl, fd, cmd, have_value ? (void *)&owner : bad);
        else
            rc = syscall(SYS_ioctl, fd, cmd, have_value ? (void *)&value : bad);
        e = errno;
        if (rc >= 0 && pin >= 0 && !yr_pidfd_alive(pin)) {
            syscall(SYS_fcntl, fd, F_SETOWN, 0L);
            rc = -1;
            e = ESRCH;
        }
    }
    yr_creds_leave(&saved);
    return rc < 0 ? -e : (int)rc;
}

/* The process group of the process numbered pid, or -errno (yr_stat_ids):
 * taken for "not a member", an unreadable stat let a group signal answer 0
 * with members never signalled. */
static pid_t pgrp_of(pid_t pid)
{
    struct yr_stat_ids ids;
    int rc = yr_stat_ids(pid, &ids);
    return rc < 0 ? rc : ids.pgrp;
}

/* A pidfd on the process numbered pid if it is a member of pgrp; -ESRCH if
 * it is not (or is gone); another -errno when that could not be told. The
 * number is pinned first and the group read after: while the pin is alive
 * (seen after the read) the number cannot have been another task's at the
 * read, so the group read is the pinned process's. A number taken again
 * meanwhile (by a thread of ours, say) fails the pin (EINVAL: not a
 * leader), names another group, or leaves a dead pin: never listed. */
static int pin_member(pid_t pid, pid_t pgrp)
{
    int pin = syscall(SYS_pidfd_open, pid, 0);
    if (pin < 0)
        return errno == ESRCH || errno == EINVAL ? -ESRCH : -errno;
    pid_t now = pgrp_of(pid);
    if (now == pgrp && yr_pidfd_alive(pin))
        return pin;
    close(pin);
    return now < 0 ? now : -ESRCH;
}

/* What yr_pin_group looks for, and what it pinned so far. */
struct group_pins {
    pid_t pgrp;
    int32_t *pids, *pins;
    int max, n;
};

/* pin_member after a first look without a pin (most processes are not
 * members); YR_WALK_STOP once max are pinned. */
static int pin_entry(pid_t pid, void *arg)
{
    struct group_pins *g = arg;
    pid_t now = pgrp_of(pid);
    if (now != g->pgrp)
        return now < 0 ? now : 0;
    int pin = pin_member(pid, g->pgrp);
    if (pin < 0)
        return pin;
    g->pids[g->n] = pid;
    g->pins[g->n++] = pin;
    return g->n == g->max ? YR_WALK_STOP : 0;
}

/* The next processes of the group pgrp, each pinned, listed on from procdir
 * (a descriptor of /proc whose place in the listing is kept from call to
 * call, yr_proc_walk: one walk of /proc however many calls it takes, and at
 * most max pins held by the caller at a time): pids[i] and pins[i], the
 * caller's to close. Returns their number, 0 once the listing is done, or
 * -errno with nothing left open: a process that could not be read or
 * pinned (out of descriptors) is never taken for one outside the group.
 * What kill(-pgrp) would reach, as guard.py's walks: not atomic, a process
 * that joins meanwhile is missed. */
int yr_pin_group(int procdir, pid_t pgrp, int32_t *pids, int32_t *pins, int max)
{
    struct group_pins g = { .pgrp = pgrp, .pids = pids, .pins = pins, .max = max };
    if (max <= 0)
        return -EINVAL;
    int rc = yr_proc_walk(procdir, pin_entry, &g);
    if (rc < 0) {
        while (g.n > 0)
            close(pins[--g.n]);
        return rc;
    }
    return g.n;
}

/* Would c pass the kernel's own test of a signal to the task numbered pid
 * (kill_ok_by_cred: its euid or uid is the target's uid or suid, or it
 * holds CAP_KILL)? 1, 0, or -errno (-ESRCH: gone). */
int yr_kill_uid_check(const struct yr_creds *c, pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (yr_read_text(path, buf, sizeof(buf)) < 0)
        return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
    const char *line = strstr(buf, "\nUid:");
    unsigned uid, euid, suid;
    if (!line || sscanf(line + 5, "%u %u %u", &uid, &euid, &suid) != 3)
        return -EIO;
    return c->euid == uid || c->euid == suid || c->ruid == uid || c->ruid == suid ||
           (c->cap_effective >> CAP_KILL & 1);
}

/* SIGCONT through pin with our own authority, where the caller's was
 * refused: the kernel lets any process continue one of its own session
 * (check_kill_permission), judged on the sender's session, and a thread of
 * ours is in yama-run's, never the caller's (a review: a job of another
 * uid in the caller's session stayed stopped). pid: the pinned task's
 * number; caller: the calling process, waiting in its call (its number
 * cannot be taken meanwhile). 0, or -errno: -EPERM where the sessions
 * differ, where c (the caller's credentials) passes the kernel's uid check
 * (its EPERM was then an LSM's, on the caller: never overruled), or where
 * our own authority is refused too (no CAP_KILL over the target); -ESRCH
 * once the pinned task is gone.
 *
 * The race: the target's session is read first, its pin tested alive after
 * (so the read was the pinned task's), then the caller's. A process changes
 * session only by setsid, to a new one of its own: had the caller made that
 * session after the first read, the target could not have been in it then.
 * So both were in it at the first read, while the caller waited in its
 * call: the moment its native kill could have been made. Either may leave
 * by setsid before the signal is sent; the target then gets it as it would
 * have, sent before its setsid and handled after. None can join a session
 * meanwhile (setsid makes a new one; setpgid stays in one), and the signal
 * goes through the pin, so no later holder of the number gets it. */
int yr_pidfd_cont_in_session(const struct yr_creds *c, int pin, pid_t pid, pid_t caller,
                             const void *info, uint32_t flags)
{
    struct yr_stat_ids target, own;
    int rc = yr_stat_ids(pid, &target);
    int by_uid = rc < 0 ? rc : yr_kill_uid_check(c, pid);
    if (by_uid < 0)
        return by_uid;
    if (!yr_pidfd_alive(pin))
        return -ESRCH;
    if ((rc = yr_stat_ids(caller, &own)) < 0)
        return rc;
    if (by_uid || target.session != own.session)
        return -EPERM;
    return syscall(SYS_pidfd_send_signal, pin, SIGCONT, info, flags) == 0 ? 0 : -errno;
}

/* A signal sent through each of pins (processes; at most 64) with the
 * caller's credentials (so the kernel's permission check is the caller's):
 * what a signal to a process group does, minus yama-run's. A pin whose
 * process is gone reaches nothing, whatever took its number. refused: bit
 * i set where pins[i] was refused EPERM (guard.py may send those with our
 * authority where the kernel would have let the caller). 0 if one was
 * signalled, else the last -errno (-ESRCH for none), as kill_pgrp answers. */
int yr_pidfd_kill_each_as(const struct yr_creds *c, const int32_t *pins, int n, int sig,
                          uint64_t *refused)
{
    *refused = 0;
    if (n > 64)
        return -EINVAL;
    struct yr_creds_saved saved;
    if (yr_creds_enter(c, &saved) < 0)
        return -errno;
    int result = -ESRCH, any = 0;
    for (int i = 0; i < n; i++) {
        if (syscall(SYS_pidfd_send_signal, pins[i], sig, NULL, 0) == 0)
            any = 1;
        else if ((result = -errno) == -EPERM)
            *refused |= 1ULL << i;
    }
    yr_creds_leave(&saved);
    return any ? 0 : result;
}

/* A signal sent through pidfd with our own authority (guard.py: one the
 * kernel lets the caller send, refused to its credentials as lent): 0 or
 * -errno. */
int yr_pidfd_signal_ours(int pidfd, int sig, const void *info, uint32_t flags)
{
    return syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags) == 0 ? 0 : -errno;
}
