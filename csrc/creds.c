/* Act as the caller: a per-thread credential switch.
 *
 * glibc's set*id and setgroups change every thread of the process; the raw
 * syscalls change only the calling thread, which is what an emulating
 * supervisor thread needs. Works when the supervisor is root; an unprivileged
 * supervisor has exactly its callers' ids already (no_new_privs, no caps to
 * change them), so it acts as itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "yama.h"

static int read_status(pid_t tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static const char *find_line(const char *buf, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = buf; line && *line; ) {
        if (strncmp(line, key, klen) == 0)
            return line + klen;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

/* Uid/Gid lines hold real, effective, saved and filesystem ids. */
int yr_creds_read(pid_t tid, struct yr_creds *c)
{
    char buf[8192];
    memset(c, 0, sizeof(*c));
    if (read_status(tid, buf, sizeof(buf)) < 0)
        return -1;
    const char *u = find_line(buf, "Uid:"), *g = find_line(buf, "Gid:");
    const char *gr = find_line(buf, "Groups:");
    if (!u || !g || !gr ||
        sscanf(u, "%u %u %u %u", &c->ruid, &c->euid, &c->suid, &c->fsuid) != 4 ||
        sscanf(g, "%u %u %u %u", &c->rgid, &c->egid, &c->sgid, &c->fsgid) != 4) {
        errno = EINVAL;
        return -1;
    }
    /* Every group or none: a group left out would lift a permission that
     * refuses it (a 0604 file of that group, an ACL entry), so a caller in
     * more groups than we keep, or a line cut by our buffer (a last number
     * perhaps cut too), is E2BIG and nothing is done as it. */
    char *end;
    const char *p = gr;
    for (;; p = end) {
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            break;
        if (c->ngroups == YR_MAX_GROUPS) {
            errno = E2BIG;
            return -1;
        }
        c->groups[c->ngroups++] = (uint32_t)v;
    }
    p += strspn(p, " \t");
    if (*p != '\n') {
        errno = E2BIG;
        return -1;
    }
    return yr_caps3(tid, &c->cap_effective, &c->cap_permitted, &c->cap_inheritable);
}

static int capset_effective(uint64_t eff, uint64_t perm)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {
        { .effective = (uint32_t)eff, .permitted = (uint32_t)perm },
        { .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32) },
    };
    return (int)syscall(SYS_capset, &hdr, data);
}

static int capget_self(uint64_t *eff, uint64_t *perm)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    *eff = (uint64_t)data[1].effective << 32 | data[0].effective;
    *perm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
    return 0;
}

/* Every credential change of a thread makes the whole process's memory
 * dumpable again as fs.suid_dumpable says (commit_creds): 1 there would make
 * the supervisor dumpable, and a thread of it holding a caller's ids then
 * open to that caller's ptrace-class checks (the links of /proc/TID, which
 * nothing routes). So each change is followed by this (the mm's flag, one
 * syscall); and a thread that holds a caller's ids keeps either our permitted
 * set (yr_creds_enter) or our saved ids (yr_syscall_as), which no caller's
 * check passes. */
static void stay_undumpable(void)
{
    syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* A thread that acts for callers leaves our session keyring, once, for an
 * empty one of its own: keys are searched in the acting thread's keyrings,
 * and a root supervisor's session (a login's, inherited by yama-run) may
 * hold keys that unlock files for whoever opens them (an fscrypt v1 key, a
 * CIFS multiuser mount's credentials): a caller of another uid would open
 * them with root's keys. Only the credentials of the calling thread change
 * (join_session_keyring: commit_creds), and a thread it creates inherits the
 * new keyring, so one created by a thread that left already need not. An
 * unprivileged supervisor acts for callers of its own uid, whose session it
 * is. Not done where keys are not built in (ENOSYS). */
#define KEYCTL_GET_KEYRING_ID_ 0
#define KEYCTL_JOIN_SESSION_KEYRING_ 1
#define KEY_SPEC_SESSION_KEYRING_ (-3)
static long ours_session = -1;
static pthread_once_t session_once = PTHREAD_ONCE_INIT;
static __thread int session_left;

static void read_our_session(void)
{
    ours_session = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID_, KEY_SPEC_SESSION_KEYRING_, 0);
}

static void leave_our_session_keyring(void)
{
    if (session_left || geteuid() != 0)
        return;
    session_left = 1;
    pthread_once(&session_once, read_our_session);
    if (ours_session >= 0 &&
        syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID_, KEY_SPEC_SESSION_KEYRING_, 0) == ours_session)
        syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, NULL);
}

/* An unprivileged supervisor acts as itself, which is right only for a
 * caller with exactly its ids and groups: no_new_privs gives a program no
 * more, but one started with CAP_SETUID or CAP_SETGID (ambient) can change
 * them, and would keep through us the ids or groups it left. Such a caller
 * is refused (EPERM), never acted for. */
