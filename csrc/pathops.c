/* Paths as the caller sees them, and link/linkat performed for it.
 *
 * Each path is read once from the caller's memory. The source is captured as
 * an O_PATH fd and the new name's parent as another, both resolved from the
 * caller's cwd, dirfds and root while this thread acts with the caller's
 * filesystem identity, so every search permission is the caller's. The
 * decision is taken on the facts of that fd, and the link is made from that
 * same fd: no other thread can change what is linked after the check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "yama.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#define CAP_FOWNER 3
#define CAP_SETGID 6
#define CAP_DAC_OVERRIDE 1
#define PIDFD_THREAD O_EXCL

/* Debian 12's headers predate PIDFD_GET_INFO (6.13): its first 64 bytes. */
struct pidfd_info_v0 {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define PIDFD_INFO_CREDS (1UL << 1)
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info_v0)

/* ---- reading a path from the caller ------------------------------------ */

/* Like the kernel's getname: up to the NUL, EFAULT on an unreadable byte
 * before it, ENAMETOOLONG without one in PATH_MAX bytes. Reads stop at page
 * ends, so a string just before an unmapped page is still read. */
int yr_read_path(pid_t tid, uint64_t addr, char *out, size_t size)
{
    const uint64_t page = 4096;
    size_t got = 0;
    while (got < size) {
        uint64_t at = addr + got;
        size_t chunk = (size_t)(page - at % page);
        if (chunk > size - got)
            chunk = size - got;
        struct iovec local = { out + got, chunk };
        struct iovec remote = { (void *)(uintptr_t)at, chunk };
        ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        if (n <= 0)
            return n == 0 || errno == EFAULT || errno == EIO ? -EFAULT : -errno;
        char *nul = memchr(out + got, '\0', (size_t)n);
        if (nul)
            return (int)(nul - out);
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

/* ---- the caller's filesystem identity, cheaply ---------------------------
 *
 * /proc/TID/status costs ~13 us; PIDFD_GET_INFO on a kept pidfd ~1 us. A
 * thread's credentials change only by its own syscalls, and it is blocked in
 * ours, so a cached identity is right while its ids and capabilities are
 * unchanged, except for the supplementary groups, which only a thread that
 * may setgroups (CAP_SETGID permitted) can change without changing those;
 * for a thread that may, the groups are read again unless they cannot
 * matter (CAP_DAC_OVERRIDE in effect). */
#define ID_CACHE 64
struct id_entry {
    pid_t tid;
    int pidfd;
    int procdir;              /* O_PATH /proc/TID: bound to the task, like the pidfd */
    uint32_t ids[8];          /* ruid rgid euid egid suid sgid fsuid fsgid */
    uint64_t eff, perm;
    struct yr_fsid fsid;
};
static struct id_entry id_cache[ID_CACHE];
static uint64_t own_userns;

static int get_info(int pidfd, uint32_t ids[8])
{
    struct pidfd_info_v0 info;
    memset(&info, 0, sizeof(info));
    info.mask = PIDFD_INFO_CREDS;
    if (ioctl(pidfd, PIDFD_GET_INFO, &info) < 0 || !(info.mask & PIDFD_INFO_CREDS))
        return -1;
    uint32_t v[8] = { info.ruid, info.rgid, info.euid, info.egid,
                      info.suid, info.sgid, info.fsuid, info.fsgid };
    memcpy(ids, v, sizeof(v));
    return 0;
}

static uint64_t userns_of(pid_t tid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tid);
    return stat(path, &st) < 0 ? 0 : (uint64_t)st.st_ino;
}

static void entry_drop(struct id_entry *e)
{
    if (e->tid > 0 && e->pidfd >= 0)
        close(e->pidfd);
    if (e->tid > 0 && e->procdir >= 0)
        close(e->procdir);
    e->tid = 0;
    e->pidfd = e->procdir = -1;
}

static int refresh(struct id_entry *e, const struct yr_event *ev)
{
    /* Both handles are taken again: a tid reused since holds neither. The
     * /proc/TID directory, like the pidfd, stays bound to the task it was
     * opened for (its struct pid): once that task is gone, every lookup
     * through it fails, it never reaches a later task with the same number.
     * The pidfd is asked (get_info) after the directory is opened, so both
     * name the same live task. */
    struct yr_creds c;
    uint32_t ids[8];
    e->eff = e->perm = ~0ULL;  /* no caller has these: the entry is unusable until the end */
    if (e->tid == ev->tid && e->pidfd >= 0 && e->procdir >= 0 && get_info(e->pidfd, ids) == 0)
        goto opened;           /* the same live task: its handles are still right */
    entry_drop(e);
    e->pidfd = (int)syscall(SYS_pidfd_open, ev->tid, PIDFD_THREAD);
    if (e->pidfd < 0)
        return -1;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d", (int)ev->tid);
    e->procdir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e->procdir < 0) {
        close(e->pidfd);
        e->pidfd = -1;
        return -1;
    }
    e->tid = ev->tid;
    if (get_info(e->pidfd, ids) < 0) {
        entry_drop(e);
        return -1;
    }
opened:
    if (yr_creds_read(ev->tid, &c) < 0)
        return -1;
    if (!own_userns)
        own_userns = userns_of(getpid());
    /* Capabilities held in another user namespace are not ours to lend. */
    uint64_t caps = userns_of(ev->tid) == own_userns ? ev->cap_effective : 0;
    memcpy(e->ids, ids, sizeof(ids));
    e->eff = ev->cap_effective;
    e->perm = ev->cap_permitted;
    e->fsid = (struct yr_fsid){ .ruid = c.ruid, .rgid = c.rgid, .fsuid = c.fsuid,
                                .fsgid = c.fsgid, .ngroups = c.ngroups, .caps = caps };
    memcpy(e->fsid.groups, c.groups, c.ngroups * sizeof(c.groups[0]));
    return 0;
}

