/* Who the caller is, and its memory.
 *
 * A path call acts as its caller: its filesystem identity (fsuid, fsgid,
 * groups, capabilities) and its /proc/TID directory, from which its cwd,
 * root and descriptors are reached. Both are cached per notification
 * context, so a run of calls by one thread pays for them once. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/capability.h>

#include "engine.h"
#include "pidfd.h"

/* ---- the caller's memory ---------------------------------------------------
 *
 * Reached by the caller's thread id (process_vm_readv/writev: the kernel's
 * own faults, no FOLL_FORCE), as the caller (its ids and capabilities), so
 * that whatever holds that number when the kernel looks it up is reached
 * only as the caller could reach it itself; as ourselves only where the
 * caller refuses us as itself (not dumpable, or in a user namespace of its
 * own). The number is the caller's only while the caller lives: it waits in
 * our notification until answered or killed, and a call can be held up for
 * as long as its caller likes (a walk through its FUSE mount, a fault in
 * its userfaultfd page), in which time it may be killed, reaped, and its
 * number taken by another task: a process outside, or a new thread of ours,
 * which as ourselves is our own memory (found by a review: a stalled stat's
 * result written into the supervisor). Hence:
 * - a write is made only right after the caller is seen waiting: in the
 *   microseconds between the two system calls its task would have to wake,
 *   exit and be reaped, and another task take its number;
 * - a read is used only if the caller still waited after it, but for the
 *   call's first read made as the caller, which follows the notification by
 *   microseconds with nothing the caller controls in between (its identity,
 *   read from /proc); every effect, and the answer itself, comes after
 *   yr_call_still_waits too.
 * (The caller's mem file, reached from the kept /proc/TID and so bound to
 * it, was tried: it forces every access, so read-only, sealed and code
 * pages were written where the kernel says EFAULT.) */
static ssize_t read_some(struct yr_call *c, void *out, size_t size, uint64_t addr)
{
    struct iovec l = { out, size }, r = { (void *)(uintptr_t)addr, size };
    ssize_t n = process_vm_readv(c->ev.tid, &l, 1, &r, 1, 0);
    int as_us = n < 0 && (errno == EPERM || errno == EACCES);
    if (as_us) {
        yr_fs_reset();
        n = process_vm_readv(c->ev.tid, &l, 1, &r, 1, 0);
        int e = errno;
        yr_fs_become(&c->id);
        if (n < 0 && (e == EPERM || e == EACCES))
            yr_refuse_unreachable(c);
        errno = e;
    }
    if (n > 0 && (c->mem_reads++ > 0 || as_us) && !yr_call_still_waits(c))
        return errno = ESRCH, -1;       /* its number may be another's: nobody to answer */
    return n;
}

/* Like the kernel's getname: up to the NUL, EFAULT on an unreadable byte
 * before it, ENAMETOOLONG without one in size bytes. Reads stop at page
 * ends, so a string just before an unmapped page is still read; the first
 * takes at most YR_FIRST_READ bytes (engine.h). */