static int creds_are_ours(const struct yr_creds *c)
{
    uint32_t r, e, sv, groups[YR_MAX_GROUPS];
    if (syscall(SYS_getresuid, &r, &e, &sv) < 0 || r != c->ruid || e != c->euid ||
        syscall(SYS_getresgid, &r, &e, &sv) < 0 || r != c->rgid || e != c->egid ||
        (uint32_t)syscall(SYS_setfsuid, -1) != c->fsuid ||
        (uint32_t)syscall(SYS_setfsgid, -1) != c->fsgid)
        return 0;
    long n = syscall(SYS_getgroups, YR_MAX_GROUPS, groups);
    return n == (long)c->ngroups && memcmp(groups, c->groups, (size_t)n * sizeof(groups[0])) == 0;
}

#define CAPS_ONLY 2                        /* saved->active: only the capabilities were set */

/* Switch this thread to c. Returns 0, or -1 with errno (then still as before). */
int yr_creds_enter(const struct yr_creds *c, struct yr_creds_saved *saved)
{
    saved->active = 0;
    if (geteuid() != 0) {                  /* see the comment at the top */
        /* our ids are the caller's: only capabilities beyond its are set aside */
        if (!creds_are_ours(c)) {
            errno = EPERM;
            return -1;
        }
        if (capget_self(&saved->cap_effective, &saved->cap_permitted) < 0 ||
            capset_effective(c->cap_effective & saved->cap_permitted, saved->cap_permitted) < 0)
            return -1;
        saved->active = CAPS_ONLY;
        return 0;
    }
    leave_our_session_keyring();
    if (capget_self(&saved->cap_effective, &saved->cap_permitted) < 0)
        return -1;
    long n = syscall(SYS_getgroups, YR_MAX_GROUPS, saved->groups);
    if (n < 0 || syscall(SYS_getresuid, &saved->ruid, &saved->euid, &saved->suid) < 0 ||
        syscall(SYS_getresgid, &saved->rgid, &saved->egid, &saved->sgid) < 0)
        return -1;
    saved->ngroups = (uint32_t)n;
    /* Keep the permitted set across the uid change, so that leave() can come back. */
    if (syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return -1;
    if (syscall(SYS_setgroups, c->ngroups, c->groups) < 0)
        return -1;
    saved->active = 1;
    if (syscall(SYS_setresgid, c->rgid, c->egid, c->sgid) < 0 ||
        syscall(SYS_setresuid, c->ruid, c->euid, c->suid) < 0)
        goto fail;
    syscall(SYS_setfsgid, c->fsgid);
    syscall(SYS_setfsuid, c->fsuid);
    stay_undumpable();
    if (capset_effective(c->cap_effective & saved->cap_permitted, saved->cap_permitted) < 0)
        goto fail;
    return 0;
fail:
    {
        int e = errno;
        yr_creds_leave(saved);
        errno = e;
    }
    return -1;
}

int yr_creds_leave(struct yr_creds_saved *saved)
{
    if (!saved->active)
        return 0;
    int rc = 0;
    if (saved->active == CAPS_ONLY) {
        saved->active = 0;
        if (capset_effective(saved->cap_effective, saved->cap_permitted) < 0)
            abort();                       /* as below */
        return 0;
    }
    saved->active = 0;
    rc |= capset_effective(saved->cap_permitted, saved->cap_permitted);
    rc |= (int)syscall(SYS_setresuid, saved->ruid, saved->euid, saved->suid);
    rc |= (int)syscall(SYS_setresgid, saved->rgid, saved->egid, saved->sgid);
    rc |= (int)syscall(SYS_setgroups, saved->ngroups, saved->groups);
    rc |= capset_effective(saved->cap_effective, saved->cap_permitted);
    stay_undumpable();
    if (rc) {
        /* A supervisor thread stuck as the caller would act wrongly for the
         * next one: nothing is safer than stopping here. */
        abort();
    }
    return 0;
}

/* ---- a syscall made with exactly the caller's authority ----------------------
 *
 * yr_creds_enter() lowers only the effective set: the thread keeps our
 * permitted set, which the kernel's ptrace check compares in REALCREDS mode
 * (cap_ptrace_access_check: the target's permitted set must be a subset of
 * the caller's). A permitted set, once lowered, cannot be raised again, so
 * the call is made in a thread of its own that takes the caller's real and
 * effective ids (the filesystem ids follow them), groups and all three
 * capability sets, makes the one syscall and ends. Its saved ids stay ours:
 * none of these calls reads them, and a thread holding all of a caller's
 * ids and no capability beyond its would be that caller's to inspect
 * (__ptrace_may_access wants real, effective and saved ids alike) whenever
 * the process is dumpable (fs.suid_dumpable=1: stay_undumpable, above).
 * Credentials are per thread; descriptors are shared, so an fd it opens is
 * ours. An unprivileged supervisor cannot take other
 * ids: its thread only drops capabilities to the caller's (the callers of an
 * unprivileged supervisor have its ids). */
struct as_job {
    const struct yr_creds *c;
    long nr;
    uint64_t a[6];
    int64_t rc;
};

static int capset_all(uint64_t eff, uint64_t perm, uint64_t inh)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {
        { (uint32_t)eff, (uint32_t)perm, (uint32_t)inh },
        { (uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32) },
    };
    return (int)syscall(SYS_capset, &hdr, data);
}

