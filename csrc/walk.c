/* The path walk, and the path-taking calls performed for the caller.
 *
 * A path is read once from the caller. It is walked from the caller's cwd,
 * dirfd or root (fds of ours, taken through its /proc/TID directory) while
 * this thread acts with the caller's filesystem identity, to the PARENT of
 * the trailing component, which is then held open. Intermediate symlinks
 * are followed as the kernel follows them, unchecked: one openat2 with
 * RESOLVE_NO_SYMLINKS when none is on the way, else component by component,
 * by hand. The trailing object is looked at in the held parent; a trailing
 * symlink is decided on (its owner, the parent's mode and owner), its target
 * read from that very link fd, and followed by hand, hop by hop (ELOOP after
 * 40 links, as the kernel). /proc/self and /proc/thread-self are the caller's
 * wherever they are met; other /proc symlinks below a pid directory are
 * magic links that only the kernel can follow: it follows them, for us, as
 * the caller.
 *
 * Then the call itself is made on that object from the held parent, with
 * O_NOFOLLOW (a name that became a symlink meanwhile is walked again): an
 * open with the caller's flags, credentials and umask, the fd installed with
 * SECCOMP_IOCTL_NOTIF_ADDFD; a stat written into the caller's buffer in its
 * ABI's layout; an access check with the caller's ids; a symlink made. Calls
 * that cannot be made for the caller (execve, chdir, chroot) are walked,
 * decided, and continued.
 *
 * Python is entered only at a hook point (yr_walk_settle returns 0, the
 * facts in yr_walk_current()); yr_walk_resume goes on after its verdict. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <sys/inotify.h>
#include <time.h>

#include "yama.h"

#define MAXSYMLINKS 40
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#define AT_FDCWD_INT (-100)
#define AUDIT_ARCH_I386 0x40000003u
#define CAP_FOWNER 3

/* ---- configuration (set once, before serving) ----------------------------- */

static uint64_t follow_mask = ~0ULL;   /* tabulated follow_link rule */
static uint64_t create_mask = ~0ULL;   /* tabulated create_in_sticky rule */
static uint32_t walk_flags;
static struct yr_walk pub;             /* what Python is asked about */

/* Our /proc/self/fd, by fd: reopening a held object through it never
 * depends on this thread's root (pathops.c chroots it for a while). */
static int own_fd_dir = -1;

static int reopen(int obj, int flags)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", obj);
    return openat(own_fd_dir, name, flags);
}

void yr_walk_setup(uint64_t fmask, uint64_t cmask, uint32_t flags)
{
    if (own_fd_dir < 0)
        own_fd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    follow_mask = fmask;
    create_mask = cmask;
    walk_flags = flags;
}

struct yr_walk *yr_walk_current(void)
{
    return &pub;
}

int yr_walk_table_allows(uint64_t mask, uint32_t facts)
{
    return (int)(mask >> (facts & 63) & 1);
}

/* ---- one call's state ------------------------------------------------------ */

enum op { OP_OPEN, OP_STAT, OP_STATX, OP_STAT64, OP_ACCESS, OP_CHECK, OP_SYMLINK, OP_META,
          OP_LINKSRC };
enum { R_DONE = 1, R_HOOK = 2, R_AGAIN = 3 };

struct wk {
    struct yr_event ev;
    struct yr_fsid id;          /* whom the walk acts as */
    int procdir;                /* the caller's /proc/TID (the identity cache's) */
    int root;                   /* the caller's root (or the scope of RESOLVE_IN_ROOT/BENEATH) */
    int root_known;
    struct statx root_stx;
    int dir;                    /* the held parent of name */
    char name[NAME_MAX + 1];
    int slash;                  /* name was followed by a slash: must be (or lead to) a dir */
    int magic;                  /* name is a /proc magic link: the kernel follows it */
    int exists;
    struct stat st;             /* name's, not followed */
    int obj;                    /* O_PATH: the object decided on, at a hook point */
    int hops, retries;
    enum op op;
    int follow;                 /* follow a trailing link */
    uint64_t resolve;           /* openat2's RESOLVE_* */
    int32_t dirfd;
    int flags;                  /* open flags, or AT_* flags */
    uint32_t mode;              /* open mode, access mode, statx mask */
    uint64_t buf;               /* the caller's stat buffer, xattr value or list */
    /* OP_META: what to change */
    int64_t len;                /* truncate */
    uint32_t uid, gid;          /* chown */
    struct timespec ts[2];      /* utime* */
    int times_null;
    char xname[256];            /* xattr */
    uint64_t xsize;
    int ifd;                    /* inotify: our copy of the caller's instance */
    char path[YR_PATH_MAX];     /* as given */
    char target[YR_PATH_MAX];   /* a link's target, a new symlink's target */
    char rest[2 * YR_PATH_MAX]; /* what is left to walk */
    char tmp[2 * YR_PATH_MAX];
};
static struct wk W = { .procdir = -1, .root = -1, .dir = -1, .obj = -1, .ifd = -1 };

static void wk_close(struct wk *w)
{
    if (w->dir >= 0)
        close(w->dir);
    if (w->obj >= 0)
        close(w->obj);
    if (w->root >= 0)
        close(w->root);
    if (w->ifd >= 0)
        close(w->ifd);
    w->dir = w->obj = w->root = w->ifd = -1;
}

/* Open name under the caller's /proc/TID as the caller; a caller that is
 * not dumpable may not open its own /proc entries as itself: then as us. */
static int proc_open(struct wk *w, const char *name, int flags)
{
    int fd = openat(w->procdir, name, flags | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        yr_fs_reset();
        fd = openat(w->procdir, name, flags | O_CLOEXEC);
        int e = errno;
        yr_fs_become(&w->id);
        errno = e;
    }
    return fd < 0 ? -errno : fd;
}

static int open_root(struct wk *w)
{
    if (w->root >= 0)
        return 0;
    int fd = proc_open(w, "root", O_PATH | O_DIRECTORY);
    if (fd < 0)
        return -ESRCH;
    w->root = fd;
    return 0;
}

static int same_dir(const struct statx *a, const struct statx *b)
{
    return a->stx_ino == b->stx_ino && a->stx_dev_major == b->stx_dev_major &&
           a->stx_dev_minor == b->stx_dev_minor && a->stx_mnt_id == b->stx_mnt_id;
}

/* Is dir the caller's root (or the RESOLVE scope)? ".." stops there. */
static int at_root(struct wk *w, int dir)
{
    struct statx sx;
    if (open_root(w) < 0)
        return 0;
    if (!w->root_known) {
        if (statx(w->root, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &w->root_stx) < 0)
            return 0;
        w->root_known = 1;
    }
    return statx(dir, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sx) == 0 &&
           same_dir(&sx, &w->root_stx);
}

/* The caller's dirfd (or cwd) as an O_PATH fd of ours. */
static int start_at(struct wk *w, int32_t dirfd, int want_dir)
{
    char name[32];
    if (dirfd == AT_FDCWD_INT)
        snprintf(name, sizeof(name), "cwd");
    else if (dirfd < 0)
        return -EBADF;
    else
        snprintf(name, sizeof(name), "fd/%d", (int)dirfd);
    int fd = proc_open(w, name, O_PATH | (want_dir ? O_DIRECTORY : 0));
    if ((fd == -EACCES || fd == -EPERM) && dirfd != AT_FDCWD_INT) {
        /* A non-dumpable caller's fd/ is its namespace root's (yr_caller_fd_reopen) */
        yr_fs_reset();
        fd = yr_caller_fd_reopen(w->ev.tid, w->ev.tgid, dirfd, want_dir ? O_DIRECTORY : 0);
        yr_fs_become(&w->id);
    }
    if (fd >= 0 || fd == -ENOTDIR)
        return fd;
    return dirfd == AT_FDCWD_INT ? -ESRCH : -EBADF;
}

/* What open() passes on (build_open_how); O_NOFOLLOW stays in f_flags, so
 * a final open that must not follow a link uses RESOLVE_NO_SYMLINKS instead. */
#define TMPFILE_BIT 020000000      /* the kernel's __O_TMPFILE (glibc's adds O_DIRECTORY) */
#define VALID_OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | \
                          O_NONBLOCK | O_SYNC | O_DSYNC | FASYNC | O_DIRECT | O_LARGEFILE | \
                          O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | __O_TMPFILE)

static int open_here(int dir, const char *name, int flags, uint32_t mode, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)(flags & VALID_OPEN_FLAGS),
                            .resolve = resolve };
    if (flags & (O_CREAT | TMPFILE_BIT))
        how.mode = mode & 07777;
    int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
    return fd < 0 ? -1 : fd;
}

static void close_fd(int fd)
{
    if (fd >= 0)
        close(fd);
}

static int o2(int dir, const char *name, int flags, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };
    int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
}

/* ---- /proc ------------------------------------------------------------------ */

/* The caller's process, found only when needed (yr_next leaves it 0). */
static pid_t caller_tgid(struct wk *w)
{
    if (w->ev.tgid <= 0)
        w->ev.tgid = yr_tgid_of(w->ev.tid);
    return w->ev.tgid;
}

/* The walked caller's process (for Python's request at a hook point). */
int yr_walk_current_tgid(void)
{
    return caller_tgid(&W);
}

enum { PL_NONE, PL_SELF, PL_MAGIC };
static dev_t own_proc_dev;

/* A symlink called name in dir: an ordinary one, /proc/self or
 * /proc/thread-self (subst: what it means for the caller), or a magic link. */
