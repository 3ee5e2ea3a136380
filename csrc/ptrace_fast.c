/* The ptrace module's ATTACH-mode rule settled in C, where it alone decides.
 *
 * ptrace(PTRACE_ATTACH / PTRACE_SEIZE) and process_vm_readv/writev of another
 * process, decided on the integer pid exactly as sandbox/modules/ptrace.py
 * decides them (ptrace_access_check), without the upcall to Python: the
 * rule is loaded by sandbox/task_calls.py only when the ptrace module is the
 * one module of the chain on that hook, the chain is not permissive (nor
 * learning), and YAMA_RUN_NO_FAST_PATH is unset; a live change loads it
 * again before the change is acknowledged (one atomic word: a call already
 * past the read keeps the old answer, the next reads the new one).
 *
 * Whatever this file cannot state as the module would goes to Python, which
 * asks the chain as before: a caller in another pid namespace, a target that
 * is gone, yama-run's own processes (audited there), the caller's own thread
 * group, a caller holding CAP_SYS_PTRACE (the user-namespace walk), a target
 * in another user namespace than ours, a process_vm_* call this rule would
 * refuse on a task without an mm (the kernel's ESRCH comes first), and at
 * scope 1 any sandbox where a PR_SET_PTRACER declaration or an attach was
 * ever seen (a relation or a tracer may then exist: the module consults them).
 *
 * A denial is settled here only while the audit has said that one would
 * leave no trace but the counts (yr_ptrace_fast_quiet: no log, no -v, past
 * the first denial, and the journal out of tokens until a given time); the
 * denials settled meanwhile are handed back to be counted
 * (yr_ptrace_fast_take_silent). Every denial that is recorded or said is
 * therefore Python's, with the module's own line.
 *
 * prctl(PR_SET_PTRACER, 0) is answered here too while nothing was ever
 * declared and nobody reads emulated calls (settle_clear). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "pidfd.h"
#include "engine.h"

#define PTRACE_ATTACH_REQ 16
#define PTRACE_SEIZE_REQ 0x4206
#define PTRACE_O_MASK 0x003000FFu
#define PR_SET_PTRACER_OPT 0x59616d61u

static _Atomic uint32_t rule;                   /* YR_PTRACE_FAST_ON | scope, or 0 */
/* Monotonic, never cleared: once a declaration or an attach was seen, a
 * relation or a tracer may exist, and only the module can tell (scope 1). */
static atomic_int declared_seen, tracing_seen;
static _Atomic int64_t quiet_until;            /* CLOCK_MONOTONIC ns */
static _Atomic uint64_t silent;                /* denials settled here, not yet counted */

void yr_ptrace_fast_rule(uint32_t word)
{
    atomic_store(&rule, word);
}

void yr_ptrace_fast_declared(void)
{
    atomic_store(&declared_seen, 1);
}

void yr_ptrace_fast_tracing(void)
{
    atomic_store(&tracing_seen, 1);
}

void yr_ptrace_fast_quiet(int64_t until_ns)
{
    atomic_store(&quiet_until, until_ns);
}

uint64_t yr_ptrace_fast_take_silent(void)
{
    return atomic_exchange(&silent, 0);
}

/* ---- namespaces -------------------------------------------------------------
 * The inode a /proc/TID/ns/KIND link names ("user:[N]"): readlink costs less
 * than the stat that follows the link, and asks the same permission
 * (ptrace_may_access READ_FSCREDS). tid 0: our own. */
static unsigned long ns_ino(pid_t tid, const char *kind)
{
    char path[48], link[64];
    if (tid > 0)
        snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)tid, kind);
    else
        snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n <= 0)
        return 0;
    link[n] = '\0';
    const char *open = strchr(link, '[');
    return open ? strtoul(open + 1, NULL, 10) : 0;
}

/* 1: tid is in the supervisor's user namespace; 0: another; -1: unknown.
 * A task may change its user namespace at any time (unshare, setns), so
 * the answer is never kept. Ours never changes (a threaded process may not). */
int yr_userns_is_ours(pid_t tid)
{
    static unsigned long own;
    if (!own)
        own = ns_ino(0, "user");
    unsigned long theirs = ns_ino(tid, "user");
    if (!own || !theirs)
        return -1;
    return theirs == own;
}

/* ---- the descendant walk, stopped early --------------------------------------
 * Yama's task_is_descendant(caller, target): the real-parent chain from the
 * target's leader up, through PIDFD_GET_INFO (procinfo.c). Two facts end it
 * early, both true of callers only (processes under our filter):
 *
 * - The supervisor runs under no filter of ours, and a process under our
 *   filter has only such processes below it (a filter is inherited at fork;
 *   reparenting moves a process up to an ancestor of its parent), so the
 *   supervisor is never a caller's descendant, nor is anything above it.
 * - A process is younger than each of its ancestors (a child is made after
 *   its parent; reparenting picks an ancestor; an exec by a thread keeps the
 *   process's struct pid). pidfs (Linux 6.9+) numbers each struct pid's
 *   inode from a 64-bit counter at allocation, never reused: a target whose
 *   process inode is below the caller's is older, so no descendant.
 *   Races: the caller is blocked in its call, so its number is its own; the
 *   target's number may have been taken over since it was read, but only
 *   by a newer process, which is then walked as before (never a wrong no). */