static struct id_entry *caller_entry(const struct yr_event *ev)
{
    struct id_entry *e = &id_cache[(unsigned)ev->tid % ID_CACHE];
    uint32_t ids[8];
    int groups_settled = !(ev->cap_permitted >> CAP_SETGID & 1) ||
                         (ev->cap_effective >> CAP_DAC_OVERRIDE & 1);
    if (e->tid == ev->tid && e->pidfd >= 0 && groups_settled &&
        e->eff == ev->cap_effective && e->perm == ev->cap_permitted &&
        get_info(e->pidfd, ids) == 0 && memcmp(ids, e->ids, sizeof(ids)) == 0)
        return e;
    return refresh(e, ev) < 0 ? NULL : e;
}

static __thread struct yr_fsid last_fsid;  /* whom the pending op is for */
static __thread int given_src = -1;        /* linkat's source, already walked by walk.c */

/* For walk.c: the caller's filesystem identity and its /proc/TID directory
 * (bound to the task; owned by the cache, valid until the next look-up). */
int yr_caller_identity(const struct yr_event *ev, struct yr_fsid *out, int *procdir)
{
    struct id_entry *e = caller_entry(ev);
    if (!e)
        return -ESRCH;
    *out = e->fsid;
    *procdir = e->procdir;
    return 0;
}

/* ---- the caller's root ----------------------------------------------------
 *
 * With the caller's root ours, its paths resolve the same from here. Else
 * this thread (with its own fs_struct) chroots to the caller's root for the
 * resolution, so ".." and absolute paths and symlinks stop where the
 * caller's would. */
static __thread int fs_unshared = -1, own_root = -1, own_cwd = -1;

/* Is the caller's root the very directory and mount that is ours? Asked
 * through its /proc/TID directory (bound to the task, see refresh) by
 * following "root" and comparing device, inode and mount id with our own
 * root's: a path string ("/" from readlink) would also say "/" for the root
 * of another mount namespace or a root that d_path cannot reach from ours,
 * whose paths do not resolve as ours. A mount id is unique among live mounts,
 * and our root's mount lives as long as we do. Any failure: "no", and the
 * caller's root is entered (the slow, always correct way). */
static __thread int own_root_known;
static __thread struct statx own_root_stx;

static int same_root(const struct statx *a, const struct statx *b)
{
    return a->stx_ino == b->stx_ino && a->stx_dev_major == b->stx_dev_major &&
           a->stx_dev_minor == b->stx_dev_minor && a->stx_mnt_id == b->stx_mnt_id;
}