/* The ids, groups and capability sets of become_exactly, with raw system
 * calls only: safe in a process forked from our threads (yr_take_exactly). */
static int take_exactly(const struct yr_creds *c)
{
    uint64_t eff, perm;
    if (capget_self(&eff, &perm) < 0)
        return -1;
    if (geteuid() != 0) {    /* what we hold beyond the caller is all we can take away */
        if (!creds_are_ours(c)) {
            errno = EPERM;
            return -1;
        }
        return capset_all(c->cap_effective & perm, c->cap_permitted & perm,
                          c->cap_inheritable & perm);
    }
    if (syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_setgroups, c->ngroups, c->groups) < 0 ||
        syscall(SYS_setresgid, c->rgid, c->egid, -1) < 0 ||
        syscall(SYS_setresuid, c->ruid, c->euid, -1) < 0)
        return -1;
    syscall(SYS_setfsgid, c->fsgid);
    syscall(SYS_setfsuid, c->fsuid);
    syscall(SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0);
    stay_undumpable();
    return capset_all(c->cap_effective & perm, c->cap_permitted & perm,
                      c->cap_inheritable & perm);
}

static int become_exactly(const struct yr_creds *c)
{
    leave_our_session_keyring();
    return take_exactly(c);
}

/* Exactly the caller's authority, as become_exactly takes it, in a process
 * forked for the purpose (helper.c): single threaded there, so a session
 * keyring of its own, empty, is joined directly (ours would lend the keys it
 * holds; the forking thread may never have left it). 0, or -1 with errno. */
int yr_take_exactly(const struct yr_creds *c)
{
    if (geteuid() == 0 && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, NULL) < 0 &&
        errno != ENOSYS)
        return -1;
    return take_exactly(c);
}

static void *as_caller(void *arg)
{
    struct as_job *job = arg;
    if (become_exactly(job->c) < 0) {
        job->rc = -(int64_t)(errno ? errno : EPERM);
        return NULL;          /* the thread ends: nothing of the half-switch survives */
    }
    long rc = syscall(job->nr, job->a[0], job->a[1], job->a[2], job->a[3], job->a[4], job->a[5]);
    job->rc = rc < 0 ? -(int64_t)errno : rc;
    return NULL;
}

/* The result of syscall nr made as the caller, in a thread of ours that
 * takes exactly the caller's authority and ends after it, or -errno. */
int64_t yr_syscall_as(const struct yr_creds *c, int64_t nr, const uint64_t args[6])
{
    struct as_job job = { .c = c, .nr = (long)nr, .rc = -EAGAIN };
    memcpy(job.a, args, sizeof(job.a));
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int rc = pthread_create(&t, &attr, as_caller, &job);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -rc;
    pthread_join(t, NULL);
    return job.rc;
}

/* The filesystem identity: what path walks, permission checks and link
 * creation look at. The thread keeps the last identity it took, so a run of
 * calls by one caller pays for no switch at all; yr_fs_reset() comes back.
 * Order matters: setgroups needs our CAP_SETGID, so capabilities are lowered
 * last and raised first. */
static __thread int fs_ready, fs_switched;
static __thread uint32_t fs_euid;     /* never moved by an identity taken here: asked once */
static __thread uint64_t base_eff, base_perm;
static __thread struct yr_fsid fs_base, fs_cur, fs_paused;
static __thread int fs_pausing;

static int fs_init(void)
{
    if (fs_ready)
        return 0;
    leave_our_session_keyring();
    if (capget_self(&base_eff, &base_perm) < 0)
        return -1;
    long n = syscall(SYS_getgroups, YR_MAX_GROUPS, fs_base.groups);
    if (n < 0)
        return -1;
    fs_base.ngroups = (uint32_t)n;
    uint32_t e, sv;
    if (syscall(SYS_getresuid, &fs_base.ruid, &fs_euid, &sv) < 0 ||
        syscall(SYS_getresgid, &fs_base.rgid, &e, &sv) < 0)
        return -1;
    fs_base.fsuid = (uint32_t)syscall(SYS_setfsuid, -1);   /* -1: only asks */
    fs_base.fsgid = (uint32_t)syscall(SYS_setfsgid, -1);
    fs_base.caps = base_eff;
    fs_cur = fs_base;
    fs_ready = 1;
    return 0;
}