static int proc_link(struct wk *w, int dir, const char *name, char *subst, size_t n)
{
    struct statfs sf;
    struct stat ds;
    if (fstatfs(dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
        return PL_NONE;
    if (fstat(dir, &ds) < 0)
        return -errno;
    if (ds.st_ino != 1)                 /* below /proc's root: fd/N, cwd, exe, ns/... */
        return PL_MAGIC;
    int self = strcmp(name, "self") == 0, tself = strcmp(name, "thread-self") == 0;
    if (!self && !tself)
        return PL_NONE;                 /* mounts -> self/mounts: ordinary */
    /* Our pid numbers mean the same in this /proc only if it counts as ours. */
    char own[32];
    ssize_t k = readlinkat(dir, "self", own, sizeof(own) - 1);
    if (k <= 0)
        return -EACCES;
    own[k] = '\0';
    if (atoi(own) != getpid())
        return -EACCES;                 /* another pid namespace's /proc: fail closed */
    if (self)
        snprintf(subst, n, "%d", (int)caller_tgid(w));
    else
        snprintf(subst, n, "%d/task/%d", (int)caller_tgid(w), (int)w->ev.tid);
    return PL_SELF;
}

/* ---- /proc entries of processes outside the sandbox -------------------------
 *
 * The supervisor opens for the caller from outside the sandbox's Landlock
 * domain, so the kernel's ptrace-class checks on /proc/PID entries (magic
 * links, mem, environ, fd/...) are made for a task in no domain, with the
 * caller's credentials: a root caller would reach the supervisor's own
 * descriptors. The entries that need those checks are refused here (EACCES,
 * the kernel's answer) when their process is the supervisor, or, while the
 * sandbox is a Landlock domain, any process outside it (not our descendant). */
static int ptrace_entry(const char *name, size_t len)
{
    static const char *const names[] = {
        "environ", "auxv", "mem", "maps", "smaps", "smaps_rollup", "numa_maps", "pagemap",
        "stack", "syscall", "personality", "io", "wchan", "fd", "fdinfo", "map_files",
        "cwd", "root", "exe", "ns", "timers", "timerslack_ns", "patch_state",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

static int inside_sandbox(struct wk *w, pid_t pid)
{
    pid_t tgid = yr_tgid_of(pid);
    if (tgid <= 0)
        return 1;                       /* gone: the kernel's own look-up fails */
    if (tgid == getpid())
        return 0;
    if (tgid == caller_tgid(w) || !(walk_flags & YR_WALK_LANDLOCK))
        return 1;
    return yr_is_descendant(getpid(), tgid) == 1;
}

static int ptrace_component(const char *path)
{
    for (const char *c = path; *c; ) {
        while (*c == '/')
            c++;
        size_t len = strcspn(c, "/");
        if (len && ptrace_entry(c, len))
            return 1;
        c += len;
    }
    return 0;
}

static int on_proc(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/* 0, or -EACCES for name in dir when it is such an entry of an outsider. */
static int proc_guard(struct wk *w, int dir, const char *name)
{
    struct statfs sf;
    struct stat ds, st;
    if (fstatfs(dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
        return 0;
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dir);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0 || fstat(dir, &ds) < 0)
        return -EACCES;
    path[n] = '\0';
    if (!ptrace_entry(name, strlen(name)) && !ptrace_component(path))
        return 0;                                   /* status, cmdline, /proc/sys...: no check */
    /* Where this /proc is mounted: the longest prefix that is its root (inode 1). */
    size_t root = n;
    for (;;) {
        char keep = path[root];
        path[root] = '\0';
        int is_root = stat(root ? path : "/", &st) == 0 && st.st_dev == ds.st_dev && st.st_ino == 1;
        path[root] = keep;
        if (is_root)
            break;
        while (root > 0 && path[root - 1] != '/')
            root--;
        if (root == 0)
            return -EACCES;
        root--;
    }
    const char *p = path + root;
    char *end;
    while (*p == '/')
        p++;
    long pid = strtol(p, &end, 10);
    if (end == p || (*end && *end != '/'))
        return 0;                                   /* not below a task directory */
    if (strncmp(end, "/task/", 6) == 0)
        strtol(end + 6, &end, 10);
    const char *entry = *end == '/' ? end + 1 : name;
    if (!ptrace_entry(entry, strcspn(entry, "/")))
        return 0;
    /* Whose numbers? Ours if its "self" is us; no "self" at all: a pid
     * namespace without us, made inside the sandbox, so all of it is inside. */
    char own[32];
    memcpy(own, "/self", 6);
    char selfpath[sizeof(path) + 8];
    snprintf(selfpath, sizeof(selfpath), "%.*s/self", (int)root, path);
    ssize_t k = readlink(root ? selfpath : "/self", own, sizeof(own) - 1);
    if (k < 0)
        return errno == ENOENT ? 0 : -EACCES;
    own[k] = '\0';
    if (atoi(own) != getpid())
        return -EACCES;                             /* numbers we cannot read: fail closed */
    return inside_sandbox(w, (pid_t)pid) ? 0 : -EACCES;
}

/* ---- walking to the parent ------------------------------------------------- */

/* Component by component, following intermediate links by hand. from is
 * consumed. Sets w->dir, w->name, w->slash. */
static int walk_slow(struct wk *w, int cur, const char *path)
{
    size_t plen = strlen(path);
    if (plen >= sizeof(w->rest)) {
        close_fd(cur);
        return -ENAMETOOLONG;
    }
    if (path != w->rest)
        memmove(w->rest, path, plen + 1);
    char *p = w->rest;
    int err;
    for (;;) {
        if (*p == '/') {
            if (w->resolve & RESOLVE_BENEATH) {
                err = -EXDEV;
                goto fail;
            }
            if ((err = open_root(w)) < 0)
                goto fail;
            close_fd(cur);
            cur = fcntl(w->root, F_DUPFD_CLOEXEC, 0);
            while (*p == '/')
                p++;
        }
        char *c = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - c);
        char *q = p;
        while (*q == '/')
            q++;
        if (*q == '\0') {                    /* the last component */
            if (len > NAME_MAX) {
                err = -ENAMETOOLONG;
                goto fail;
            }
            memcpy(w->name, c, len);
            w->name[len] = '\0';
            if (len == 0)
                strcpy(w->name, ".");
            w->slash = q != p;
            w->dir = cur;
            return 0;
        }
        *p = '\0';
        int nd;
        if (strcmp(c, ".") == 0) {
            p = q;
            continue;
        }
        if (strcmp(c, "..") == 0) {
            if (at_root(w, cur)) {
                if (w->resolve & RESOLVE_BENEATH) {
                    err = -EXDEV;
                    goto fail;
                }
                p = q;
                continue;
            }
            nd = o2(cur, "..", O_PATH | O_DIRECTORY, w->resolve & RESOLVE_NO_XDEV);
        } else if (len > NAME_MAX) {
            err = -ENAMETOOLONG;
            goto fail;
        } else {
            nd = o2(cur, c, O_PATH | O_NOFOLLOW | O_DIRECTORY, w->resolve & RESOLVE_NO_XDEV);
        }
        if (nd == -ENOTDIR) {
            ssize_t n = readlinkat(cur, c, w->target, sizeof(w->target));
            if (n < 0) {
                err = -ENOTDIR;
                goto fail;
            }
            if ((w->resolve & RESOLVE_NO_SYMLINKS) || ++w->hops > MAXSYMLINKS) {
                err = -ELOOP;
                goto fail;
            }
            char subst[64];
            int pl = proc_link(w, cur, c, subst, sizeof(subst));
            if (pl < 0) {
                err = pl;
                goto fail;
            }
            if (pl == PL_SELF) {
                nd = o2(cur, subst, O_PATH | O_DIRECTORY, 0);
            } else if (pl == PL_MAGIC) {
                if (w->resolve & (RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT)) {
                    err = -ELOOP;
                    goto fail;
                }
                if ((err = proc_guard(w, cur, c)) < 0)
                    goto fail;
                nd = o2(cur, c, O_PATH | O_DIRECTORY, 0);     /* the kernel follows it */
            } else {
                if (n == 0) {
                    err = -ENOENT;
                    goto fail;
                }
                if ((size_t)n >= sizeof(w->target) ||
                    (size_t)n + 1 + strlen(q) + 1 > sizeof(w->tmp)) {
                    err = -ENAMETOOLONG;
                    goto fail;
                }
                memcpy(w->tmp, w->target, (size_t)n);
                w->tmp[n] = '/';
                strcpy(w->tmp + n + 1, q);
                strcpy(w->rest, w->tmp);
                p = w->rest;
                continue;                     /* the target replaces the link; cur stays */
            }
        }
        if (nd < 0) {
            err = nd;
            goto fail;
        }
        close_fd(cur);
        cur = nd;
        p = q;
    }
fail:
    close_fd(cur);
    return err;
}

static int has_dotdot(const char *p)
{
    for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
        if ((c == p || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
            return 1;
    return 0;
}

/* One openat2 to the parent when no symlink is on the way, else walk_slow.
 * from: where a relative path starts (consumed). */
static int walk(struct wk *w, int from, const char *path)
{
    int scoped = (w->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) != 0;
    const char *rel = path;
    int start = from;
    if (path[0] == '/' && !scoped) {
        int err = open_root(w);
        if (err < 0) {
            close_fd(from);
            return err;
        }
        while (*rel == '/')
            rel++;
        start = w->root;
    }
    /* the last component and the directory part before it */
    size_t len = strlen(rel), end = len;
    while (end > 0 && rel[end - 1] == '/')
        end--;
    size_t last = end;
    while (last > 0 && rel[last - 1] != '/')
        last--;
    if (end - last > NAME_MAX || len >= YR_PATH_MAX || (!scoped && path[0] != '/' && has_dotdot(rel)) ||
        (scoped && path[0] == '/'))
        return walk_slow(w, from, path);
    uint64_t res = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (w->resolve & RESOLVE_NO_XDEV);
    if (start == w->root)
        res |= RESOLVE_IN_ROOT;        /* ".." stops at the caller's root */
    if (scoped)
        res |= w->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT);
    int dir;
    if (last == 0) {
        dir = fcntl(start, F_DUPFD_CLOEXEC, 0);
    } else {
        char part[YR_PATH_MAX];
        memcpy(part, rel, last);
        part[last] = '\0';
        dir = o2(start, part, O_PATH | O_DIRECTORY, res);
        if (dir == -ELOOP && !(w->resolve & RESOLVE_NO_SYMLINKS))
            return walk_slow(w, from, path);      /* a symlink on the way */
        if (dir == -EAGAIN || dir == -EXDEV)
            return walk_slow(w, from, path);
        if (dir < 0) {
            close_fd(from);
            return dir;
        }
    }
    close_fd(from);
    if (end == last) {                 /* "", "/" or "dir/." forms: the start itself */
        strcpy(w->name, ".");
        w->slash = 0;
    } else {
        memcpy(w->name, rel + last, end - last);
        w->name[end - last] = '\0';
        w->slash = end < len;
    }
    w->dir = dir;
    return 0;
}

/* ---- the trailing component ---------------------------------------------- */

static uint32_t follow_facts(const struct wk *w, const struct stat *link, const struct stat *dir)
{
    uint32_t f = 0;
    if (link->st_uid == w->id.fsuid)
        f |= YR_FL_OWNER;
    if ((dir->st_mode & (S_ISVTX | S_IWOTH)) == (S_ISVTX | S_IWOTH))
        f |= YR_FL_DIR_STICKY_WW;
    if (dir->st_uid == link->st_uid)
        f |= YR_FL_DIR_OWNER;
    return f;
}

static void hook_common(struct wk *w, int hook, uint32_t facts, const struct stat *obj,
                        const struct stat *dir)
{
    pub.hook = hook;
    pub.facts = facts;
    pub.obj_uid = obj ? obj->st_uid : 0;
    pub.obj_mode = obj ? obj->st_mode : 0;
    pub.dir_uid = dir->st_uid;
    pub.dir_mode = dir->st_mode;
    pub.fsuid = w->id.fsuid;
    memcpy(pub.path, w->path, sizeof(pub.path));
    snprintf(pub.name, sizeof(pub.name), "%s", w->name);
}

/* Links followed by hand escape the kernel's own may_follow_link: while
 * fs.protected_symlinks is on, its rule is applied here too (EACCES, no
 * audit: it is the kernel's). Read when needed: hook points are rare. */
static int kernel_follow_denies(uint32_t f)
{
    char c = '0';
    int fd = open("/proc/sys/fs/protected_symlinks", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &c, 1) != 1)
            c = '1';                             /* unreadable: as if on */
        close(fd);
    }
    return c != '0' && !(f & YR_FL_OWNER) && (f & YR_FL_DIR_STICKY_WW) && !(f & YR_FL_DIR_OWNER);
}

/* Follow the link held in w->obj: its target, read from it, walked from its
 * directory (or the caller's root). */
static int follow_held(struct wk *w)
{
    if (w->resolve & RESOLVE_NO_SYMLINKS)
        return -ELOOP;                           /* after may_follow_link, as the kernel */
    int lfd = w->obj;
    w->obj = -1;
    ssize_t n = readlinkat(lfd, "", w->target, sizeof(w->target) - 2);
    close(lfd);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ENOENT;
    if ((size_t)n >= sizeof(w->target) - 2)
        return -ENAMETOOLONG;
    w->target[n] = '\0';
    if (w->slash)
        strcat(w->target, "/");
    if (w->target[0] == '/' && (w->resolve & RESOLVE_BENEATH))
        return -EXDEV;
    int from = w->dir;
    w->dir = -1;
    return walk(w, from, w->target);
}

/* A trailing link to follow. 0: walk on; R_DONE: the object is settled
 * (a magic link); R_HOOK: Python decides; <0: errno. */
static int trailing_link(struct wk *w)
{
    if (++w->hops > MAXSYMLINKS)
        return -ELOOP;
    char subst[64];
    int pl = proc_link(w, w->dir, w->name, subst, sizeof(subst));
    if (pl < 0)
        return pl;
    if (pl == PL_SELF) {
        if (w->resolve & RESOLVE_NO_SYMLINKS)
            return -ELOOP;
        if (w->slash)
            strcat(subst, "/");
        int from = w->dir;
        w->dir = -1;
        return walk(w, from, subst);
    }
    if (pl == PL_MAGIC) {
        if (w->resolve & (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH |
                          RESOLVE_IN_ROOT))
            return -ELOOP;
        w->magic = 1;
        return R_DONE;
    }
    int lfd = openat(w->dir, w->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (lfd < 0)
        return errno == ENOENT ? 0 : -errno;     /* gone: look again */
    struct stat ls, ds;
    if (fstat(lfd, &ls) < 0 || !S_ISLNK(ls.st_mode) || fstat(w->dir, &ds) < 0) {
        close(lfd);
        w->hops--;
        return 0;                                /* no longer a link: look again */
    }
    w->obj = lfd;
    if (ds.st_mode & S_ISVTX) {                  /* a hook point */
        uint32_t f = follow_facts(w, &ls, &ds);
        if (kernel_follow_denies(f))
            return -EACCES;
        if (!yr_walk_table_allows(follow_mask, f)) {
            hook_common(w, YR_HOOK_FOLLOW_LINK, f, &ls, &ds);
            ssize_t n = readlinkat(lfd, "", pub.target, sizeof(pub.target) - 1);
            pub.target[n > 0 ? n : 0] = '\0';
            return R_HOOK;
        }
    }
    return follow_held(w);
}

/* Settle the trailing component. 0: w->dir/w->name is the object (w->exists,
 * w->st); R_HOOK; <0 errno. */
static int trail(struct wk *w)
{
    for (;;) {
        if (w->op == OP_OPEN && (w->flags & O_CREAT) && w->slash)
            return -EISDIR;                      /* before the name is looked at */
        if (strcmp(w->name, "..") == 0) {
            int nd;
            if (at_root(w, w->dir)) {
                if (w->resolve & RESOLVE_BENEATH)
                    return -EXDEV;
                nd = fcntl(w->dir, F_DUPFD_CLOEXEC, 0);
            } else {
                nd = o2(w->dir, "..", O_PATH | O_DIRECTORY, w->resolve & RESOLVE_NO_XDEV);
            }
            if (nd < 0)
                return nd;
            close(w->dir);
            w->dir = nd;
            strcpy(w->name, ".");
        }
        if (fstatat(w->dir, w->name, &w->st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                return -errno;
            w->exists = 0;
            return 0;
        }
        w->exists = 1;
        if (!S_ISLNK(w->st.st_mode) || !(w->follow || w->slash))
            return 0;
        int rc = trailing_link(w);
        if (rc == R_DONE)
            return 0;
        if (rc != 0)
            return rc;
    }
}

/* ---- replies from any thread ----------------------------------------------- */

static int listener_fd;

static void mt_reply(uint64_t id, int err)
{
    struct seccomp_notif_resp r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.val = err ? -1 : 0;
    r.error = -err;
    while (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0 && errno == EINTR)
        ;
}

static void mt_addfd(uint64_t id, int fd, int cloexec)
{
    struct seccomp_notif_addfd add = {
        .id = id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd,
        .newfd_flags = cloexec ? O_CLOEXEC : 0,
    };
    while (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != ENOENT && errno != EINPROGRESS)
            mt_reply(id, errno == EMFILE ? EMFILE : errno);
        return;
    }
}

/* ---- opens ------------------------------------------------------------------- */

static __thread int own_fs;

/* The caller's umask, for this thread's creations (its own fs_struct). */
static int take_umask(struct wk *w)
{
    if (!own_fs) {
        if (unshare(CLONE_FS) < 0)
            return -errno;
        own_fs = 1;
    }
    int fd = proc_open(w, "status", O_RDONLY);
    if (fd < 0)
        return -ESRCH;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    char *u = strstr(buf, "\nUmask:");
    if (!u)
        return -ESRCH;
    umask((mode_t)strtoul(u + 7, NULL, 8));
    return 0;
}

struct blocking_open {
    uint64_t id;
    pid_t tid;              /* the caller */
    int obj;
    int flags;
    struct yr_fsid id_as;
};

/* The waiting thread wakes every 100 ms (a timer signal that interrupts
 * the open) to see whether the caller is gone or has a caught signal
 * pending: natively that signal would interrupt the open, and the seccomp
 * wait of a caller can only be killed. The caller then gets ERESTARTSYS,
 * which the kernel turns into EINTR or a restart of the call, as for its
 * own wait. */
#define WAKE_SIG (SIGRTMIN + 5)
#define ERESTARTSYS_ 512

static void wake_tick(int sig)
{
    (void)sig;
}

static void wake_setup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = wake_tick;                   /* no SA_RESTART: the open gives EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(WAKE_SIG, &sa, NULL);
}

static uint64_t status_mask(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);
    return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

/* Has the caller a caught, unblocked signal pending? */
static int caller_signalled(pid_t tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    uint64_t pending = status_mask(buf, "\nSigPnd:") | status_mask(buf, "\nShdPnd:");
    return (pending & ~status_mask(buf, "\nSigBlk:") & status_mask(buf, "\nSigCgt:")) != 0;
}

static int still_waiting(uint64_t id)
{
    return ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* An open that may wait for a peer (a FIFO): in its own thread, which
 * replies itself, so the receive loop goes on. */
static void *blocking_worker(void *arg)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct blocking_open *b = arg;
    pthread_once(&once, wake_setup);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, WAKE_SIG);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = WAKE_SIG;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t timer;
    int timed = timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0;
    if (timed) {
        struct itimerspec every = { { 0, 100000000 }, { 0, 100000000 } };
        timer_settime(timer, 0, &every, NULL);
    }
    yr_fs_become(&b->id_as);
    int fd, err = 0;
    for (;;) {
        fd = reopen(b->obj, (b->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0 || errno != EINTR) {
            err = fd < 0 ? errno : 0;
            break;
        }
        if (!still_waiting(b->id)) {
            err = -1;                            /* the caller is gone: nobody to answer */
            break;
        }
        if (caller_signalled(b->tid)) {
            err = ERESTARTSYS_;
            break;
        }
    }
    if (timed)
        timer_delete(timer);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (fd >= 0) {
        mt_addfd(b->id, fd, b->flags & O_CLOEXEC);
        close(fd);
    } else if (err > 0) {
        mt_reply(b->id, err);
    }
    close(b->obj);
    free(b);
    return NULL;
}

static int open_in_worker(struct wk *w)
{
    if (w->obj < 0) {
        w->obj = openat(w->dir, w->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (w->obj < 0 || fstat(w->obj, &st) < 0)
            return errno == ENOENT ? R_AGAIN : -errno;
        if (st.st_ino != w->st.st_ino || st.st_dev != w->st.st_dev)
            return R_AGAIN;
    }
    struct blocking_open *b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    *b = (struct blocking_open){ w->ev.id, w->ev.tid, w->obj, w->flags, w->id };
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int rc = pthread_create(&t, &attr, blocking_worker, b);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(b);
        return -EAGAIN;
    }
    w->obj = -1;                               /* the worker's now */
    return R_DONE;
}

/* An open that waits (a FIFO without a peer, a lease): in a worker thread
 * that answers the caller itself. The ptrace backend has one tracer thread
 * for every tracee and nothing else may answer for it: there the tracee
 * waits in its own open, checked and continued (README: Backends). */
static int wait_elsewhere(struct yr_ctx *ctx, struct wk *w)
{
    if (yr_ctx_listener(ctx) >= 0)
        return open_in_worker(w);
    yr_reply_continue(ctx, w->ev.id);
    return R_DONE;
}

/* Open the object settled by trail(): from the held parent with O_NOFOLLOW,
 * or, once decided on at a hook point, the very object held in w->obj. */
static int open_final(struct yr_ctx *ctx, struct wk *w)
{
    int fl = w->flags | O_NOCTTY | O_CLOEXEC;
    int type = w->st.st_mode & S_IFMT;
    int added_nonblock = 0;
    if (w->magic && w->obj < 0) {
        /* What the magic link leads to: a pipe or FIFO whose writer is gone
         * would make this thread wait. Held as an O_PATH fd (the kernel
         * follows the link), it is opened from there. */
        struct stat ts;
        if (fstatat(w->dir, w->name, &ts, 0) == 0 && S_ISFIFO(ts.st_mode)) {
            w->obj = openat(w->dir, w->name, O_PATH | O_CLOEXEC);
            if (w->obj < 0)
                return -errno;
            w->st = ts;
            type = S_IFIFO;
        }
    }
    if (!(fl & (O_NONBLOCK | O_PATH)) && (!w->magic || w->obj >= 0)) {
        if (type == S_IFIFO && (fl & O_ACCMODE) == O_RDONLY)
            return wait_elsewhere(ctx, w);
        /* Writers to a FIFO with a reader, devices, and regular files that
         * may be swapped for a FIFO meanwhile: never wait here. */
        fl |= O_NONBLOCK;
        added_nonblock = 1;
    }
    if ((fl & (O_CREAT | TMPFILE_BIT)) && take_umask(w) < 0)
        return -ESRCH;
    int fd;
    if (w->obj >= 0) {
        fd = reopen(w->obj, fl & ~(O_CREAT | O_EXCL | O_NOFOLLOW));
    } else if (w->magic) {
        fd = open_here(w->dir, w->name, fl, w->mode, 0);
    } else {
        fd = open_here(w->dir, w->name, fl, w->mode, RESOLVE_NO_SYMLINKS);
    }
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP && w->follow && w->obj < 0 && !w->magic)
            return R_AGAIN;                     /* became a symlink: walk it */
        if (e == ENXIO && added_nonblock && type == S_IFIFO)
            return wait_elsewhere(ctx, w);      /* no reader yet: wait for one */
        if (e == EWOULDBLOCK && added_nonblock && type == S_IFREG)
            return wait_elsewhere(ctx, w);      /* a lease to break */
        return -e;
    }
    if (added_nonblock)
        fcntl(fd, F_SETFL, w->flags & (O_APPEND | O_DIRECT | O_NOATIME));
    int rc = yr_reply_addfd(ctx, w->ev.id, fd, (uint32_t)(w->flags & O_CLOEXEC));
    close(fd);
    if (rc < 0)
        yr_reply(ctx, w->ev.id, 0, -rc);
    return R_DONE;
}

/* /proc/PID/mem: whose? The pid from the held directory's own stat file,
 * valid in our pid namespace only if that /proc is ours. */
static int mem_target(struct wk *w)
{
    struct statfs sf;
    struct stat ds, ps;
    if (fstatfs(w->dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
        return 0;
    if (!own_proc_dev) {
        if (stat("/proc", &ps) < 0)
            return -EACCES;
        own_proc_dev = ps.st_dev;
    }
    if (fstat(w->dir, &ds) < 0 || ds.st_dev != own_proc_dev)
        return -EACCES;                         /* fail closed */
    int fd = openat(w->dir, "stat", O_RDONLY | O_CLOEXEC);
    char buf[64];
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -EACCES;
    buf[n] = '\0';
    int pid = atoi(buf);
    return pid > 0 ? pid : -EACCES;
}

/* /proc files whose writes are judged on the opener's credentials
 * (file->f_cred: user namespace, euid, capabilities), which an fd we open
 * cannot carry: these opens are walked, decided and continued. */
static int opener_matters(struct wk *w)
{
    static const char *const names[] = { "uid_map", "gid_map", "projid_map", "setgroups" };
    struct statfs sf;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(w->name, names[i]) == 0)
            return fstatfs(w->dir, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
    return 0;
}

static int act_open(struct yr_ctx *ctx, struct wk *w)
{
    int fl = w->flags;
    if (w->magic)
        return open_final(ctx, w);
    if (!w->exists) {
        if (!(fl & O_CREAT))
            return -ENOENT;
        if (w->slash)
            return -EISDIR;
        if (take_umask(w) < 0)
            return -ESRCH;
        int fd = open_here(w->dir, w->name, fl | O_EXCL | O_NOCTTY | O_CLOEXEC, w->mode,
                           RESOLVE_NO_SYMLINKS);
        if (fd < 0)
            return errno == EEXIST && !(fl & O_EXCL) ? R_AGAIN : -errno;
        int rc = yr_reply_addfd(ctx, w->ev.id, fd, (uint32_t)(fl & O_CLOEXEC));
        close(fd);
        if (rc < 0)
            yr_reply(ctx, w->ev.id, 0, -rc);
        return R_DONE;
    }
    if ((fl & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
        return -EEXIST;
    if (w->slash && !S_ISDIR(w->st.st_mode) && !S_ISLNK(w->st.st_mode))
        return -ENOTDIR;
    int type = w->st.st_mode & S_IFMT;
    if ((fl & O_CREAT) && (type == S_IFREG || type == S_IFIFO) && create_mask != ~0ULL) {
        struct stat ds;
        if (fstat(w->dir, &ds) < 0)
            return -errno;
        if (ds.st_mode & S_ISVTX) {              /* a hook point */
            uint32_t f = (type == S_IFIFO ? YR_CF_FIFO : YR_CF_REGULAR) |
                         (ds.st_mode & S_IWOTH ? YR_CF_DIR_WW : 0) |
                         (ds.st_mode & S_IWGRP ? YR_CF_DIR_GW : 0) |
                         (w->st.st_uid == w->id.fsuid ? YR_CF_OWNER : 0) |
                         (w->st.st_uid == ds.st_uid ? YR_CF_DIR_OWNER : 0);
            if (!yr_walk_table_allows(create_mask, f)) {
                struct stat os;
                w->obj = openat(w->dir, w->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (w->obj < 0 || fstat(w->obj, &os) < 0)
                    return errno == ENOENT ? R_AGAIN : -errno;
                if (os.st_ino != w->st.st_ino || os.st_dev != w->st.st_dev)
                    return R_AGAIN;
                hook_common(w, YR_HOOK_CREATE_IN_STICKY, f, &os, &ds);
                return R_HOOK;
            }
        }
    }
    if ((walk_flags & YR_WALK_PROC_MEM) && strcmp(w->name, "mem") == 0 && type == S_IFREG &&
        !(fl & O_PATH)) {
        int pid = mem_target(w);
        if (pid < 0)
            return pid;
        if (pid > 0 && yr_tgid_of(pid) != caller_tgid(w)) {   /* one's own: always allowed */
            struct stat os, ds;
            w->obj = openat(w->dir, w->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (w->obj < 0 || fstat(w->obj, &os) < 0 || fstat(w->dir, &ds) < 0)
                return -errno;
            hook_common(w, YR_HOOK_PROC_MEM, 0, &os, &ds);
            pub.mem_pid = pid;
            return R_HOOK;
        }
    }
    if (opener_matters(w)) {
        if (yr_id_valid(ctx, w->ev.id))
            yr_reply_continue(ctx, w->ev.id);
        return R_DONE;
    }
    return open_final(ctx, w);
}

/* ---- stat ---------------------------------------------------------------------- */

/* i386's struct stat64 (packed, 96 bytes); the kernel's cp_stat64 leaves
 * the padding as it was, so only the fields are written. */
struct stat64_i386 {
    uint64_t st_dev;
    uint8_t pad0[4];
    uint32_t st_ino32;
    uint32_t st_mode, st_nlink, st_uid, st_gid;
    uint64_t st_rdev;
    uint8_t pad3[4];
    int64_t st_size;
    uint32_t st_blksize;
    int64_t st_blocks;
    uint32_t st_atime_, st_atime_nsec, st_mtime_, st_mtime_nsec, st_ctime_, st_ctime_nsec;
    uint64_t st_ino;
} __attribute__((packed));

static uint64_t huge_encode_dev(dev_t d)
{
    uint64_t ma = major(d), mi = minor(d);
    return (mi & 0xff) | (ma << 8) | ((mi & ~0xffull) << 12);
}

static int write_caller(struct wk *w, const struct iovec *local, int n,
                        const struct iovec *remote, int rn)
{
    ssize_t total = 0;
    for (int i = 0; i < rn; i++)
        total += (ssize_t)remote[i].iov_len;
    ssize_t k = process_vm_writev(w->ev.tid, local, (unsigned long)n, remote, (unsigned long)rn, 0);
    if (k < 0 && (errno == EPERM || errno == EACCES)) {
        yr_fs_reset();
        k = process_vm_writev(w->ev.tid, local, (unsigned long)n, remote, (unsigned long)rn, 0);
        yr_fs_become(&w->id);
    }
    return k == total ? 0 : -EFAULT;
}

static int put_stat(struct wk *w, const struct stat *st)
{
    if (w->op == OP_STAT) {         /* x86-64 and x32: the kernel's own layout, padding zeroed */
        struct iovec l = { (void *)st, sizeof(*st) }, r = { (void *)(uintptr_t)w->buf, sizeof(*st) };
        return write_caller(w, &l, 1, &r, 1);
    }
    struct stat64_i386 s;
    memset(&s, 0, sizeof(s));
    s.st_dev = huge_encode_dev(st->st_dev);
    s.st_ino32 = (uint32_t)st->st_ino;
    s.st_ino = st->st_ino;
    s.st_mode = st->st_mode;
    s.st_nlink = (uint32_t)st->st_nlink;
    s.st_uid = st->st_uid;
    s.st_gid = st->st_gid;
    s.st_rdev = huge_encode_dev(st->st_rdev);
    s.st_size = st->st_size;
    s.st_blksize = (uint32_t)st->st_blksize;
    s.st_blocks = st->st_blocks;
    s.st_atime_ = (uint32_t)st->st_atim.tv_sec;
    s.st_atime_nsec = (uint32_t)st->st_atim.tv_nsec;
    s.st_mtime_ = (uint32_t)st->st_mtim.tv_sec;
    s.st_mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
    s.st_ctime_ = (uint32_t)st->st_ctim.tv_sec;
    s.st_ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
    char *b = (char *)&s;
    uint64_t at = w->buf;
    struct iovec l[3] = { { b, 8 }, { b + 12, 28 }, { b + 44, 52 } };
    struct iovec r[3] = { { (void *)(uintptr_t)at, 8 }, { (void *)(uintptr_t)(at + 12), 28 },
                          { (void *)(uintptr_t)(at + 44), 52 } };
    return write_caller(w, l, 3, r, 3);
}

#define STATX_SYNC_BITS (AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC)

static int act_stat(struct yr_ctx *ctx, struct wk *w)
{
    int nofollow = w->magic ? 0 : AT_SYMLINK_NOFOLLOW;
    int err;
    if (!w->exists && !w->magic)
        return -ENOENT;
    if (w->slash && !w->magic && !S_ISDIR(w->st.st_mode))
        return -ENOTDIR;
    if (w->op == OP_STATX) {
        struct statx sx;
        memset(&sx, 0, sizeof(sx));
        if (statx(w->dir, w->name, (w->flags & (STATX_SYNC_BITS | AT_NO_AUTOMOUNT)) | nofollow,
                  w->mode, &sx) < 0)
            return errno == ENOENT ? R_AGAIN : -errno;
        if (w->follow && !w->magic && S_ISLNK(sx.stx_mode))
            return R_AGAIN;
        struct iovec l = { &sx, sizeof(sx) }, r = { (void *)(uintptr_t)w->buf, sizeof(sx) };
        err = write_caller(w, &l, 1, &r, 1);
    } else {
        struct stat st = w->st;
        if (w->magic && fstatat(w->dir, w->name, &st, 0) < 0)
            return -errno;
        err = put_stat(w, &st);
    }
    yr_reply(ctx, w->ev.id, 0, -err);
    return R_DONE;
}

/* The object fd stands for, stat'ed and written in the caller's ABI's layout. */
static int stat_to_caller(struct wk *w, int fd)
{
    if (w->op == OP_STATX) {
        struct statx sx;
        memset(&sx, 0, sizeof(sx));
        if (statx(fd, "", AT_EMPTY_PATH | (w->flags & STATX_SYNC_BITS), w->mode, &sx) < 0)
            return -errno;
        struct iovec l = { &sx, sizeof(sx) }, r = { (void *)(uintptr_t)w->buf, sizeof(sx) };
        return write_caller(w, &l, 1, &r, 1);
    }
    struct stat st;
    return fstatat(fd, "", &st, AT_EMPTY_PATH) < 0 ? -errno : put_stat(w, &st);
}

/* AT_EMPTY_PATH with an empty path: the caller's fd itself. */
static int stat_fd(struct yr_ctx *ctx, struct wk *w)
{
    int fd = start_at(w, w->dirfd, 0);
    if (fd < 0)
        return fd == -ESRCH ? -ESRCH : -EBADF;
    int err = stat_to_caller(w, fd);
    close(fd);
    yr_reply(ctx, w->ev.id, 0, -err);
    return R_DONE;
}

/* ---- access, checks, symlink ---------------------------------------------------- */

static int act_access(struct yr_ctx *ctx, struct wk *w)
{
    int rc;
    if (w->magic) {
        rc = (int)syscall(SYS_faccessat2, w->dir, w->name, (int)w->mode, AT_EACCESS);
    } else {
        if (!w->exists)
            return -ENOENT;
        if (w->slash && !S_ISDIR(w->st.st_mode))
            return -ENOTDIR;
        int fd = openat(w->dir, w->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            return errno == ENOENT ? R_AGAIN : -errno;
        if (fstat(fd, &st) < 0 || (w->follow && S_ISLNK(st.st_mode))) {
            close(fd);
            return R_AGAIN;
        }
        rc = (int)syscall(SYS_faccessat2, fd, "", (int)w->mode, AT_EMPTY_PATH | AT_EACCESS);
        int e = errno;
        close(fd);
        errno = e;
    }
    yr_reply(ctx, w->ev.id, 0, rc < 0 ? errno : 0);
    return R_DONE;
}

static int perform_symlink(struct yr_ctx *ctx, struct wk *w)
{
    int rc = symlinkat(w->target, w->dir, w->name);
    yr_reply(ctx, w->ev.id, 0, rc < 0 ? errno : 0);
    return R_DONE;
}

static int act_symlink(struct yr_ctx *ctx, struct wk *w)
{
    if (w->exists || strcmp(w->name, ".") == 0 || strcmp(w->name, "..") == 0)
        return -EEXIST;
    if (w->slash)
        return -ENOENT;
    struct stat ds;
    if (fstat(w->dir, &ds) < 0)
        return -errno;
    if ((walk_flags & YR_WALK_PATH_SYMLINK) && (ds.st_mode & S_ISVTX) && (ds.st_mode & S_IWOTH) &&
        ds.st_uid != w->id.fsuid) {
        hook_common(w, YR_HOOK_PATH_SYMLINK, 0, NULL, &ds);
        memcpy(pub.target, w->target, sizeof(pub.target));
        return R_HOOK;
    }
    return perform_symlink(ctx, w);
}

#define XATTR_MAX 65536
static long handle_of(struct wk *w, int fd);

/* Change or read the metadata of fd (O_PATH, the walked object), as the
 * caller, through its /proc/self/fd name or an AT_EMPTY_PATH call. */
static int meta_perform(struct yr_ctx *ctx, struct wk *w, int fd)
{
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    long rc = -1;
    int err = 0;
    static char xbuf[XATTR_MAX];
    switch (w->ev.sys) {
    case YR_SYS_TRUNCATE: case YR_SYS_TRUNCATE64:
        rc = truncate(self, w->len);
        break;
    case YR_SYS_CHMOD: case YR_SYS_FCHMODAT: case YR_SYS_FCHMODAT2:
        rc = syscall(SYS_fchmodat2, fd, "", w->mode, AT_EMPTY_PATH);
        break;
    case YR_SYS_CHOWN: case YR_SYS_FCHOWNAT:
        rc = fchownat(fd, "", w->uid, w->gid, AT_EMPTY_PATH);
        break;
    case YR_SYS_UTIMENSAT: case YR_SYS_UTIMENSAT_TIME64: case YR_SYS_UTIME:
    case YR_SYS_UTIMES: case YR_SYS_FUTIMESAT:
        rc = utimensat(fd, "", w->times_null ? NULL : w->ts, AT_EMPTY_PATH);
        break;
    case YR_SYS_GETXATTR: case YR_SYS_LISTXATTR: {
        size_t size = w->xsize > XATTR_MAX ? XATTR_MAX : (size_t)w->xsize;
        rc = w->ev.sys == YR_SYS_GETXATTR ? getxattr(self, w->xname, size ? xbuf : NULL, size)
                                          : listxattr(self, size ? xbuf : NULL, size);
        if (rc < 0 && errno == ERANGE && size >= XATTR_MAX)
            errno = E2BIG;
        if (rc > 0 && size) {
            struct iovec l = { xbuf, (size_t)rc }, r = { (void *)(uintptr_t)w->buf, (size_t)rc };
            if (write_caller(w, &l, 1, &r, 1) < 0) {
                rc = -1;
                errno = EFAULT;
            }
        }
        break;
    }
    case YR_SYS_SETXATTR: {
        struct iovec l = { xbuf, (size_t)w->xsize }, r = { (void *)(uintptr_t)w->buf, (size_t)w->xsize };
        if (w->xsize && process_vm_readv(w->ev.tid, &l, 1, &r, 1, 0) != (ssize_t)w->xsize) {
            rc = -1;
            errno = EFAULT;
            break;
        }
        rc = setxattr(self, w->xname, xbuf, (size_t)w->xsize, w->flags);
        break;
    }
    case YR_SYS_REMOVEXATTR:
        rc = removexattr(self, w->xname);
        break;
    case YR_SYS_INOTIFY_ADD_WATCH:
        rc = inotify_add_watch(w->ifd, self, w->mode & ~(uint32_t)IN_DONT_FOLLOW);
        break;
    case YR_SYS_STATFS: {                        /* x86-64 and x32: the kernel's layout */
        struct statfs sf;
        memset(&sf, 0, sizeof(sf));
        rc = fstatfs(fd, &sf);
        if (rc == 0) {
            struct iovec l = { &sf, sizeof(sf) }, r = { (void *)(uintptr_t)w->buf, sizeof(sf) };
            if (write_caller(w, &l, 1, &r, 1) < 0) {
                rc = -1;
                errno = EFAULT;
            }
        }
        break;
    }
    case YR_SYS_NAME_TO_HANDLE_AT:
        rc = handle_of(w, fd);
        break;
    }
    if (rc < 0)
        err = errno;
    yr_reply(ctx, w->ev.id, rc < 0 ? 0 : rc, err);
    return R_DONE;
}

/* name_to_handle_at(AT_SYMLINK_FOLLOW) on the walked object: the header
 * and handle (on EOVERFLOW the header only) and the mount id written back,
 * as do_sys_name_to_handle. */
#define AT_HANDLE_MNT_ID_UNIQUE_ 0x001
static long handle_of(struct wk *w, int fd)
{
    struct { uint32_t bytes; int32_t type; unsigned char h[128]; } fh;
    struct iovec l = { &fh.bytes, 4 }, r = { (void *)(uintptr_t)w->buf, 4 };
    if (process_vm_readv(w->ev.tid, &l, 1, &r, 1, 0) != 4) {
        errno = EFAULT;
        return -1;
    }
    if (fh.bytes > 128) {
        errno = EINVAL;
        return -1;
    }
    uint64_t mnt = 0;
    int extra = w->flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH);
    long rc = syscall(SYS_name_to_handle_at, fd, "", &fh, &mnt, AT_EMPTY_PATH | extra);
    int e = errno;
    if (rc < 0 && e != EOVERFLOW)
        return rc;
    size_t msize = (extra & AT_HANDLE_MNT_ID_UNIQUE_) ? 8 : 4;
    size_t hsize = 8 + (rc == 0 ? fh.bytes : 0);
    struct iovec lm = { &mnt, msize }, rm = { (void *)(uintptr_t)w->xsize, msize };
    struct iovec lh = { &fh, hsize }, rh = { (void *)(uintptr_t)w->buf, hsize };
    if (write_caller(w, &lm, 1, &rm, 1) < 0 || write_caller(w, &lh, 1, &rh, 1) < 0) {
        errno = EFAULT;
        return -1;
    }
    errno = e;
    return rc;
}

/* The settled object as an O_PATH fd (*fd): 0, R_AGAIN when the name
 * changed under us (gone, or became a symlink to follow), or -errno. */
static int hold_object(struct wk *w, int *fd)
{
    if (!w->exists && !w->magic)
        return -ENOENT;
    if (w->slash && !w->magic && !S_ISDIR(w->st.st_mode))
        return -ENOTDIR;
    *fd = openat(w->dir, w->name, O_PATH | O_CLOEXEC | (w->magic ? 0 : O_NOFOLLOW));
    struct stat st;
    if (*fd < 0)
        return errno == ENOENT ? R_AGAIN : -errno;
    if (fstat(*fd, &st) < 0 || (w->follow && !w->magic && S_ISLNK(st.st_mode))) {
        close(*fd);
        return R_AGAIN;                          /* became a symlink: walk it */
    }
    return 0;
}

static int act_meta(struct yr_ctx *ctx, struct wk *w)
{
    int fd, held = hold_object(w, &fd);
    if (held != 0)
        return held;
    int rc = meta_perform(ctx, w, fd);
    close(fd);
    return rc;
}

/* linkat(AT_SYMLINK_FOLLOW): the walked source goes to pathops.c, which
 * takes the new name and decides path_link as for any link. */
int yr_walk_linkat(const struct yr_event *ev)
{
    /* Always walked, not only for follow_link: the walk's /proc guard keeps
     * the source from being another process's /proc/PID/fd/N magic link. */
    return ev->sys == YR_SYS_LINKAT &&
           ((int32_t)ev->args[4] & AT_SYMLINK_FOLLOW) &&
           !((int32_t)ev->args[4] & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH));
}

static int act_linksrc(struct yr_ctx *ctx, struct wk *w)
{
    int fd, held = hold_object(w, &fd);         /* w->follow: AT_SYMLINK_FOLLOW */
    if (held != 0)
        return held;
    int rc = yr_link_settle_src(ctx, &w->ev, yr_ctx_link(ctx), yr_ctx_link_mask(ctx), fd);
    close(fd);
    if (rc)
        return R_DONE;
    pub.hook = YR_HOOK_PATH_LINK;            /* pathops holds the objects: path_link next */
    return R_HOOK;
}

/* The exec of a setuid, setgid or file-capability program, which runs
 * without its privilege (no_new_privs): a notice for Python, decided on
 * nothing (the exec is continued as any other). */
static int exec_notice(struct wk *w)
{
    struct stat st, ds;
    if (!(walk_flags & YR_WALK_EXEC_NOTICE) ||
        (w->ev.sys != YR_SYS_EXECVE && w->ev.sys != YR_SYS_EXECVEAT) ||
        fstatat(w->dir, w->name, &st, AT_SYMLINK_NOFOLLOW) < 0 || fstat(w->dir, &ds) < 0)
        return 0;
    uint32_t bits = yr_exec_privilege(w->dir, w->name, st.st_mode);
    if (bits)
        hook_common(w, YR_HOOK_EXEC_PRIVILEGED, bits, &st, &ds);
    return bits != 0;
}

static int act(struct yr_ctx *ctx, struct wk *w)
{
    switch (w->op) {
    case OP_OPEN:
        return act_open(ctx, w);
    case OP_STAT:
    case OP_STAT64:
    case OP_STATX:
        return act_stat(ctx, w);
    case OP_ACCESS:
        return act_access(ctx, w);
    case OP_SYMLINK:
        return act_symlink(ctx, w);
    case OP_META:
        return act_meta(ctx, w);
    case OP_LINKSRC:
        return act_linksrc(ctx, w);
    case OP_CHECK:
        if (exec_notice(w))
            return R_HOOK;                       /* told, then continued (yr_walk_resume) */
        if (yr_id_valid(ctx, w->ev.id))
            yr_reply_continue(ctx, w->ev.id);
        return R_DONE;
    }
    return -ENOSYS;
}

/* ---- driving a call to its reply ------------------------------------------------- */

static int finish(struct yr_ctx *ctx, struct wk *w, int err)
{
    if (w->op == OP_CHECK && err != -EACCES) {
        /* The kernel walks again and names the error itself. */
        if (yr_id_valid(ctx, w->ev.id))
            yr_reply_continue(ctx, w->ev.id);
    } else {
        yr_reply(ctx, w->ev.id, 0, -err);
    }
    wk_close(w);
    return 1;
}

/* From a settled trailing object (or a fresh walk) to a reply or a hook.
 * 1: replied; 0: Python decides. */
static int drive(struct yr_ctx *ctx, struct wk *w)
{
    for (;;) {
        int rc = trail(w);
        if (rc == R_HOOK)
            return 0;
        if (rc == 0)
            rc = proc_guard(w, w->dir, w->name);
        if (rc < 0)
            return finish(ctx, w, rc);
        rc = act(ctx, w);
        if (rc == R_HOOK)
            return 0;
        if (rc == R_DONE) {
            wk_close(w);
            return 1;
        }
        if (rc < 0)
            return finish(ctx, w, rc);
        /* R_AGAIN: the name changed under us; look at it again. */
        if (w->obj >= 0)
            close(w->obj);
        w->obj = -1;
        if (++w->retries > 16)
            return finish(ctx, w, -EAGAIN);
    }
}

/* ---- decoding ------------------------------------------------------------------- */

static int read_how(struct wk *w, uint64_t addr, uint64_t size)
{
    if (size < 24)
        return -EINVAL;
    if (size > 4096)
        return -E2BIG;
    unsigned char buf[4096];
    struct iovec l = { buf, (size_t)size }, r = { (void *)(uintptr_t)addr, (size_t)size };
    if (process_vm_readv(w->ev.tid, &l, 1, &r, 1, 0) != (ssize_t)size)
        return -EFAULT;
    for (uint64_t i = 24; i < size; i++)
        if (buf[i])
            return -E2BIG;
    struct open_how how;
    memcpy(&how, buf, 24);
    /* The kernel's own validation of how (build_open_flags), before any walk. */
    struct open_how probe = how;
    probe.flags |= O_CLOEXEC;
    long rc = syscall(SYS_openat2, -1, "x", &probe, sizeof(probe));
    if (rc >= 0)
        close((int)rc);
    if (rc >= 0 || errno != EBADF)
        return rc >= 0 ? -EBADF : -errno;
    w->flags = (int)how.flags;
    w->mode = (uint32_t)how.mode;
    w->resolve = how.resolve;
    if ((how.resolve & RESOLVE_CACHED) && (how.flags & (O_CREAT | O_TRUNC | TMPFILE_BIT)))
        return -EAGAIN;
    return 0;
}

static int op_of(int32_t sys)
{
    switch (sys) {
    case YR_SYS_OPEN: case YR_SYS_OPENAT: case YR_SYS_OPENAT2: case YR_SYS_CREAT:
        return OP_OPEN;
    case YR_SYS_STAT: case YR_SYS_LSTAT: case YR_SYS_NEWFSTATAT:
        return OP_STAT;
    case YR_SYS_STAT64: case YR_SYS_LSTAT64: case YR_SYS_FSTATAT64:
        return OP_STAT64;
    case YR_SYS_STATX:
        return OP_STATX;
    case YR_SYS_ACCESS: case YR_SYS_FACCESSAT: case YR_SYS_FACCESSAT2:
        return OP_ACCESS;
    case YR_SYS_SYMLINK: case YR_SYS_SYMLINKAT:
        return OP_SYMLINK;
    case YR_SYS_EXECVE: case YR_SYS_EXECVEAT: case YR_SYS_CHDIR: case YR_SYS_CHROOT:
    case YR_SYS_OPEN_TREE:
        return OP_CHECK;
    case YR_SYS_LINKAT:
        return OP_LINKSRC;
    default:
        return OP_META;
    }
}

static int64_t s32(uint64_t v)
{
    return (int64_t)(int32_t)(uint32_t)v;
}

/* The times of utime, utimes, futimesat and utimensat, in timespecs. */
static int read_times(struct wk *w, uint64_t addr)
{
    int compat = w->ev.arch == AUDIT_ARCH_I386;
    w->times_null = addr == 0;
    if (!addr)
        return 0;
    unsigned char b[32];
    size_t n;
    switch (w->ev.sys) {
    case YR_SYS_UTIME:
        n = compat ? 8 : 16;
        break;
    case YR_SYS_UTIMENSAT:
        n = compat ? 16 : 32;
        break;
    case YR_SYS_UTIMENSAT_TIME64:
        n = 32;
        break;
    default:                                  /* utimes, futimesat: two timevals */
        n = compat ? 16 : 32;
    }
    struct iovec l = { b, n }, r = { (void *)(uintptr_t)addr, n };
    if (process_vm_readv(w->ev.tid, &l, 1, &r, 1, 0) != (ssize_t)n)
        return -EFAULT;
    int64_t v[4];
    for (int i = 0; i < 4; i++) {
        if (n == 32) {
            int64_t x;
            memcpy(&x, b + 8 * i, 8);
            v[i] = x;
        } else if (n == 16) {
            int32_t x;
            memcpy(&x, b + 4 * i, 4);
            v[i] = x;
        }
    }
    if (w->ev.sys == YR_SYS_UTIME) {          /* {actime, modtime}: whole seconds */
        if (n == 8) {
            int32_t a, m;
            memcpy(&a, b, 4);
            memcpy(&m, b + 4, 4);
            v[0] = a;
            v[2] = m;
        } else {
            v[2] = v[1];
        }
        v[1] = v[3] = 0;
    } else if (w->ev.sys == YR_SYS_UTIMES || w->ev.sys == YR_SYS_FUTIMESAT) {
        for (int i = 1; i < 4; i += 2) {
            if (v[i] < 0 || v[i] >= 1000000)
                return -EINVAL;
            v[i] *= 1000;
        }
    } else if (compat || w->ev.sys == YR_SYS_UTIMENSAT_TIME64) {
        if (compat) {                          /* a compat caller's nsec is 32 bits */
            v[1] = (int32_t)v[1];
            v[3] = (int32_t)v[3];
        }
    }
    w->ts[0] = (struct timespec){ (time_t)v[0], (long)v[1] };
    w->ts[1] = (struct timespec){ (time_t)v[2], (long)v[3] };
    return 0;
}

static int read_xname(struct wk *w, uint64_t addr)
{
    int n = yr_read_path(w->ev.tid, addr, w->xname, sizeof(w->xname));
    if (n == -ENAMETOOLONG || n == 0)
        return -ERANGE;
    return n < 0 ? n : 0;
}

/* OP_META arguments. */
static int decode_meta(struct wk *w, uint64_t *path_addr)
{
    const struct yr_event *ev = &w->ev;
    int compat = ev->arch == AUDIT_ARCH_I386;
    uint64_t m = compat ? 0xFFFFFFFFu : ~0ULL;
    const uint64_t *a = ev->args;
    int err = 0;
    switch (ev->sys) {
    case YR_SYS_TRUNCATE:
        *path_addr = a[0] & m; w->len = compat ? s32(a[1]) : (int64_t)a[1];
        if (w->len < 0)
            return -EINVAL;
        break;
    case YR_SYS_TRUNCATE64:
        *path_addr = a[0] & m; w->len = (int64_t)((a[1] & 0xFFFFFFFFu) | (a[2] << 32));
        if (w->len < 0)
            return -EINVAL;
        break;
    case YR_SYS_CHMOD:
        *path_addr = a[0] & m; w->mode = (uint32_t)a[1] & 07777;
        break;
    case YR_SYS_FCHMODAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->mode = (uint32_t)a[2] & 07777;
        break;
    case YR_SYS_FCHMODAT2:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->mode = (uint32_t)a[2] & 07777;
        w->flags = (int)a[3];
        if (w->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
            return -EINVAL;
        break;
    case YR_SYS_CHOWN:
        *path_addr = a[0] & m; w->uid = (uint32_t)a[1]; w->gid = (uint32_t)a[2];
        if (compat && ev->nr == 182) {         /* i386 chown: 16-bit ids, 0xffff = -1 */
            w->uid = (w->uid & 0xFFFF) == 0xFFFF ? (uint32_t)-1 : (w->uid & 0xFFFF);
            w->gid = (w->gid & 0xFFFF) == 0xFFFF ? (uint32_t)-1 : (w->gid & 0xFFFF);
        }
        break;
    case YR_SYS_FCHOWNAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->uid = (uint32_t)a[2];
        w->gid = (uint32_t)a[3]; w->flags = (int)a[4];
        if (w->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
            return -EINVAL;
        break;
    case YR_SYS_UTIMENSAT: case YR_SYS_UTIMENSAT_TIME64:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->flags = (int)a[3];
        if (w->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
            return -EINVAL;
        err = read_times(w, a[2] & m);
        break;
    case YR_SYS_UTIME: case YR_SYS_UTIMES:
        *path_addr = a[0] & m;
        err = read_times(w, a[1] & m);
        break;
    case YR_SYS_FUTIMESAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m;
        err = read_times(w, a[2] & m);
        break;
    case YR_SYS_GETXATTR:
        *path_addr = a[0] & m; w->buf = a[2] & m; w->xsize = a[3] & m;
        err = read_xname(w, a[1] & m);
        break;
    case YR_SYS_SETXATTR:
        *path_addr = a[0] & m; w->buf = a[2] & m; w->xsize = a[3] & m; w->flags = (int)a[4];
        if (w->flags & ~(XATTR_CREATE | XATTR_REPLACE))
            return -EINVAL;
        err = read_xname(w, a[1] & m);
        if (!err && w->xsize > XATTR_MAX)
            return -E2BIG;
        break;
    case YR_SYS_LISTXATTR:
        *path_addr = a[0] & m; w->buf = a[1] & m; w->xsize = a[2] & m;
        break;
    case YR_SYS_REMOVEXATTR:
        *path_addr = a[0] & m;
        err = read_xname(w, a[1] & m);
        break;
    case YR_SYS_STATFS:
        *path_addr = a[0] & m; w->buf = a[1] & m;
        break;
    case YR_SYS_NAME_TO_HANDLE_AT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->buf = a[2] & m;
        w->xsize = a[3] & m;                    /* the mount id's address */
        w->flags = (int)a[4];
        break;
    case YR_SYS_OPEN_TREE:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->flags = (int)a[2];
        break;
    case YR_SYS_INOTIFY_ADD_WATCH: {
        *path_addr = a[1] & m; w->mode = (uint32_t)a[2];
        if (!(w->mode & (IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED | IN_ONLYDIR |
                         IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_ADD | IN_ISDIR | IN_ONESHOT |
                         0x10000000 /* IN_MASK_CREATE */)))
            return -EINVAL;
        if (w->mode & IN_DONT_FOLLOW)
            w->follow = 0;
        yr_fs_reset();                          /* the caller's instance, fetched as us */
        int fd = yr_fetch_fd(caller_tgid(w), (int32_t)a[0]);
        if (fd < 0)
            return -EBADF;
        w->ifd = fd;
        break;
    }
    default:
        return -ENOSYS;
    }
    if (err < 0)
        return err;
    if (w->flags & AT_SYMLINK_NOFOLLOW)
        w->follow = 0;
    return 0;
}

/* The call's arguments. Returns 0, or -errno the kernel gives before any walk. */
static int decode(struct wk *w, uint64_t *path_addr, uint64_t *target_addr)
{
    const struct yr_event *ev = &w->ev;
    int compat = ev->arch == AUDIT_ARCH_I386;
    uint64_t m = compat ? 0xFFFFFFFFu : ~0ULL;
    const uint64_t *a = ev->args;
    w->dirfd = AT_FDCWD_INT;
    w->flags = 0;
    w->mode = 0;
    w->resolve = 0;
    w->follow = 1;
    *target_addr = 0;
    switch (ev->sys) {
    case YR_SYS_OPEN:
        *path_addr = a[0] & m; w->flags = (int)a[1]; w->mode = (uint32_t)a[2];
        break;
    case YR_SYS_CREAT:
        *path_addr = a[0] & m; w->flags = O_CREAT | O_WRONLY | O_TRUNC; w->mode = (uint32_t)a[1];
        break;
    case YR_SYS_OPENAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->flags = (int)a[2];
        w->mode = (uint32_t)a[3];
        break;
    case YR_SYS_OPENAT2: {
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m;
        int err = read_how(w, a[2] & m, a[3]);
        if (err < 0)
            return err;
        break;
    }
    case YR_SYS_STAT: case YR_SYS_STAT64:
        *path_addr = a[0] & m; w->buf = a[1] & m;
        break;
    case YR_SYS_LSTAT: case YR_SYS_LSTAT64:
        *path_addr = a[0] & m; w->buf = a[1] & m; w->flags = AT_SYMLINK_NOFOLLOW;
        break;
    case YR_SYS_NEWFSTATAT: case YR_SYS_FSTATAT64:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->buf = a[2] & m; w->flags = (int)a[3];
        if (w->flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH))
            return -EINVAL;
        break;
    case YR_SYS_STATX:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->flags = (int)a[2];
        w->mode = (uint32_t)a[3]; w->buf = a[4] & m;
        if ((w->flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | STATX_SYNC_BITS)) ||
            (w->flags & STATX_SYNC_BITS) == STATX_SYNC_BITS || (w->mode & STATX__RESERVED))
            return -EINVAL;
        break;
    case YR_SYS_ACCESS:
        *path_addr = a[0] & m; w->mode = (uint32_t)a[1];
        break;
    case YR_SYS_FACCESSAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->mode = (uint32_t)a[2];
        break;
    case YR_SYS_FACCESSAT2:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->mode = (uint32_t)a[2];
        w->flags = (int)a[3];
        if (w->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH))
            return -EINVAL;
        break;
    case YR_SYS_EXECVE: case YR_SYS_CHDIR: case YR_SYS_CHROOT:
        *path_addr = a[0] & m;
        break;
    case YR_SYS_EXECVEAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->flags = (int)a[4];
        break;
    case YR_SYS_SYMLINK:
        *target_addr = a[0] & m; *path_addr = a[1] & m;
        break;
    case YR_SYS_SYMLINKAT:
        *target_addr = a[0] & m; w->dirfd = (int32_t)a[1]; *path_addr = a[2] & m;
        break;
    case YR_SYS_LINKAT:
        w->dirfd = (int32_t)a[0]; *path_addr = a[1] & m; w->flags = (int)a[4];
        break;
    default:
        return decode_meta(w, path_addr);
    }
    if (w->op == OP_ACCESS && (w->mode & ~(uint32_t)S_IRWXO))
        return -EINVAL;
    if (w->op == OP_OPEN) {
        w->follow = !(w->flags & O_NOFOLLOW) &&
                    (w->flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
        if (!(w->flags & (O_CREAT | TMPFILE_BIT)))
            w->mode = 0;
        w->mode &= 07777;
        if ((w->flags & (O_CREAT | TMPFILE_BIT)) && (w->flags & (O_DIRECTORY | TMPFILE_BIT)) &&
            ev->sys != YR_SYS_OPENAT2) {
            /* O_CREAT|O_DIRECTORY, O_TMPFILE: the kernel's own flag checks first */
            struct open_how probe = { .flags = (uint64_t)(w->flags & VALID_OPEN_FLAGS) | O_CLOEXEC,
                                      .mode = w->mode };
            long rc = syscall(SYS_openat2, -1, "x", &probe, sizeof(probe));
            if (rc >= 0)
                close((int)rc);
            else if (errno != EBADF)
                return -errno;
        }
        /* ADDFD takes its file with fget(), which refuses O_PATH files: an
         * O_PATH open is walked, decided and continued, like execve. */
        if (w->flags & O_PATH)
            w->op = OP_CHECK;
    } else if (w->op == OP_SYMLINK) {
        w->follow = 0;
    } else if (w->flags & AT_SYMLINK_NOFOLLOW) {
        w->follow = 0;
    }
    return 0;
}

/* ---- the common case in as few syscalls as possible ----------------------
 *
 * A path with no symlink on it at all (RESOLVE_NO_SYMLINKS on the whole of
 * it) has no trailing link to decide on and no /proc/self to mean the
 * caller: a stat is an O_PATH open and an fstat, an open one openat2 (its
 * type asked first, so that a FIFO is never opened here). Anything else (a
 * symlink met, O_CREAT, ".." in a relative path, a trailing slash, /proc
 * files that matter) is left to the walk. 1: replied; 0: walk. */
static int last_is(const char *p, const char *name)
{
    const char *slash = strrchr(p, '/');
    return strcmp(slash ? slash + 1 : p, name) == 0;
}

static int whole_path(struct yr_ctx *ctx, struct wk *w, int from)
{
    const char *rel = w->path;
    size_t len = strlen(rel);
    int open_op = w->op == OP_OPEN;
    if (w->resolve || len == 0 || rel[len - 1] == '/' || last_is(rel, ".") || last_is(rel, ".."))
        return 0;
    if (open_op && ((w->flags & (O_CREAT | TMPFILE_BIT | O_PATH)) || last_is(rel, "mem") ||
                    last_is(rel, "uid_map") || last_is(rel, "gid_map") ||
                    last_is(rel, "projid_map") || last_is(rel, "setgroups")))
        return 0;
    if (!open_op && w->op != OP_STAT && w->op != OP_STAT64 && w->op != OP_STATX)
        return 0;
    uint64_t res = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int start = from;
    if (rel[0] == '/') {
        if (open_root(w) < 0)
            return 0;
        while (*rel == '/')
            rel++;
        start = w->root;
        res |= RESOLVE_IN_ROOT;                 /* ".." stops at the caller's root */
    } else if (has_dotdot(rel)) {
        return 0;
    }
    if (!open_op) {
        int fd = o2(start, rel, O_PATH | (w->follow ? 0 : O_NOFOLLOW), res);
        if (fd == -ELOOP || fd == -EXDEV || fd == -EAGAIN)
            return 0;                            /* a symlink on the way: the walk */
        if (fd >= 0 && on_proc(fd)) {
            close(fd);
            return 0;                            /* /proc: the walk, with its guard */
        }
        if (fd < 0) {
            yr_reply(ctx, w->ev.id, 0, -fd);
            return 1;
        }
        int err = stat_to_caller(w, fd);
        close(fd);
        yr_reply(ctx, w->ev.id, 0, -err);
        return 1;
    }
    struct stat st;
    if (fstatat(start, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        return 0;                                /* FIFOs, devices, links, errors: the walk */
    int fl = w->flags | O_NOCTTY | O_CLOEXEC;
    int added = !(fl & O_NONBLOCK);
    int fd = open_here(start, rel, fl | O_NONBLOCK, 0, res);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == EXDEV || e == EAGAIN || e == ENXIO || e == EWOULDBLOCK)
            return 0;
        yr_reply(ctx, w->ev.id, 0, e);
        return 1;
    }
    if (on_proc(fd)) {
        close(fd);
        return 0;                                /* /proc: the walk, with its guard */
    }
    if (added)
        fcntl(fd, F_SETFL, w->flags & (O_APPEND | O_DIRECT | O_NOATIME));
    int rc = yr_reply_addfd(ctx, w->ev.id, fd, (uint32_t)(w->flags & O_CLOEXEC));
    close(fd);
    if (rc < 0)
        yr_reply(ctx, w->ev.id, 0, -rc);
    return 1;
}

/* The path (and a symlink's target), read once; EPERM as the caller: as us. */
static int read_str(struct wk *w, uint64_t addr, char *out)
{
    int n = yr_read_path(w->ev.tid, addr, out, YR_PATH_MAX);
    if (n == -EPERM || n == -EACCES) {
        yr_fs_reset();
        n = yr_read_path(w->ev.tid, addr, out, YR_PATH_MAX);
    }
    return n;
}

/* access() without AT_EACCESS: the real ids, as access_override_creds. */
static void access_identity(struct wk *w)
{
    if (w->ev.sys == YR_SYS_FACCESSAT2 && (w->flags & AT_EACCESS))
        return;
    int foreign_ns = w->ev.cap_effective != 0 && w->id.caps == 0;
    w->id.fsuid = w->id.ruid;
    w->id.fsgid = w->id.rgid;
    w->id.caps = (w->id.ruid == 0 && !foreign_ns) ? w->ev.cap_permitted : 0;
}

int yr_walk_settle(struct yr_ctx *ctx, const struct yr_event *ev)
{
    struct wk *w = &W;
    pub.hook = 0;
    uint64_t path_addr, target_addr;
    wk_close(w);
    w->ev = *ev;
    w->op = op_of(ev->sys);
    if (ev->arch == AUDIT_ARCH_I386 && (ev->sys == YR_SYS_STAT || ev->sys == YR_SYS_LSTAT ||
                                        ev->sys == YR_SYS_STATFS))
        w->op = OP_CHECK;     /* i386's compat layouts: walked, decided and continued */
    w->root_known = 0;
    w->magic = 0;
    w->exists = 0;
    w->hops = w->retries = 0;
    w->buf = 0;
    listener_fd = yr_ctx_listener(ctx);
    int err = decode(w, &path_addr, &target_addr);
    if (err < 0)
        return finish(ctx, w, err);
    if (w->op == OP_SYMLINK) {
        int n = read_str(w, target_addr, w->target);
        if (n < 0)
            return finish(ctx, w, n);
        if (n == 0)
            return finish(ctx, w, -ENOENT);
    }
    if (w->op == OP_LINKSRC) {
        int n = read_str(w, path_addr, w->path);
        if (n <= 0) {                           /* errors and AT_EMPTY_PATH: pathops says */
            if (yr_link_settle(ctx, ev, yr_ctx_link(ctx), yr_ctx_link_mask(ctx)))
                return 1;
            pub.hook = YR_HOOK_PATH_LINK;
            return 0;
        }
    }
    if ((ev->sys == YR_SYS_UTIMENSAT || ev->sys == YR_SYS_UTIMENSAT_TIME64) && path_addr == 0) {
        /* futimens: no path, nothing to decide */
        if (yr_id_valid(ctx, ev->id))
            yr_reply_continue(ctx, ev->id);
        wk_close(w);
        return 1;
    }
    int empty_ok = (w->op == OP_STAT || w->op == OP_STAT64 || w->op == OP_STATX ||
                    ev->sys == YR_SYS_FACCESSAT2 || ev->sys == YR_SYS_EXECVEAT ||
                    ev->sys == YR_SYS_FCHOWNAT || ev->sys == YR_SYS_FCHMODAT2 ||
                    ev->sys == YR_SYS_NAME_TO_HANDLE_AT || ev->sys == YR_SYS_OPEN_TREE ||
                    ev->sys == YR_SYS_UTIMENSAT || ev->sys == YR_SYS_UTIMENSAT_TIME64) &&
                   (w->flags & AT_EMPTY_PATH);
    int n;
    if (path_addr == 0 && empty_ok) {
        n = 0;                                   /* NULL with AT_EMPTY_PATH: the fd (6.11) */
        w->path[0] = '\0';
    } else {
        n = read_str(w, path_addr, w->path);
    }
    if (n < 0)
        return finish(ctx, w, n);
    if (n == 0 && !empty_ok)
        return finish(ctx, w, -ENOENT);
    if ((err = yr_caller_identity(ev, &w->id, &w->procdir)) < 0)
        return finish(ctx, w, err);
    if (w->op == OP_ACCESS)
        access_identity(w);
    yr_fs_become(&w->id);
    if (n == 0) {                                /* the dirfd itself */
        if (w->op == OP_CHECK || w->op == OP_ACCESS) {
            if (w->op == OP_CHECK)
                return finish(ctx, w, -ENOENT);  /* continued: the kernel does it */
            int fd = start_at(w, w->dirfd, 0);
            if (fd < 0)
                return finish(ctx, w, fd);
            int rc = (int)syscall(SYS_faccessat2, fd, "", (int)w->mode, AT_EMPTY_PATH | AT_EACCESS);
            int e = errno;
            close(fd);
            yr_reply(ctx, ev->id, 0, rc < 0 ? e : 0);
            return 1;
        }
        if (w->op == OP_META) {
            int fd = start_at(w, w->dirfd, 0);
            if (fd < 0)
                return finish(ctx, w, fd);
            meta_perform(ctx, w, fd);
            close(fd);
            wk_close(w);
            return 1;
        }
        err = stat_fd(ctx, w);
        return err < 0 ? finish(ctx, w, err) : 1;
    }
    int from = -1;
    int scoped = (w->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) != 0;
    if (w->path[0] != '/' || scoped) {
        from = start_at(w, w->dirfd, 1);
        if (from < 0)
            return finish(ctx, w, from);
        if (scoped)
            w->root = fcntl(from, F_DUPFD_CLOEXEC, 0);
    } else {
        from = -1;                               /* absolute: the caller's root */
    }
    if (whole_path(ctx, w, from)) {
        close_fd(from);
        wk_close(w);
        return 1;
    }
    err = walk(w, from, w->path);
    if (err < 0)
        return finish(ctx, w, err);
    return drive(ctx, w);
}

/* After Python's verdict at a hook point. 1: replied; 0: another hook point. */
int yr_walk_resume(struct yr_ctx *ctx, uint64_t id, int32_t deny_errno)
{
    struct wk *w = &W;
    (void)id;
    if (!pub.hook)
        return 1;
    yr_fs_become(&w->id);
    int rc;
    if (deny_errno) {
        rc = finish(ctx, w, -deny_errno);
    } else if (pub.hook == YR_HOOK_FOLLOW_LINK) {
        int err = follow_held(w);
        rc = err < 0 ? finish(ctx, w, err) : drive(ctx, w);
    } else if (pub.hook == YR_HOOK_EXEC_PRIVILEGED) {
        if (yr_id_valid(ctx, w->ev.id))
            yr_reply_continue(ctx, w->ev.id);
        wk_close(w);
        rc = 1;
    } else if (pub.hook == YR_HOOK_PATH_SYMLINK) {
        perform_symlink(ctx, w);
        wk_close(w);
        rc = 1;
    } else {
        int r = open_final(ctx, w);
        if (r == R_DONE) {
            wk_close(w);
            rc = 1;
        } else if (r < 0) {
            rc = finish(ctx, w, r);
        } else {
            rc = finish(ctx, w, -EAGAIN);
        }
    }
    if (rc) {
        pub.hook = 0;                            /* nothing waits for Python any more */
        yr_fs_reset();
    }
    return rc;
}