static int root_is_ours(int procdir)
{
    struct statx sx;
    if (!own_root_known) {     /* this thread is never chrooted outside yr_link_settle */
        if (statx(AT_FDCWD, "/", 0, STATX_INO | STATX_MNT_ID, &own_root_stx) < 0 ||
            !(own_root_stx.stx_mask & STATX_MNT_ID))
            return 0;
        own_root_known = 1;
    }
    if (statx(procdir, "root", 0, STATX_INO | STATX_MNT_ID, &sx) < 0 ||
        (sx.stx_mask & (STATX_INO | STATX_MNT_ID)) != (STATX_INO | STATX_MNT_ID))
        return 0;
    return same_root(&sx, &own_root_stx);
}

static int enter_root(pid_t tid)
{
    char path[64];
    if (fs_unshared < 0) {
        if (unshare(CLONE_FS) < 0)
            return -errno;
        own_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        fs_unshared = 1;
    }
    own_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/%d/root", (int)tid);
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -ESRCH;
    int rc = fchdir(fd) == 0 && chroot(".") == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static void leave_root(void)
{
    if (fchdir(own_root) < 0 || chroot(".") < 0 || fchdir(own_cwd) < 0)
        abort();               /* resolving the next caller's paths here would be wrong */
    close(own_cwd);
    own_cwd = -1;
}

/* ---- resolution ------------------------------------------------------------ */

#define AT_FDCWD_INT (-100)

/* Where a relative path starts: the caller's cwd or its dirfd, as an O_PATH
 * fd of ours. want_dir: the kernel needs a directory (a non-empty path). */
static int start_dir(pid_t tid, int32_t dirfd, int want_dir)
{
    char path[64];
    if (dirfd == AT_FDCWD_INT)
        snprintf(path, sizeof(path), "/proc/%d/cwd", (int)tid);
    else if (dirfd < 0)
        return -EBADF;
    else
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)tid, dirfd);
    int fd = open(path, O_PATH | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0));
    if (fd >= 0)
        return fd;
    if (errno == ENOTDIR)
        return -ENOTDIR;
    return dirfd == AT_FDCWD_INT ? -ESRCH : -EBADF;
}

/* /proc/self names the walking task: for the caller's paths it must name the
 * caller, not us. */
static pid_t caller_tgid(const struct yr_event *ev)
{
    /* Found lazily for links (yr_next leaves it 0): most never need it. */
    if (ev->tgid <= 0)
        ((struct yr_event *)ev)->tgid = yr_tgid_of(ev->tid);
    return ev->tgid;
}

static const char *as_caller(const char *p, const struct yr_event *ev, char *buf, size_t size)
{
    const char *rest = NULL;
    int n;
    if (strncmp(p, "/proc/self", 10) == 0 && (p[10] == '/' || p[10] == '\0')) {
        rest = p + 10;
        n = snprintf(buf, size, "/proc/%d%s", caller_tgid(ev), rest);
    } else if (strncmp(p, "/proc/thread-self", 17) == 0 && (p[17] == '/' || p[17] == '\0')) {
        rest = p + 17;
        n = snprintf(buf, size, "/proc/%d/task/%d%s", caller_tgid(ev), ev->tid, rest);
    } else {
        return p;
    }
    return n > 0 && (size_t)n < size ? buf : p;
}

/* Split new into its parent and last component, as filename_parentat does.
 * Returns 0, or -EEXIST for ".", ".." and "/" (the kernel's LAST_DOT etc.);
 * *trailing is set when slashes follow the last component. */
static int split_last(char *path, const char **dir, const char **last, int *trailing)
{
    size_t len = strlen(path);
    size_t end = len;
    while (end > 0 && path[end - 1] == '/')
        end--;
    *trailing = end < len;
    if (end == 0)
        return -EEXIST;                       /* "/" or "///" */
    size_t start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    path[end] = '\0';
    *last = path + start;
    if (strcmp(*last, ".") == 0 || strcmp(*last, "..") == 0)
        return -EEXIST;
    if (start == 0) {
        *dir = NULL;                          /* the start directory itself */
    } else {
        size_t dend = start;
        while (dend > 1 && path[dend - 1] == '/')
            dend--;
        if (dend == 1 && path[0] == '/') {
            *dir = "/";
        } else {
            path[dend] = '\0';
            *dir = path;
        }
    }
    return 0;
}

