/* The kernel's core ptrace rule, judged for a caller from user space.
 *
 * What __ptrace_may_access() (kernel/ptrace.c) and commoncap's
 * cap_ptrace_access_check() (security/commoncap.c) decide, before any LSM
 * (Yama, Landlock) is asked:
 *
 *   1. the same thread group: allowed;
 *   2. the caller's fsuid/fsgid (PTRACE_MODE_FSCREDS) or real uid/gid
 *      (PTRACE_MODE_REALCREDS) equal the target's real, effective and saved
 *      ids, or the caller has CAP_SYS_PTRACE in the target's user namespace;
 *   3. the target's mm is dumpable (SUID_DUMP_USER), or the caller has
 *      CAP_SYS_PTRACE in the mm's user namespace;
 *   4. the caller and the target share a user namespace and the target's
 *      permitted capabilities are a subset of the caller's (effective for
 *      FSCREDS, permitted for REALCREDS), or the caller has CAP_SYS_PTRACE
 *      in the target's user namespace.
 *
 * The supervisor acts with more authority than its callers (it is outside
 * the sandbox, and an unprivileged supervisor owns the user namespace the
 * sandbox runs in), so whatever it performs on another process for a caller
 * is judged here first, as the kernel would judge the caller.
 *
 * Facts come from /proc and the nsfs ioctls. Two are out of user space's
 * exact reach, and the stricter case is assumed: a task's dumpable flag is
 * read from the owner the kernel gives its /proc files (task_dump_owner:
 * the root of the mm's user namespace when not dumpable), which is
 * ambiguous when the target's euid is that root; and the mm's user
 * namespace itself is not exposed. Never allowed where the kernel would
 * refuse; sometimes refused where it would allow (docs/path-engine.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/capability.h>

#include "engine.h"

#define PROC_USER_INIT_INO 0xEFFFFFFDU
#ifndef NS_GET_OWNER_UID
#define NS_GET_OWNER_UID _IO(0xb7, 0x4)
#endif

struct task_facts {
    pid_t tgid;
    uint32_t uid[4], gid[4];    /* real, effective, saved, filesystem (as we see them) */
    uint64_t eff, prm;
    int has_mm;                 /* status shows Vm* lines: an mm (zombies have none) */
    int ns;                     /* its user namespace (an nsfs fd of ours) */
    int owner_known;            /* owner_*: its /proc files' owner (task_dump_owner) */
    uint32_t owner_uid, owner_gid;
};

static uint32_t overflow_uid = 65534;

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return (int)n;
}

static const char *field(const char *buf, const char *key)
{
    size_t k = strlen(key);
    for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, key, k) == 0)
            return l + k;
    return NULL;
}

static int task_facts(pid_t tid, struct task_facts *t, int owner)
{
    char path[64], buf[4096];
    memset(t, 0, sizeof(*t));
    t->ns = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    if (read_file(path, buf, sizeof(buf)) <= 0)
        return -ESRCH;
    const char *tg = field(buf, "Tgid:"), *u = field(buf, "Uid:"), *g = field(buf, "Gid:");
    const char *ce = field(buf, "CapEff:"), *cp = field(buf, "CapPrm:");
    if (!tg || !u || !g || !ce || !cp ||
        sscanf(u, "%u %u %u %u", &t->uid[0], &t->uid[1], &t->uid[2], &t->uid[3]) != 4 ||
        sscanf(g, "%u %u %u %u", &t->gid[0], &t->gid[1], &t->gid[2], &t->gid[3]) != 4)
        return -ESRCH;
    t->tgid = (pid_t)atoi(tg);
    t->eff = strtoull(ce, NULL, 16);
    t->prm = strtoull(cp, NULL, 16);
    t->has_mm = field(buf, "VmSize:") != NULL;
    if (owner) {                  /* a target's: its /proc files' owner (the caller's is not asked) */
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%d/environ", (int)tid);
        if (stat(path, &st) == 0) {
            t->owner_known = 1;
            t->owner_uid = st.st_uid;
            t->owner_gid = st.st_gid;
        } else if (errno == ENOENT || errno == ESRCH) {
            return -ESRCH;                     /* reaped since its status was read */
        }
    }
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tid);
    t->ns = open(path, O_RDONLY | O_CLOEXEC);
    if (t->ns >= 0)
        return 0;
    /* There but not ours to inspect (the VM's own init here): refused, as
     * the kernel refuses the caller; only a task gone is ESRCH (ENOENT). */
    return errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
}