int yr_read_path(struct yr_call *c, uint64_t addr, char *out, size_t size)
{
    const uint64_t page = 4096;
    size_t got = 0;
    while (got < size) {
        uint64_t at = addr + got;
        size_t chunk = got == 0 ? yr_first_read(at) : (size_t)(page - at % page);
        if (chunk > size - got)
            chunk = size - got;
        ssize_t n = read_some(c, out + got, chunk, at);
        if (n <= 0)
            return n == 0 || errno == EFAULT || errno == EIO ? -EFAULT : -errno;
        char *nul = memchr(out + got, '\0', (size_t)n);
        if (nul)
            return (int)(nul - out);
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

/* A path (or a symlink's target). */
int yr_read_str(struct yr_call *c, uint64_t addr, char *out)
{
    return yr_read_path(c, addr, out, YR_PATH_MAX);
}

/* size bytes at addr, all or -EFAULT. */
int yr_read_caller(struct yr_call *c, uint64_t addr, void *out, size_t size)
{
    return read_some(c, out, size, addr) == (ssize_t)size ? 0 : -EFAULT;
}

int yr_write_caller(struct yr_call *c, const struct iovec *local, int n,
                    const struct iovec *remote, int rn)
{
    ssize_t total = 0;
    for (int i = 0; i < rn; i++)
        total += (ssize_t)remote[i].iov_len;
    if (!yr_call_still_waits(c))
        return -EFAULT;                 /* its number may be another's: nobody to answer */
    ssize_t k = process_vm_writev(c->ev.tid, local, (unsigned long)n, remote, (unsigned long)rn, 0);
    if (k < 0 && (errno == EPERM || errno == EACCES)) {
        yr_fs_reset();
        if (yr_call_still_waits(c))
            k = process_vm_writev(c->ev.tid, local, (unsigned long)n, remote,
                                  (unsigned long)rn, 0);
        yr_fs_become(&c->id);
    }
    return k == total ? 0 : -EFAULT;
}

static pid_t cached_tgid(struct yr_ctx *ctx, pid_t tid);

/* The caller's process, found only when needed (yr_next leaves it 0): the
 * identity cache has it from this call's PIDFD_GET_INFO. */
pid_t yr_caller_tgid(struct yr_call *c)
{
    if (c->ev.tgid <= 0)
        c->ev.tgid = cached_tgid(c->ctx, c->ev.tid);
    if (c->ev.tgid <= 0)
        c->ev.tgid = yr_tgid_of(c->ev.tid);
    return c->ev.tgid;
}

/* name under the caller's /proc/TID as the caller; a caller that is not
 * dumpable may not open its own /proc entries as itself: then as us. */
int yr_proc_open(struct yr_call *c, const char *name, int flags)
{
    int fd = openat(c->procdir, name, flags | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        yr_fs_reset();
        fd = openat(c->procdir, name, flags | O_CLOEXEC);
        int e = errno;
        yr_fs_become(&c->id);
        errno = e;
    }
    return fd < 0 ? -errno : fd;
}

/* ---- the caller's resource limits ---------------------------------------- */

/* The /proc/PID/limits line of each limit read here. */
static const char *limit_name(int resource)
{
    switch (resource) {
    case RLIMIT_FSIZE: return "\nMax file size";
    case RLIMIT_MSGQUEUE: return "\nMax msgqueue size";
    default: return NULL;
    }
}

static uint64_t limit_value(const char **v)
{
    *v += strspn(*v, " ");
    uint64_t n = strncmp(*v, "unlimited", 9) == 0 ? RLIM_INFINITY : strtoull(*v, NULL, 10);
    *v += strcspn(*v, " ");
    return n;
}

/* The caller's limit of a resource the kernel judges on the current task's
 * (a call we make is judged on ours). prlimit as the caller: this thread has
 * its real ids, which is what check_prlimit_permission compares with the
 * target's (we may lack CAP_SYS_RESOURCE); a caller whose real, effective
 * and saved ids differ is read from its /proc/TID/limits instead. */
int yr_caller_limit(struct yr_call *c, int resource, struct rlimit *lim)
{
    if (prlimit(c->ev.tid, resource, NULL, lim) == 0)
        return 0;
    if (errno != EPERM)
        return -errno;
    int fd = yr_proc_open(c, "limits", O_RDONLY);
    if (fd < 0)
        return fd;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *key = limit_name(resource), *v = key ? strstr(buf, key) : NULL;
    if (!v)
        return -EPERM;
    v += strlen(key);
    lim->rlim_cur = limit_value(&v);
    lim->rlim_max = limit_value(&v);
    return 0;
}

/* ---- the caller's filesystem identity, cheaply ---------------------------
 *
 * /proc/TID/status costs ~13 us; PIDFD_GET_INFO on a kept pidfd ~1 us. A
 * thread's credentials change only by its own syscalls, and it is blocked in
 * ours, so a cached identity is right while its ids and capabilities are
 * unchanged and it made no setgroups, unshare or setns since (noticed,
 * below): its supplementary groups change with no id or mask changing, even
 * for a thread without capabilities (it may enter a user namespace of its
 * own, drop a group there and give its capabilities back), and a thread
 * that holds capabilities may enter another user namespace (unshare, setns)
 * keeping the same masks (a full set before and after, or capset back to
 * them), and then none of them is ours to lend. Only those two calls move
 * a thread to another user namespace (a clone into a new one is a new
 * task, with a new pidfd), and only the thread itself, waiting in the call
 * when it is noticed: so no look-up of it comes between the notice and the
 * change. A thread in another namespace already lends none. */
#define ID_CACHE 64
struct id_entry {
    pid_t tid;
    pid_t tgid;               /* from the last PIDFD_GET_INFO: a live tid's never changes */
    int pidfd;
    int procdir;              /* O_PATH /proc/TID: bound to its struct pid, like the pidfd */
    int root;                 /* O_PATH of its root once asked (yr_caller_root), or -1 */
    uint32_t ids[8];          /* ruid rgid euid egid suid sgid fsuid fsgid */
    uint64_t eff, perm;
    uint32_t notices;         /* noticed() of its tid when last refreshed */
    struct yr_fsid fsid;
};
struct yr_idcache {
    struct id_entry e[ID_CACHE];
    uint64_t own_userns;
};

/* setgroups, unshare and setns calls, counted per thread (a slot per tid modulo NOTICE_SLOTS:
 * another thread of the slot only makes an identity read again too often)
 * before each is continued (notify.c), for every receiver's cache: an
 * identity cached before its thread's count moved is read again. No look-up
 * can come between the count and the change it announces: only the thread
 * changes its own groups, and it waits in that setgroups meanwhile. */
#define NOTICE_SLOTS 4096
static _Atomic uint32_t notices[NOTICE_SLOTS];

void yr_identity_notice(pid_t tid)
{
    atomic_fetch_add(&notices[(unsigned)tid % NOTICE_SLOTS], 1);
}

static uint32_t noticed(pid_t tid)
{
    return atomic_load(&notices[(unsigned)tid % NOTICE_SLOTS]);
}

struct yr_idcache *yr_idcache_new(void)
{
    struct yr_idcache *ids = calloc(1, sizeof(*ids));
    for (int i = 0; ids && i < ID_CACHE; i++)
        ids->e[i].pidfd = ids->e[i].procdir = ids->e[i].root = -1;
    return ids;
}

static void entry_drop(struct id_entry *e)
{
    yr_close(e->pidfd);
    yr_close(e->procdir);
    yr_close(e->root);
    e->tid = e->tgid = 0;
    e->pidfd = e->procdir = e->root = -1;
}

void yr_idcache_free(struct yr_idcache *ids)
{
    for (int i = 0; ids && i < ID_CACHE; i++)
        entry_drop(&ids->e[i]);
    free(ids);
}

static int get_info(int pidfd, uint32_t ids[8], pid_t *tgid)
{
    struct yr_pidfd_info info;
    memset(&info, 0, sizeof(info));
    info.mask = YR_PIDFD_INFO_CREDS;
    if (ioctl(pidfd, YR_PIDFD_GET_INFO, &info) < 0 || !(info.mask & YR_PIDFD_INFO_CREDS))
        return -1;
    uint32_t v[8] = { info.ruid, info.rgid, info.euid, info.egid,
                      info.suid, info.sgid, info.fsuid, info.fsgid };
    memcpy(ids, v, sizeof(v));
    *tgid = (pid_t)info.tgid;
    return 0;
}

/* The user namespace of the task whose /proc directory dir is (AT_FDCWD:
 * "/proc/self"), by the number its ns/user link names ("user:[N]"); 0 when
 * it cannot be read (then it is no namespace of ours). */
static uint64_t userns_at(int dir)
{
    char link[48];
    ssize_t n = readlinkat(dir, dir == AT_FDCWD ? "/proc/self/ns/user" : "ns/user", link,
                           sizeof(link) - 1);
    if (n <= 6 || strncmp(link, "user:[", 6) != 0)
        return 0;
    link[n] = '\0';
    return strtoull(link + 6, NULL, 10);
}

static int refresh(struct yr_idcache *ids, struct id_entry *e, const struct yr_event *ev)
{
    /* Both handles are taken again: a tid reused since holds neither. The
     * /proc/TID directory, like the pidfd, stays bound to the struct pid it
     * was opened for: once its task is reaped, every lookup through it
     * fails, it never reaches a later task with the same number. But an
     * execve by another thread of the process hands the leader's struct
     * pid to that thread (de_thread): then both name the new image, which
     * is why what is read through them is checked before an effect
     * (yr_call_still_waits). The pidfd is asked (get_info) after the
     * directory is opened, so both name the same live task. */
    struct yr_creds c;
    uint32_t v[8];
    e->eff = e->perm = ~0ULL;  /* no caller has these: the entry is unusable until the end */
    yr_close(e->root);         /* whatever changed, the root is opened again */
    e->root = -1;
    e->notices = noticed(ev->tid);   /* before the groups are read */
    /* The look-ups below are ours to make: as the identity the thread last
     * took (another caller's, maybe without capabilities), /proc/TID/ns/user
     * of a new caller is out of reach and it would lose its capabilities. */
    yr_fs_reset();
    if (!(e->tid == ev->tid && e->pidfd >= 0 && e->procdir >= 0 &&
          get_info(e->pidfd, v, &e->tgid) == 0)) {
        entry_drop(e);
        e->pidfd = (int)syscall(SYS_pidfd_open, ev->tid, YR_PIDFD_THREAD);
        if (e->pidfd < 0)
            return -1;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d", (int)ev->tid);
        e->procdir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        e->tid = ev->tid;
        if (e->procdir < 0 || get_info(e->pidfd, v, &e->tgid) < 0) {
            entry_drop(e);
            return -1;
        }
    }
    if (yr_creds_read(ev->tid, &c) < 0)
        return errno == E2BIG ? -E2BIG : -1;
    if (!ids->own_userns)
        ids->own_userns = userns_at(AT_FDCWD);
    /* Capabilities held in another user namespace are not ours to lend. */
    uint64_t userns = userns_at(e->procdir);
    int foreign = !userns || userns != ids->own_userns;
    uint64_t caps = foreign ? 0 : ev->cap_effective;
    memcpy(e->ids, v, sizeof(v));
    e->eff = ev->cap_effective;
    e->perm = ev->cap_permitted;
    e->fsid = (struct yr_fsid){ .ruid = c.ruid, .rgid = c.rgid, .fsuid = c.fsuid,
                                .fsgid = c.fsgid, .ngroups = c.ngroups, .caps = caps,
                                .foreign_userns = (uint32_t)foreign };
    memcpy(e->fsid.groups, c.groups, c.ngroups * sizeof(c.groups[0]));
    return 0;
}

/* The caller's filesystem identity and its /proc/TID directory (bound to
 * the task; owned by the cache, valid until the next look-up). */
int yr_caller_identity(struct yr_ctx *ctx, const struct yr_event *ev, struct yr_fsid *out,
                       int *procdir)
{
    struct yr_idcache *ids = ctx->ids;
    struct id_entry *e = &ids->e[(unsigned)ev->tid % ID_CACHE];
    uint32_t v[8];
    int fresh = e->tid == ev->tid && e->pidfd >= 0 && e->notices == noticed(ev->tid) &&
                e->eff == ev->cap_effective && e->perm == ev->cap_permitted &&
                get_info(e->pidfd, v, &e->tgid) == 0 && memcmp(v, e->ids, sizeof(v)) == 0;
    int err = fresh ? 0 : refresh(ids, e, ev);
    /* What refresh read by the tid is the caller's only if it still waits
     * now: a call looked at again (a walk that raced) after its caller was
     * killed would keep, under that tid, the identity of the task that took
     * the number, read at any moment, between its setgroups's notice and
     * its change too (a review's suspicion), for that task's next calls. */
    if (!fresh && err == 0 && !yr_id_valid(ctx, ev->id)) {
        entry_drop(e);
        err = -1;
    }
    if (err < 0)     /* more groups than an identity keeps: refused, as the caller's are not all ours */
        return err == -E2BIG ? -EPERM : -ESRCH;
    *out = e->fsid;
    *procdir = e->procdir;
    return yr_fs_can_act_as(out) ? 0 : -EPERM;   /* ids we cannot take: fail closed */
}

/* ---- the caller's root ------------------------------------------------------
 *
 * Opening /proc/TID/root costs ~0.75 us a call; the root is kept with the
 * identity, for as long as no task of the sandbox may have moved a root.
 * A root moves by chroot, pivot_root (every task whose root was the old
 * one), setns into a mount namespace and unshare(CLONE_NEWNS), each routed
 * whenever a filter is (routes.py's identity_notice), and the first of
 * them seen makes every root be opened again for every call, for good; so
 * does an execve by a thread other than its process's leader, which takes
 * the leader's tid (and cache entry) with a root of its own: a thread
 * cloned with CLONE_NEWNS has a mount namespace no route saw it enter.
 * Not a count read again: the change comes after the notice, when the
 * kernel continues the call, and a root opened between the two (another
 * thread's, sharing the caller's fs_struct) would be kept as new. Nothing
 * else moves a root (mount and umount leave a task's root where it is;
 * exec keeps it; a new task has a new pidfd). A privileged process outside
 * the sandbox that calls pivot_root in its mount namespace is not seen
 * (docs/path-engine.md). */
static _Atomic int roots_moved;

void yr_roots_may_move(void)
{
    atomic_store(&roots_moved, 1);
}

/* The caller's root as an O_PATH fd: the cache's (*owned 0: valid until the
 * next look-up, as procdir) or one of its own for the call to close. */
int yr_caller_root(struct yr_call *c, int *owned)
{
    struct id_entry *e = &c->ctx->ids->e[(unsigned)c->ev.tid % ID_CACHE];
    int keep = e->tid == c->ev.tid && e->procdir == c->procdir && !atomic_load(&roots_moved);
    *owned = !keep;
    if (keep && e->root >= 0)
        return e->root;
    int fd = yr_proc_open(c, "root", O_PATH | O_DIRECTORY);
    if (fd >= 0 && keep)
        e->root = fd;
    if (fd == -EACCES || fd == -EPERM)
        yr_refuse_unreachable(c);
    return fd;
}

/* ---- ids as a caller in a user namespace of its own sees them ----------------
 *
 * A stat performed for a caller reports owners as our user namespace sees
 * them; the kernel reports them as the caller's does (from_kuid_munged):
 * mapped through its uid_map and gid_map, the overflow ids (65534) for what
 * its namespace does not map. Read from /proc/TID, each extent's lower id
 * is given in the reader's namespace, ours. A map is written once, so the
 * maps of a namespace, once written (never empty then), are kept per thread
 * with a descriptor of that namespace: held, it cannot be freed, so its
 * inode number, the key, names no later namespace. */
#define MAP_EXTENTS 16
struct idmap {
    uint32_t n;
    struct { uint32_t first, lower, count; } ext[MAP_EXTENTS];
};
static __thread struct {
    uint64_t userns;          /* the namespace both maps are of (0: none kept) */
    int nsfd;                 /* held while they are kept */
    struct idmap uid, gid;
} maps = { 0, -1, { 0 }, { 0 } };

static uint32_t overflow_id(const char *name)
{
    char path[64], buf[16];
    snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
    return yr_read_text(path, buf, sizeof(buf)) > 0 ? (uint32_t)strtoul(buf, NULL, 10) : 65534;
}

/* m read from procdir's entry name: 1, 0 when none is written yet (m maps
 * nothing: every id is unmapped), or -1 (unreadable, or more extents than
 * kept). */
static int map_read(struct idmap *m, int procdir, const char *name)
{
    m->n = 0;
    char buf[MAP_EXTENTS * 36 + 1];
    int fd = openat(procdir, name, O_RDONLY | O_CLOEXEC);
    ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    yr_close(fd);
    if (len == 0)
        return 0;
    if (len < 0 || len == (ssize_t)sizeof(buf) - 1)
        return -1;
    buf[len] = '\0';
    for (char *line = buf; *line && m->n < MAP_EXTENTS; ) {
        char *end;
        unsigned long first = strtoul(line, &end, 10);
        unsigned long lower = strtoul(end, &end, 10);
        unsigned long count = strtoul(end, &end, 10);
        if (lower != 0xFFFFFFFFUL) {             /* unmapped in ours: maps nothing we see */
            m->ext[m->n].first = (uint32_t)first;
            m->ext[m->n].lower = (uint32_t)lower;
            m->ext[m->n++].count = (uint32_t)count;
        }
        line = strchr(end, '\n');
        if (!line)
            break;
        line++;
    }
    return 0;
}

/* The maps of the caller whose /proc directory procdir is: 0, or -1. */
static int maps_load(int procdir)
{
    struct stat st;
    int nsfd = openat(procdir, "ns/user", O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || fstat(nsfd, &st) < 0) {
        yr_close(nsfd);
        return -1;
    }
    if (maps.userns == (uint64_t)st.st_ino && maps.nsfd >= 0) {
        close(nsfd);                             /* the one kept (it is held) */
        return 0;
    }
    yr_close(maps.nsfd);
    maps.nsfd = -1;
    maps.userns = 0;
    int uid = map_read(&maps.uid, procdir, "uid_map");
    int gid = map_read(&maps.gid, procdir, "gid_map");
    if (uid < 0 || gid < 0) {
        close(nsfd);
        return -1;
    }
    if (!uid || !gid) {          /* one not written yet (it may be, once): not kept */
        close(nsfd);
        return 0;
    }
    maps.nsfd = nsfd;
    maps.userns = (uint64_t)st.st_ino;
    return 0;
}

static uint32_t map_down(const struct idmap *m, uint32_t id, uint32_t overflow)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (id >= m->ext[i].lower && id - m->ext[i].lower < m->ext[i].count)
            return m->ext[i].first + (id - m->ext[i].lower);
    return overflow;
}

/* The maps of the caller's user namespace as it is now: 0 or -1. Looked at
 * on every use (maps_load keeps the maps of the namespace last seen): a
 * caller in a namespace of its own may enter another below it (unshare,
 * setns) with the same ids and capabilities, which the identity cache does
 * not look at for it (none of its capabilities is lent either way). */
static int callers_maps(struct yr_call *c)
{
    yr_fs_pause();               /* ns/user: ptrace-read access, ours (its own namespace's
                                    capabilities are not lent to us) */
    int rc = maps_load(c->procdir);
    yr_fs_resume();
    return rc;
}

void yr_ids_for_caller(struct yr_call *c, uint32_t *uid, uint32_t *gid)
{
    static uint32_t overflow_uid, overflow_gid;
    if (!c->id.foreign_userns)
        return;
    if (!overflow_uid) {
        overflow_gid = overflow_id("overflowgid");
        overflow_uid = overflow_id("overflowuid");
    }
    int ok = callers_maps(c) == 0;
    *uid = ok ? map_down(&maps.uid, *uid, overflow_uid) : overflow_uid;
    *gid = ok ? map_down(&maps.gid, *gid, overflow_gid) : overflow_gid;
}

/* id, as the caller's namespace names it, in ours: 0, or -EINVAL for an id
 * its namespace does not map (make_kuid gives no valid id: chown's EINVAL).
 * -1 stays -1 ("no change"). */
static int map_up(const struct idmap *m, uint32_t *id)
{
    if (*id == (uint32_t)-1)
        return 0;
    for (uint32_t i = 0; i < m->n; i++)
        if (*id >= m->ext[i].first && *id - m->ext[i].first < m->ext[i].count) {
            *id = m->ext[i].lower + (*id - m->ext[i].first);
            return 0;
        }
    return -EINVAL;
}

/* The ids a caller in a user namespace of its own gives (chown's): in ours,
 * as the kernel takes them (chown_common: make_kuid in the caller's
 * namespace). 0 or -errno. */
int yr_ids_from_caller(struct yr_call *c, uint32_t *uid, uint32_t *gid)
{
    if (!c->id.foreign_userns)
        return 0;
    if (callers_maps(c) < 0)
        return -EPERM;                           /* its maps unknown: refused, not guessed */
    int err = map_up(&maps.uid, uid);
    return err < 0 ? err : map_up(&maps.gid, gid);
}

/* A POSIX ACL's xattr value (system.posix_acl_access or _default: a 4-byte
 * version, then 8-byte entries of tag, permissions and id) with its named
 * users' and groups' ids moved between the caller's namespace and ours, as
 * the kernel moves them for the caller: up for a value it sets (EINVAL for
 * an id its namespace does not map), down for one it reads (-1 for an id it
 * does not see). 0 or -errno; a value of another shape is left to the
 * kernel's own check. */
#define ACL_USER_TAG 0x02
#define ACL_GROUP_TAG 0x08

int yr_acl_ids(struct yr_call *c, const char *name, unsigned char *v, size_t n, int up)
{
    if (!c->id.foreign_userns || (strcmp(name, "system.posix_acl_access") != 0 &&
                                  strcmp(name, "system.posix_acl_default") != 0))
        return 0;
    if (n < 4 || (n - 4) % 8 != 0)
        return 0;
    if (callers_maps(c) < 0)
        return -EPERM;
    for (size_t at = 4; at < n; at += 8) {
        uint16_t tag;
        uint32_t id;
        memcpy(&tag, v + at, 2);
        if (tag != ACL_USER_TAG && tag != ACL_GROUP_TAG)
            continue;
        memcpy(&id, v + at + 4, 4);
        const struct idmap *m = tag == ACL_USER_TAG ? &maps.uid : &maps.gid;
        if (up) {
            if (id == (uint32_t)-1 || map_up(m, &id) < 0)
                return -EINVAL;
        } else {
            id = map_down(m, id, (uint32_t)-1);
        }
        memcpy(v + at + 4, &id, 4);
    }
    return 0;
}

/* tid's process, as this call's identity look-up found it (0: not known). */
static pid_t cached_tgid(struct yr_ctx *ctx, pid_t tid)
{
    const struct id_entry *e = &ctx->ids->e[(unsigned)tid % ID_CACHE];
    return e->tid == tid && e->pidfd >= 0 ? e->tgid : 0;
}