struct link_args {
    int32_t olddfd, newdfd, flags;
    uint64_t oldp, newp;
};

static void decode(const struct yr_event *ev, struct link_args *a)
{
    int compat = ev->arch == 0x40000003;      /* i386: 32-bit pointers */
    uint64_t mask = compat ? 0xFFFFFFFFu : ~0ULL;
    if (ev->sys == YR_SYS_LINK) {
        *a = (struct link_args){ AT_FDCWD_INT, AT_FDCWD_INT, 0, ev->args[0] & mask,
                                 ev->args[1] & mask };
    } else {
        *a = (struct link_args){ (int32_t)ev->args[0], (int32_t)ev->args[2],
                                 (int32_t)ev->args[4], ev->args[1] & mask,
                                 ev->args[3] & mask };
    }
}

static void op_close(struct yr_link *op)
{
    if (op->src_fd >= 0)
        close(op->src_fd);
    if (op->dir_fd >= 0)
        close(op->dir_fd);
    op->src_fd = op->dir_fd = -1;
}

/* Open path relative to start (an fd of ours, or -1: absolute only). */
static int open_at(int start, const char *path, int flags)
{
    int fd = openat(path[0] == '/' || start < 0 ? AT_FDCWD : start, path,
                    flags | O_PATH | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* The caller's own view: as_caller'd path, started at its dirfd or cwd. The
 * proc handles are taken before any chroot or identity switch. */
struct starts {
    int old_start, new_start;
    int new_err;               /* the new side's start failed: reported after the old side */
};

static void starts_close(struct starts *s)
{
    if (s->old_start >= 0)
        close(s->old_start);
    if (s->new_start >= 0 && s->new_start != s->old_start)
        close(s->new_start);
    s->old_start = s->new_start = -1;
}

/* Capture both objects as the caller. Returns 0 or -errno (the reply). */
static int capture(const struct yr_event *ev, const struct link_args *a,
                   struct starts *s, struct yr_link *op)
{
    char buf[YR_PATH_MAX + 64];
    int empty = op->old_path[0] == '\0';
    if (given_src >= 0) {
        op->src_fd = fcntl(given_src, F_DUPFD_CLOEXEC, 0);
    } else if (empty) {                        /* AT_EMPTY_PATH: the dirfd itself */
        op->src_fd = fcntl(s->old_start, F_DUPFD_CLOEXEC, 0);
    } else {
        int follow = a->flags & AT_SYMLINK_FOLLOW;
        op->src_fd = open_at(s->old_start, as_caller(op->old_path, ev, buf, sizeof(buf)),
                             follow ? 0 : O_NOFOLLOW);
    }
    if (op->src_fd < 0)
        return op->src_fd;
    if (op->new_path[0] == '\0')
        return -ENOENT;
    if (s->new_err)
        return s->new_err;
    memcpy(op->name, op->new_path, sizeof(op->name));
    const char *dir, *last;
    int trailing;
    int rc = split_last(op->name, &dir, &last, &trailing);
    if (rc == -EEXIST) {
        /* The parent walk still comes first: "missing/." is ENOENT. */
        int probe = open_at(s->new_start, as_caller(op->new_path, ev, buf, sizeof(buf)), 0);
        if (probe < 0)
            return probe;
        close(probe);
        return -EEXIST;
    }
    if (dir) {
        op->dir_fd = open_at(s->new_start, as_caller(dir, ev, buf, sizeof(buf)), O_DIRECTORY);
    } else {                                   /* the start itself: take it over */
        op->dir_fd = s->new_start;
        if (s->old_start == s->new_start)
            s->old_start = -1;
        s->new_start = -1;
    }
    if (op->dir_fd < 0)
        return op->dir_fd;
    memmove(op->name, last, strlen(last) + 1);
    op->trailing = trailing;
    return 0;
}

/* The errors the kernel finds between the two lookups and may_linkat:
 * an existing new name, a trailing slash, a read-only mount, two mounts. */
static int before_rule(struct yr_link *op)
{
    struct stat st;
    if (fstatat(op->dir_fd, op->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return -EEXIST;
    if (errno != ENOENT)
        return -errno;
    if (op->trailing)
        return -ENOENT;
    struct statvfs vfs;
    if (fstatvfs(op->dir_fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        return -EROFS;
    struct statx a, b;
    if (statx(op->src_fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) == 0 &&
        statx(op->dir_fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &b) == 0 &&
        (a.stx_mask & STATX_MNT_ID) && a.stx_mnt_id != b.stx_mnt_id)
        return -EXDEV;
    return 0;
}

static uint32_t base_facts(const struct yr_fsid *id, struct yr_link *op)
{
    struct stat st;
    if (fstat(op->src_fd, &st) < 0)
        return 0;
    op->uid = st.st_uid;
    op->gid = st.st_gid;
    op->mode = st.st_mode;
    op->fsuid = id->fsuid;
    uint32_t f = 0;
    if (st.st_uid == id->fsuid)
        f |= YR_LF_OWNER;
    if (id->caps >> CAP_FOWNER & 1)
        f |= YR_LF_FOWNER;
    if (S_ISREG(st.st_mode))
        f |= YR_LF_REGULAR;
    if (st.st_mode & S_ISUID)
        f |= YR_LF_SETUID;
    if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        f |= YR_LF_SETGID_EXEC;
    return f;
}

/* inode_permission(MAY_READ | MAY_WRITE), asked of the kernel as the caller. */
static int caller_can_rw(int fd)
{
    return syscall(SYS_faccessat2, fd, "", R_OK | W_OK, AT_EMPTY_PATH | AT_EACCESS) == 0;
}

int yr_link_table_allows(uint64_t allow_mask, uint32_t facts)
{
    return (int)(allow_mask >> (facts & ((1u << YR_LF_COUNT) - 1)) & 1);
}

/* Is the decision already known without the (costlier) RW fact? */
static int known_without_rw(uint64_t mask, uint32_t facts)
{
    return yr_link_table_allows(mask, facts & ~YR_LF_RW) ==
           yr_link_table_allows(mask, facts | YR_LF_RW);
}

static int perform(struct yr_ctx *ctx, uint64_t id, struct yr_link *op, int same_session)
{
    if (!yr_id_valid(ctx, id))
        return 0;                              /* the caller is gone: do nothing */
    long rc;
    if (same_session) {
        /* The fd was opened with these very credentials: AT_EMPTY_PATH is allowed. */
        rc = linkat(op->src_fd, "", op->dir_fd, op->name, AT_EMPTY_PATH);
    } else {
        char self[64];
        snprintf(self, sizeof(self), "/proc/self/fd/%d", op->src_fd);
        rc = linkat(AT_FDCWD, self, op->dir_fd, op->name, AT_SYMLINK_FOLLOW);
    }
    int err = rc < 0 ? errno : 0;
    return yr_reply(ctx, id, 0, err);
}

/* Both strings in one process_vm_readv (one mm look-up and access check
 * instead of two), each read up to its page end as yr_read_path does. Used
 * only when it gives both NULs; anything else (a fault, a long string) is
 * read again one string at a time, for the kernel's errors in its order. */
static int read_both(pid_t tid, const struct link_args *a, struct yr_link *op)
{
    const uint64_t page = 4096;
    size_t c1 = (size_t)(page - a->oldp % page), c2 = (size_t)(page - a->newp % page);
    struct iovec local[2] = { { op->old_path, c1 }, { op->new_path, c2 } };
    struct iovec remote[2] = { { (void *)(uintptr_t)a->oldp, c1 },
                               { (void *)(uintptr_t)a->newp, c2 } };
    ssize_t n = process_vm_readv(tid, local, 2, remote, 2, 0);
    if (n != (ssize_t)(c1 + c2))
        return -1;
    char *z1 = memchr(op->old_path, '\0', c1), *z2 = memchr(op->new_path, '\0', c2);
    if (!z1 || !z2)
        return -1;
    return (int)(z1 - op->old_path);
}

static int read_paths(const struct yr_event *ev, const struct link_args *a, struct yr_link *op)
{
    int n = read_both(ev->tid, a, op);
    if (n >= 0)
        return n == 0 && !(a->flags & AT_EMPTY_PATH) ? -ENOENT : 0;
    n = yr_read_path(ev->tid, a->oldp, op->old_path, sizeof(op->old_path));
    if (n == -EPERM || n == -EACCES) {         /* not readable as the caller: as ourselves */
        yr_fs_reset();
        n = yr_read_path(ev->tid, a->oldp, op->old_path, sizeof(op->old_path));
    }
    if (n < 0)
        return n;
    if (n == 0 && !(a->flags & AT_EMPTY_PATH))
        return -ENOENT;
    n = yr_read_path(ev->tid, a->newp, op->new_path, sizeof(op->new_path));
    return n < 0 ? n : 0;
}

static int open_starts(const struct yr_event *ev, const struct link_args *a,
                       const struct yr_link *op, struct starts *s)
{
    s->old_start = s->new_start = -1;
    s->new_err = 0;
    int old_rel = op->old_path[0] != '/';
    int new_rel = op->new_path[0] != '/';
    if (old_rel) {
        s->old_start = start_dir(ev->tid, a->olddfd, op->old_path[0] != '\0');
        if (s->old_start < 0)
            return s->old_start;
    }
    if (new_rel) {
        if (old_rel && a->newdfd == a->olddfd && op->old_path[0] != '\0')
            s->new_start = s->old_start;
        else
            s->new_start = start_dir(ev->tid, a->newdfd, 1);
        if (s->new_start < 0) {
            s->new_err = s->new_start;         /* the old path's errors come first */
            return s->new_err == -ESRCH ? -ESRCH : 0;
        }
    }
    return 0;
}


static int retry_as_us(int err, const struct starts *s)
{
    return err == -ESRCH || err == -EBADF || s->new_err == -ESRCH || s->new_err == -EBADF;
}

/* ---- the common case, with as few /proc look-ups as correctness allows ----
 *
 * A look-up through a /proc magic link (cwd, fd/N, root) is the dearest step
 * here (the walk is retried out of RCU mode), so the common case makes one:
 *
 * - A relative path with no ".." component, walked from the caller's cwd or
 *   dirfd (an O_PATH fd of ours taken through its /proc/TID directory) with
 *   RESOLVE_NO_SYMLINKS, never consults a root: only "..", an absolute path
 *   and a symlink do. Its result is the caller's whatever its root is, and
 *   the caller's root is not looked at.
 * - Anything else (an absolute path, "..", a symlink met on the way) needs
 *   the caller's root to be ours (root_is_ours); then the path, walked from
 *   the same start fd (or from our root when absolute), resolves exactly as
 *   the caller's: same objects, same '..' stop, same absolute links.
 *
 * Both walks run as the caller (yr_fs_become), so every permission is its
 * own. The source is captured as an O_PATH fd and decided on as below; the
 * new name's parent is taken once (an fd, the start itself for a single
 * component, or, absolute with our root, by the linkat's own walk: nothing
 * is decided on it) and the link is made from the captured source into it. On any
 * failure of a look-up nothing has been made, and the general path below
 * starts again from the paths already read, for the caller's exact errno. */
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#endif
struct yr_open_how {
    uint64_t flags, mode, resolve;
};

struct fast {
    int procdir;
    int root;                  /* -1 unknown, 0 not ours, 1 ours */
    int32_t dfd[2];            /* the caller's dirfds whose starts are open */
    int start[2];
};

static int has_dotdot(const char *p)
{
    for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
        if ((c == p || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
            return 1;
    return 0;
}

static int fast_root(struct fast *f)
{
    if (f->root < 0)
        f->root = root_is_ours(f->procdir);
    return f->root;
}

/* The caller's dirfd (or cwd) as an O_PATH fd of ours, kept for the call. */
static int fast_start(struct fast *f, int32_t dirfd)
{
    for (int i = 0; i < 2; i++)
        if (f->start[i] >= 0 && f->dfd[i] == dirfd)
            return f->start[i];
    int slot = f->start[0] < 0 ? 0 : 1;
    char name[32];
    if (dirfd == AT_FDCWD_INT)
        snprintf(name, sizeof(name), "cwd");
    else if (dirfd >= 0)
        snprintf(name, sizeof(name), "fd/%d", (int)dirfd);
    else
        return -1;
    int fd = openat(f->procdir, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    f->dfd[slot] = dirfd;
    f->start[slot] = fd;
    return fd;
}

/* Open path as the caller would (see above), or -1 (general path). */
static int fast_open(struct fast *f, const struct yr_event *ev, int32_t dirfd,
                     const char *path, int flags)
{
    char buf[YR_PATH_MAX + 64];
    flags |= O_PATH | O_CLOEXEC;
    if (path[0] == '/')
        return fast_root(f) ? openat(AT_FDCWD, as_caller(path, ev, buf, sizeof(buf)), flags) : -1;
    int start = fast_start(f, dirfd);
    if (start < 0)
        return -1;
    if (!has_dotdot(path)) {
        struct yr_open_how how = { (uint64_t)flags, 0,
                                   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        int fd = (int)syscall(SYS_openat2, start, path, &how, sizeof(how));
        if (fd >= 0 || errno != ELOOP)
            return fd;                         /* ELOOP: a symlink on the way */
    }
    return fast_root(f) ? openat(start, path, flags) : -1;
}

static void fast_close(struct fast *f)
{
    for (int i = 0; i < 2; i++)
        if (f->start[i] >= 0)
            close(f->start[i]);
}

/* The new name as the general path takes it: not empty, no trailing slash,
 * not ending in "." or "..". */
static int plain_new_name(const char *p)
{
    size_t len = strlen(p);
    if (len == 0 || p[len - 1] == '/')
        return 0;
    const char *last = strrchr(p, '/');
    last = last ? last + 1 : p;
    return strcmp(last, ".") != 0 && strcmp(last, "..") != 0;
}

/* 1: settled (replied); 0: not settled here, nothing made, op's descriptors
 * closed. Runs as the caller (yr_fs_become). */
static int fast_link_in(struct fast *f, struct yr_ctx *ctx, const struct yr_event *ev,
                        const struct link_args *a, struct yr_link *op, uint64_t mask)
{
    if (op->old_path[0] == '\0' || !plain_new_name(op->new_path))
        return 0;
    int follow = a->flags & AT_SYMLINK_FOLLOW;
    op->src_fd = given_src >= 0 ? fcntl(given_src, F_DUPFD_CLOEXEC, 0)
                                : fast_open(f, ev, a->olddfd, op->old_path, follow ? 0 : O_NOFOLLOW);
    if (op->src_fd < 0)
        return 0;
    op->facts = base_facts(&last_fsid, op);
    if (!known_without_rw(mask, op->facts) || !yr_link_table_allows(mask, op->facts))
        return 0;
    /* The new name's parent: split as split_last does for a plain name. */
    memcpy(op->name, op->new_path, sizeof(op->name));
    char *slash = strrchr(op->name, '/');
    int parent;
    const char *last;
    char buf[YR_PATH_MAX + 64];
    if (op->name[0] == '/') {
        /* Absolute and our root: linkat walks it as the caller would, once. */
        if (!fast_root(f))
            return 0;
        parent = AT_FDCWD;
        last = as_caller(op->name, ev, buf, sizeof(buf));
    } else if (!slash) {
        parent = fast_start(f, a->newdfd);
        last = op->name;
        if (parent < 0)
            return 0;
    } else {
        last = slash + 1;
        char *dend = slash;
        while (dend > op->name && dend[-1] == '/')
            dend--;
        *dend = '\0';                           /* not empty: the name is relative */
        op->dir_fd = fast_open(f, ev, a->newdfd, op->name, O_DIRECTORY);
        parent = op->dir_fd;
        if (parent < 0)
            return 0;
    }
    if (!yr_id_valid(ctx, ev->id))
        return 1;                              /* the caller is gone: do nothing */
    /* The fd was opened with these very credentials: AT_EMPTY_PATH is allowed. */
    int rc = linkat(op->src_fd, "", parent, last, AT_EMPTY_PATH);
    if (rc < 0 && errno == ENOENT)
        return 0;                              /* let the general path name it */
    yr_reply(ctx, ev->id, 0, rc < 0 ? errno : 0);
    return 1;
}

static int fast_link(struct yr_ctx *ctx, const struct yr_event *ev, const struct link_args *a,
                     int procdir, struct yr_link *op, uint64_t mask)
{
    struct fast f = { procdir, -1, { 0, 0 }, { -1, -1 } };
    int settled = fast_link_in(&f, ctx, ev, a, op, mask);
    op_close(op);
    fast_close(&f);
    return settled;
}

/* 1: settled (replied); 0: Python decides, op holds the captured objects. */
int yr_link_settle(struct yr_ctx *ctx, const struct yr_event *ev, struct yr_link *op,
                   uint64_t mask)
{
    struct link_args a;
    struct starts s = { -1, -1, 0 };
    int err, chrooted = 0;
    op_close(op);
    op->facts = 0;
    op->trailing = 0;
    decode(ev, &a);
    op->flags = a.flags;
    if (a.flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) {
        err = -EINVAL;
        goto reply;
    }
    err = read_paths(ev, &a, op);
    if (err < 0)
        goto reply;
    struct id_entry *who = caller_entry(ev);
    if (!who) {
        err = -ESRCH;
        goto reply;
    }
    last_fsid = who->fsid;
    if (mask) {
        yr_fs_become(&last_fsid);
        if (fast_link(ctx, ev, &a, who->procdir, op, mask))
            return 1;
        op->facts = 0;
    }
    int root_ours = root_is_ours(who->procdir);
    if (!root_ours)
        yr_fs_reset();                         /* chroot needs our own capabilities */
    err = open_starts(ev, &a, op, &s);
    if (retry_as_us(err, &s)) {                /* maybe not the caller's to open: as us */
        yr_fs_reset();
        starts_close(&s);
        err = open_starts(ev, &a, op, &s);
    }
    if (err == 0 && !root_ours) {
        yr_fs_reset();
        if ((err = enter_root(ev->tid)) == 0)
            chrooted = 1;
    }
    if (err < 0)
        goto reply;
    yr_fs_become(&last_fsid);
    err = capture(ev, &a, &s, op);
    starts_close(&s);
    if (err < 0)
        goto reply;
    op->facts = base_facts(&last_fsid, op);
    if (!chrooted && !op->trailing && known_without_rw(mask, op->facts) &&
        yr_link_table_allows(mask, op->facts)) {
        /* The common case, settled here. An AT_EMPTY_PATH source was opened
         * before the switch: link it by its /proc name instead. */
        perform(ctx, ev->id, op, op->old_path[0] != '\0');
        op_close(op);
        return 1;
    }
    op->facts |= caller_can_rw(op->src_fd) ? YR_LF_RW : 0;
    if (chrooted) {
        yr_fs_reset();
        leave_root();
        chrooted = 0;
    }
    if (!op->trailing && yr_link_table_allows(mask, op->facts)) {
        yr_fs_become(&last_fsid);
        perform(ctx, ev->id, op, 0);
        op_close(op);
        return 1;
    }
    yr_fs_reset();
    err = before_rule(op);
    if (err < 0)
        goto reply;
    return 0;                                  /* a module may object: Python asks */
reply:
    starts_close(&s);
    if (chrooted) {
        yr_fs_reset();
        leave_root();
    }
    op_close(op);
    yr_reply(ctx, ev->id, 0, -err);
    return 1;
}

/* linkat(AT_SYMLINK_FOLLOW) with its source already walked (and its
 * trailing links decided on) by walk.c: src, an O_PATH fd of ours. */
int yr_link_settle_src(struct yr_ctx *ctx, const struct yr_event *ev, struct yr_link *op,
                       uint64_t mask, int src)
{
    given_src = src;
    int rc = yr_link_settle(ctx, ev, op, mask);
    given_src = -1;
    return rc;
}

/* After the chain: deny with deny_errno, or make the link as the caller. */
int yr_link_finish(struct yr_ctx *ctx, uint64_t id, int32_t deny_errno)
{
    struct yr_link *op = yr_ctx_link(ctx);
    int rc;
    if (deny_errno || op->src_fd < 0) {
        rc = yr_reply(ctx, id, 0, deny_errno ? deny_errno : EPERM);
    } else {
        yr_fs_become(&last_fsid);
        rc = perform(ctx, id, op, 0);
        yr_fs_reset();
    }
    op_close(op);
    return rc;
}