static int same_ns(int a, int b)
{
    struct stat x, y;
    return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

static int is_init_ns(int ns)
{
    struct stat st;
    return fstat(ns, &st) == 0 && st.st_ino == PROC_USER_INIT_INO;
}

/* ns's parent (a new fd), or -1 at the top of what we can see. */
static int parent_of(int ns)
{
    return ioctl(ns, NS_GET_PARENT);
}

/* Levels between ns and the top we can see (our own user namespace). */
static int level_of(int ns)
{
    int depth = 0, cur = dup(ns);
    while (cur >= 0 && depth < 64) {
        int up = parent_of(cur);
        close(cur);
        cur = up;
        if (cur >= 0)
            depth++;
    }
    return depth;
}

static int owner_of(int ns, uint32_t *uid)
{
    return ioctl(ns, NS_GET_OWNER_UID, uid) < 0 ? -1 : 0;
}

/* cap_capable(caller, target namespace, CAP_SYS_PTRACE) (security/commoncap.c):
 * the capability in effect in the target namespace or an ancestor of it
 * that is the caller's, or ownership of a namespace on the way whose parent
 * is the caller's. */
static int ns_capable(const struct task_facts *caller, int target_ns)
{
    int caller_level = level_of(caller->ns);
    int ns = dup(target_ns);
    int allowed = 0;
    while (ns >= 0) {
        if (same_ns(ns, caller->ns)) {
            allowed = (caller->eff >> CAP_SYS_PTRACE & 1) != 0;
            break;
        }
        if (level_of(ns) <= caller_level)
            break;
        int parent = parent_of(ns);
        uint32_t owner;
        if (parent >= 0 && same_ns(parent, caller->ns) && owner_of(ns, &owner) == 0 &&
            owner == caller->uid[1] && owner != overflow_uid) {
            close(parent);
            allowed = 1;
            break;
        }
        close(ns);
        ns = parent;
    }
    if (ns >= 0)
        close(ns);
    return allowed;
}

/* The uid the root of tid's user namespace has in ours, or overflow_uid. */
static uint32_t root_uid_of(pid_t tid, int tns, int ours)
{
    if (same_ns(tns, ours))
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)tid);
    if (read_file(path, buf, sizeof(buf)) <= 0)
        return overflow_uid;
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        unsigned long inside, outside, count;
        if (sscanf(l, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 && count)
            return (uint32_t)outside;
    }
    return overflow_uid;
}

/* The user namespace yama-run made for the sandbox (spawn.c), held so that
 * its inode can name no other: its uid_map maps our uid to itself and no
 * root. -1: none. */
static int sandbox_ns = -1;

void yr_kptrace_sandbox_userns(pid_t child)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)child);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (sandbox_ns >= 0)
        close(sandbox_ns);
    sandbox_ns = fd;
}

/* The owner the kernel gives a non-dumpable task's /proc files when its
 * mm's user namespace maps no root (task_dump_owner: the global root), as
 * our namespace shows it: read once, as every sysctl file's owner (the
 * sysctl tree is the global root's). rootless_known 0: unread. */
static uint32_t global_root_uid;
static int rootless_known;

/* Is ns one whose root the target's euid cannot be? The sandbox's own
 * namespace maps none, so a non-dumpable mm there shows the global root's
 * uid as owner, never an euid that is not that uid. */
static int rootless_for(int ns, uint32_t euid)
{
    return sandbox_ns >= 0 && same_ns(ns, sandbox_ns) && rootless_known &&
           euid != global_root_uid;
}

/* The highest namespace, from ns up to below ours, that the mm may be in
 * with the target's euid as its root: a fresh fd; ns itself when no
 * namespace between it and ours may have that root. The mm's namespace is
 * the one the task last exec'd in: its current one, or, after an
 * unshare(CLONE_NEWUSER) or a setns (only ever to a namespace it holds
 * CAP_SYS_ADMIN in, below one it was in), an ancestor of it. An ancestor's
 * uid_map cannot be read without a task in it, nor guessed from its owner (a
 * privileged writer may map its root to any uid). The sandbox's namespace
 * is passed over (rootless_for): a process that made a user namespace of
 * its own in the sandbox (unshare -r) is then asked for CAP_SYS_PTRACE over
 * that namespace, which it holds, not over the sandbox's, which nothing
 * inside holds. */
static int top_suspect(int ns, int ours, uint32_t euid)
{
    int top = dup(ns);
    int cur = parent_of(ns);
    while (top >= 0 && cur >= 0 && !same_ns(cur, ours)) {
        if (!rootless_for(cur, euid)) {
            close(top);
            top = dup(cur);
        }
        int up = parent_of(cur);
        close(cur);
        cur = up;
    }
    if (cur >= 0)
        close(cur);
    return top;
}

/* Rule 3: dumpable, or the capability in the mm's user namespace: 1, 0,
 * or YR_PTRACE_KERNEL_SETTLES. */