static int same_fsid(const struct yr_fsid *a, const struct yr_fsid *b)
{
    return a->fsuid == b->fsuid && a->fsgid == b->fsgid && a->caps == b->caps &&
           a->ruid == b->ruid && a->rgid == b->rgid &&
           a->ngroups == b->ngroups &&
           memcmp(a->groups, b->groups, a->ngroups * sizeof(a->groups[0])) == 0;
}

/* See creds_are_ours: the filesystem identity's part, against ours. */
int yr_fs_can_act_as(const struct yr_fsid *id)
{
    if (fs_init() < 0)
        return 0;
    if (fs_euid == 0)
        return 1;
    return id->ruid == fs_base.ruid && id->rgid == fs_base.rgid &&
           id->fsuid == fs_base.fsuid && id->fsgid == fs_base.fsgid &&
           id->ngroups == fs_base.ngroups &&
           memcmp(id->groups, fs_base.groups, id->ngroups * sizeof(id->groups[0])) == 0;
}

static void fs_stuck(void)
{
    /* A thread left half-way between two identities would act wrongly for
     * the next caller: nothing is safer than stopping here. */
    abort();
}

int yr_fs_become(const struct yr_fsid *want)
{
    if (fs_init() < 0)
        return -1;
    struct yr_fsid masked = *want;
    const struct yr_fsid *id = &masked;
    masked.caps &= base_perm;
    if (same_fsid(id, &fs_cur))
        return 0;
    if (fs_euid != 0) {
        /* Unprivileged: our ids and groups are the caller's (yr_fs_can_act_as,
         * asked when its identity was read); capabilities we hold beyond its
         * are set aside. */
        if (!yr_fs_can_act_as(id)) {
            errno = EPERM;
            return -1;
        }
        if (capset_effective(id->caps, base_perm) < 0)
            fs_stuck();
        fs_cur.caps = id->caps;
        fs_switched = !same_fsid(&fs_cur, &fs_base);
        return 0;
    }
    if (fs_cur.caps != base_eff && capset_effective(base_eff, base_perm) < 0)
        fs_stuck();
    fs_cur.caps = base_eff;
    if ((fs_cur.ngroups != id->ngroups ||
         memcmp(fs_cur.groups, id->groups, id->ngroups * sizeof(id->groups[0]))) &&
        syscall(SYS_setgroups, id->ngroups, id->groups) < 0)
        fs_stuck();
    /* Only the real ids move with them; euid and saved ids stay ours, so
     * our capabilities survive and the way back needs none of them. */
    if (syscall(SYS_setresgid, id->rgid, -1, -1) < 0 ||
        syscall(SYS_setresuid, id->ruid, -1, -1) < 0)
        fs_stuck();
    syscall(SYS_setfsgid, id->fsgid);
    syscall(SYS_setfsuid, id->fsuid);
    if ((uint32_t)syscall(SYS_setfsuid, -1) != id->fsuid ||
        (uint32_t)syscall(SYS_setfsgid, -1) != id->fsgid)
        fs_stuck();
    if (capset_effective(id->caps & base_perm, base_perm) < 0)
        fs_stuck();
    stay_undumpable();
    fs_cur = *id;
    fs_switched = !same_fsid(&fs_cur, &fs_base);
    return 0;
}

int yr_fs_reset(void)
{
    if (!fs_ready || !fs_switched)
        return 0;
    return yr_fs_become(&fs_base);
}

/* Ourselves for a moment, then back to whomever the thread acted as: for
 * what the kernel lets a process do to itself without asking but asks us
 * about when we do it as the caller (its ids, none of the capabilities of a
 * user namespace of its own), such as following its own magic links or
 * reading its /proc/PID/ns. Nested pauses count: only the outermost resume
 * acts as the caller again, so an inner one can never leave the thread
 * acting as ourselves, nor give the caller's identity back too early. */
static __thread int fs_pause_depth;

void yr_fs_pause(void)
{
    if (fs_pause_depth++ > 0 || !fs_ready || !fs_switched)
        return;
    fs_paused = fs_cur;
    fs_pausing = 1;
    yr_fs_become(&fs_base);
}

void yr_fs_resume(void)
{
    if (fs_pause_depth > 0 && --fs_pause_depth > 0)
        return;
    if (!fs_pausing)
        return;
    fs_pausing = 0;
    yr_fs_become(&fs_paused);
}