/* What is kept of a process, with a pidfd, so that it costs one ioctl, not
 * an open (a pidfd's inode is made anew at each open once the last one was
 * closed): its age, and whether it is in our pid namespace (a task never
 * changes pid namespace, and the threads of a process share theirs). A
 * record answers for its number only while PIDFD_GET_INFO on its pidfd
 * succeeds: the process is not reaped yet, so it still holds the number.
 * The facts are read after the pidfd is opened, so they are that process's
 * (a number taken over before the open gives the newer process's record). */
#define PROC_CACHE 32          /* at most 32 pidfds kept, of live or dead processes */
struct proc_rec { pid_t pid; int pidfd; unsigned long long ino; int pidns_ours; };
static struct proc_rec proc_cache[PROC_CACHE];
static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static int pidfs = -1;                  /* do pidfds live on pidfs (6.9+)? */

static int still_held(int pidfd)
{
    struct yr_pidfd_info info;
    memset(&info, 0, sizeof(info));
    info.mask = YR_PIDFD_INFO_PID;
    return ioctl(pidfd, YR_PIDFD_GET_INFO, &info) == 0;
}

static int proc_rec_fill(struct proc_rec *r, pid_t tgid)
{
    static unsigned long own_pidns;
    if (!own_pidns)
        own_pidns = ns_ino(0, "pid");
    int fd = (int)syscall(SYS_pidfd_open, tgid, 0);
    if (fd < 0)
        return -1;
    struct stat st;
    struct statfs fs;
    if (pidfs < 0)
        pidfs = fstatfs(fd, &fs) == 0 && fs.f_type == YR_PIDFS_MAGIC;
    unsigned long pidns = ns_ino(tgid, "pid");
    if (pidfs != 1 || fstat(fd, &st) < 0 || !pidns || !own_pidns || !still_held(fd)) {
        close(fd);          /* before pidfs every pidfd shared one inode: no age */
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    *r = (struct proc_rec){ tgid, fd, st.st_ino, pidns == own_pidns };
    return 0;
}

/* The record of process tgid (a copy), or -1 when it cannot be had. */
static int process_facts(pid_t tgid, struct proc_rec *out)
{
    pthread_mutex_lock(&proc_lock);
    struct proc_rec *slot = &proc_cache[(unsigned)tgid % PROC_CACHE];
    int rc = 0;
    if (slot->pid != tgid || !still_held(slot->pidfd)) {
        if (slot->pid)
            close(slot->pidfd);
        slot->pid = 0;
        rc = proc_rec_fill(slot, tgid);
    }
    if (rc == 0)
        *out = *slot;
    pthread_mutex_unlock(&proc_lock);
    return rc;
}

static int older_than(pid_t tgid, pid_t caller_tgid)
{
    struct proc_rec theirs, mine;
    return process_facts(tgid, &theirs) == 0 && process_facts(caller_tgid, &mine) == 0 &&
           theirs.ino < mine.ino;
}

/* A walk up this many generations (a /proc read each) is a chain built to
 * cost: its receiver is marked stalled, as resolve.c's costly walks are, so
 * that another serves the calls of everyone else meanwhile. */
#define COSTLY_GENERATIONS 256

/* 1: tid's process is caller_tgid or one of its descendants; 0: not; -1:
 * tid is gone. caller_tgid must be a caller (a process under our filter,
 * blocked in its call): the early ends hold for callers only. */
int yr_caller_is_ancestor(pid_t caller_tgid, pid_t tid)
{
    pid_t walker = yr_tgid_of(tid);
    if (walker < 0)
        return -1;
    if (walker != caller_tgid && older_than(walker, caller_tgid))
        return 0;
    for (int depth = 0; walker > 0 && depth < 4096; depth++) {
        if (walker == caller_tgid)
            return 1;
        if (walker == getpid())
            return 0;
        if (depth == YR_COSTLY_GENERATIONS)
            yr_pool_built_to_cost_here();
        walker = yr_ppid_of(walker);
    }
    return 0;
}

/* ---- the decision -------------------------------------------------------------- */

/* The pid an ATTACH-mode call names, or 0 when this is not one we settle. */
static pid_t attach_target(const struct yr_event *ev)
{
    if (ev->sys == YR_SYS_PROCESS_VM_READV || ev->sys == YR_SYS_PROCESS_VM_WRITEV)
        return (pid_t)(int32_t)ev->args[0];
    if (ev->sys != YR_SYS_PTRACE)
        return 0;
    if (ev->args[0] == PTRACE_ATTACH_REQ)
        return (pid_t)(int32_t)ev->args[1];
    if (ev->args[0] == PTRACE_SEIZE_REQ && !ev->args[2] && !(ev->args[3] & ~(uint64_t)PTRACE_O_MASK))
        return (pid_t)(int32_t)ev->args[1];
    return 0;            /* TRACEME, a SEIZE the kernel refuses: Python's */
}

enum verdict { UNDECIDED, ALLOW, DENY };

/* A denial, unless process_vm_* names a task without an mm (a zombie, a
 * kernel thread): the kernel answers ESRCH before any permission check
 * (mm_access), and Python says so; or a task that shares the caller's mm,
 * of which mm_access asks nothing: allowed (yr_shares_mm). Asked of
 * denials only: an allowed call is continued, and the kernel gives its
 * ESRCH itself. A sharer that execs after the kcmp is met by the kernel's
 * own rule alone in the continued call: it grants nothing, since the
 * caller could write the sharer's code, and so chose what it would run. */
static enum verdict deny(const struct yr_event *ev, pid_t target)
{
    if (ev->sys != YR_SYS_PROCESS_VM_READV && ev->sys != YR_SYS_PROCESS_VM_WRITEV)
        return DENY;
    if (yr_task_has_mm(target) != 1)
        return UNDECIDED;
    unsigned long long ino;
    return yr_shares_mm(ev->tid, target, &ino) ? ALLOW : DENY;
}

/* ptrace.py's ptrace_access_check for the facts at hand. */
static enum verdict decide(uint32_t scope, const struct yr_event *ev, pid_t target)
{
    int capable_bit = (int)(ev->cap_effective >> CAP_SYS_PTRACE & 1);
    if (scope >= 3)
        return deny(ev, target);
    if (capable_bit)
        return UNDECIDED;               /* ns_capable's walk: procfs.capable_over */
    int ours = yr_userns_is_ours(target);
    if (ours != 1)
        return UNDECIDED;               /* the owner rule may apply: the module's */
    /* Not capable: without the capability, nobody in or below our user
     * namespace is capable over a task of our namespace (cap_capable). */
    if (scope == 2)
        return deny(ev, target);
    if (atomic_load(&declared_seen) || atomic_load(&tracing_seen))
        return UNDECIDED;               /* a relation or a tracer may exist */
    int desc = yr_caller_is_ancestor(ev->tgid, target);
    if (desc < 0)
        return UNDECIDED;               /* gone meanwhile: the module says so */
    return desc ? ALLOW : deny(ev, target);
}

/* prctl(PR_SET_PTRACER, 0): the module drops the caller's relation, if any;
 * while none was ever declared there is none, and (YR_PTRACE_FAST_PRCTL: no
 * log, no -v) the emulated call leaves no record: it answers 0 (yama_lsm.c,
 * yama_task_prctl: "arg2 == 0" clears, the other arguments unread). */
static int settle_clear(uint32_t word, struct yr_ctx *ctx, const struct yr_event *ev)
{
    if (!(word & YR_PTRACE_FAST_PRCTL) || (uint32_t)ev->args[0] != PR_SET_PTRACER_OPT ||
        ev->args[1] != 0 || atomic_load(&declared_seen))
        return 0;
    yr_reply(ctx, ev->id, 0, 0);
    return 1;
}

int yr_ptrace_settle(struct yr_ctx *ctx, struct yr_event *ev)
{
    uint32_t word = atomic_load(&rule);
    if (ev->sys == YR_SYS_PRCTL)
        return settle_clear(word, ctx, ev);
    uint32_t scope = word & 3;
    if (!(word & YR_PTRACE_FAST_ON) || scope == 0)
        return 0;
    pid_t pid = attach_target(ev);
    struct proc_rec caller;
    if (pid <= 0 || process_facts(ev->tgid, &caller) < 0 || !caller.pidns_ours)
        return 0;                       /* a pid of another namespace: Python's */
    pid_t tgid = yr_tgid_of(pid);
    if (tgid <= 0 || tgid == ev->tgid || yr_gate_is_protected(tgid))
        return 0;
    switch (decide(scope, ev, pid)) {
    case ALLOW:
        if (ev->sys == YR_SYS_PTRACE)
            yr_ptrace_fast_tracing();   /* before the attach can happen */
        yr_reply_continue(ctx, ev->id);
        return 1;
    case DENY:
        if ((int64_t)yr_now_ns() >= atomic_load(&quiet_until))
            return 0;                   /* someone reads this one: Python's */
        yr_reply(ctx, ev->id, 0, EPERM);
        atomic_fetch_add(&silent, 1);
        return 1;
    default:
        return 0;
    }
}