static int mm_reachable(const struct task_facts *caller, pid_t tid, const struct task_facts *t,
                        int ours)
{
    if (!t->has_mm)
        return 1;        /* the kernel checks only a task that has an mm (an exiting task's is
                          * gone for good: it cannot come back between our two reads) */
    if (!t->owner_known)
        return 0;
    uint32_t euid = t->uid[1], egid = t->gid[1];
    if (t->owner_uid == euid && t->owner_gid == egid && euid != overflow_uid) {
        int top = top_suspect(t->ns, ours, euid);
        /* Dumpable, unless the root of the mm's namespace (its own, or one
         * above it: top) may be the target's euid: then the owner is the
         * same either way. */
        if (euid != 0 && euid != root_uid_of(tid, t->ns, ours) && top >= 0 &&
            same_ns(top, t->ns)) {
            close(top);
            return 1;
        }
        /* Either: the capability over the highest namespace below ours that
         * the mm may be in with that root; the capability there covers
         * every namespace below it. (An mm of ours with our root's euid:
         * only the kernel's own check of a thread acting as the caller
         * settles it, YR_PTRACE_KERNEL_SETTLES. Only a root supervisor has
         * such targets, and its acting thread lends a caller of another
         * namespace no capability, so the kernel refuses that thread what
         * it refuses the caller.) */
        int ok = top >= 0 && ns_capable(caller, top);
        int ours_too = euid == 0 && top >= 0 && !same_ns(top, ours);
        if (top >= 0)
            close(top);
        return !ok ? 0 : ours_too ? YR_PTRACE_KERNEL_SETTLES : 1;
    }
    /* Not dumpable; its mm's namespace is unknown: only a capability that
     * covers every namespace will do. */
    return is_init_ns(ours) && same_ns(caller->ns, ours) &&
           (caller->eff >> CAP_SYS_PTRACE & 1);
}

static int ids_match(const struct task_facts *c, const struct task_facts *t, int fscreds)
{
    uint32_t uid = c->uid[fscreds ? 3 : 0], gid = c->gid[fscreds ? 3 : 0];
    if (uid == overflow_uid || gid == overflow_uid)
        return 0;                              /* unmapped: never proven equal */
    for (int i = 0; i < 3; i++)
        if (t->uid[i] != uid || t->gid[i] != gid)
            return 0;
    return 1;
}

static int judge(const struct task_facts *c, const struct task_facts *t, pid_t target,
                 uint32_t mode, int ours)
{
    int fscreds = (mode & YR_PTRACE_FSCREDS) != 0;
    if (!ids_match(c, t, fscreds) && !ns_capable(c, t->ns))
        return 0;
    int mm = mm_reachable(c, target, t, ours);
    if (!mm)
        return 0;
    uint64_t caller_caps = fscreds ? c->eff : c->prm;
    if (same_ns(c->ns, t->ns) && (t->prm & ~caller_caps) == 0)
        return mm;
    return ns_capable(c, t->ns) ? mm : 0;
}

/* The target's facts are read one after another (its status, its
 * namespace, its /proc owner, its namespace's uid_map) while it runs: it
 * may change its ids, make itself non-dumpable or move into a new user
 * namespace between two reads, and a judgement on facts of two moments
 * said yes where the kernel, at either, says no (a uid_map read after the
 * move made a namespace-root's non-dumpable process look dumpable). So a
 * yes stands only if the facts read again after it are the same: a task
 * only moves down the namespace tree, never back, so the same namespace
 * before and after means every read was of that one. The caller waits in
 * its call meanwhile: its facts cannot change. */
static int facts_held(pid_t target, const struct task_facts *before)
{
    struct task_facts now;
    int rc = task_facts(target, &now, 1);
    if (rc < 0)
        return rc == -ESRCH ? -ESRCH : 0;     /* gone meanwhile: the kernel's ESRCH */
    /* An mm lost meanwhile (the task exits) only loosens the kernel's check:
     * its /proc owner becomes root's then, which is no change of ours. */
    int held = same_ns(now.ns, before->ns) &&
               memcmp(now.uid, before->uid, sizeof(now.uid)) == 0 &&
               memcmp(now.gid, before->gid, sizeof(now.gid)) == 0 &&
               now.eff == before->eff && now.prm == before->prm &&
               (!now.has_mm || (now.has_mm == before->has_mm &&
                                now.owner_known == before->owner_known &&
                                now.owner_uid == before->owner_uid &&
                                now.owner_gid == before->owner_gid));
    yr_close(now.ns);
    return held;
}

int yr_kernel_ptrace_allows(pid_t caller, pid_t target, uint32_t mode)
{
    static int overflow_known;
    if (!overflow_known) {
        char buf[32];
        struct stat st;
        if (read_file("/proc/sys/kernel/overflowuid", buf, sizeof(buf)) > 0)
            overflow_uid = (uint32_t)atoi(buf);
        if (stat("/proc/sys/kernel/overflowuid", &st) == 0) {
            global_root_uid = st.st_uid;
            rootless_known = 1;
        }
        overflow_known = 1;
    }
    struct task_facts c, t;
    int rc = task_facts(caller, &c, 0);
    if (rc == 0)
        rc = task_facts(target, &t, 1);
    else
        t.ns = -1;
    int ours = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (rc == 0 && ours < 0)
        rc = -errno;
    if (rc == 0)
        rc = c.tgid == t.tgid ? 1 : judge(&c, &t, target, mode, ours);
    if (rc > 0 && c.tgid != t.tgid) {
        int held = facts_held(target, &t);
        rc = held == 1 ? rc : held;
    }
    yr_close(c.ns);
    yr_close(t.ns);
    yr_close(ours);
    return rc;
}
