/* A path call's arguments, decoded for its ABI, and the errors the kernel
 * gives before it looks at any path (flags, structures in memory). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "engine.h"

#define STATX_SYNC_BITS (AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC)
/* What open() passes on (build_open_how). */
#define VALID_OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | \
                          O_NONBLOCK | O_SYNC | O_DSYNC | FASYNC | O_DIRECT | YR_O_LARGEFILE | \
                          O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_PATH | \
                          TMPFILE_BIT)
#define O_PATH_FLAGS (O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC)

int yr_op_of(int32_t sys)
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
    case YR_SYS_LINK: case YR_SYS_LINKAT:
        return OP_LINK;
    case YR_SYS_OPEN_TREE_ATTR:
        return OP_CHECK;
    case YR_SYS_CONNECT: case YR_SYS_BIND: case YR_SYS_SENDTO: case YR_SYS_SENDMSG:
    case YR_SYS_SENDMMSG: case YR_SYS_SOCKETCALL:
    case YR_SYS_MOUNT: case YR_SYS_UMOUNT2: case YR_SYS_PIVOT_ROOT: case YR_SYS_MOVE_MOUNT:
    case YR_SYS_FSPICK: case YR_SYS_MOUNT_SETATTR: case YR_SYS_FSCONFIG:
    case YR_SYS_QUOTACTL: case YR_SYS_ACCT: case YR_SYS_SWAPON: case YR_SYS_SWAPOFF:
    case YR_SYS_OLDSTAT: case YR_SYS_OLDLSTAT: case YR_SYS_LCHOWN: case YR_SYS_LSETXATTR:
    case YR_SYS_LREMOVEXATTR: case YR_SYS_BPF:
        return OP_NAMED;                         /* sockaddr.c, named.c */
    default:
        return OP_META;
    }
}

/* vfs_open_tree refuses a detached copy (OPEN_TREE_CLONE) to a caller that
 * may not mount (may_mount: CAP_SYS_ADMIN) before it looks anything up:
 * nothing is walked then, and no link is judged or said to be refused.
 * Only with flags the kernel is known to accept (and open_tree_attr's
 * attributes named where a size is given): its EINVAL comes first. */
#define OPEN_TREE_CLONE_ 1
#define OPEN_TREE_FLAGS_ (AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW | \
                          OPEN_TREE_CLONE_ | O_CLOEXEC)
static int may_not_clone_a_tree(const struct yr_call *c, const uint64_t *a)
{
    unsigned flags = (unsigned)a[2];
    return (flags & OPEN_TREE_CLONE_) && !(flags & ~(unsigned)OPEN_TREE_FLAGS_) &&
           !(c->ev.sys == YR_SYS_OPEN_TREE_ATTR && !a[3] && a[4]) &&
           !yr_may_mount(c);
}

static int64_t s32(uint64_t v)
{
    return (int64_t)(int32_t)(uint32_t)v;
}

/* The kernel's own validation of open flags and mode (build_open_flags),
 * asked of the kernel: an openat2 on a bad descriptor fails with EBADF
 * only once the how itself is valid. */
static int kernel_checks_how(const struct open_how *how)
{
    struct open_how probe = *how;
    probe.flags |= O_CLOEXEC;
    long rc = syscall(SYS_openat2, -1, "x", &probe, sizeof(probe));
    if (rc >= 0) {
        close((int)rc);
        return -EBADF;
    }
    return errno == EBADF ? 0 : -errno;
}

static int read_how(struct yr_call *c, uint64_t addr, uint64_t size)
{
    if (size < 24)
        return -EINVAL;
    if (size > 4096)
        return -E2BIG;
    unsigned char buf[4096];
    if (yr_read_caller(c, addr, buf, (size_t)size) < 0)
        return -EFAULT;
    for (uint64_t i = 24; i < size; i++)
        if (buf[i])
            return -E2BIG;
    struct open_how how;
    memcpy(&how, buf, 24);
    int err = kernel_checks_how(&how);
    if (err < 0)
        return err;
    c->flags = (int)how.flags;
    c->mode = (uint32_t)how.mode;
    c->res.resolve = how.resolve;
    return 0;
}

/* RESOLVE_CACHED: done only if the whole look-up is one in the kernel's
 * caches, never blocking; else EAGAIN, and the caller retries without it.
 * Ours is a walk of several calls, which may block: always EAGAIN (the
 * kernel's own answer for any look-up it cannot finish so), but after the
 * errors the kernel gives before it looks anything up: getname's (EFAULT,
 * ENAMETOOLONG, ENOENT for "") and path_init's (EBADF or ENOTDIR for the
 * dirfd a relative path starts from, or RESOLVE_IN_ROOT's; EXDEV for an
 * absolute path under RESOLVE_BENEATH). */
static int cached_lookup(struct yr_call *c, uint64_t path_addr)
{
    int n = yr_read_str(c, path_addr, c->path);
    if (n <= 0)
        return n < 0 ? n : -ENOENT;
    uint64_t resolve = c->res.resolve;
    if (c->path[0] == '/' && !(resolve & RESOLVE_IN_ROOT))
        return resolve & RESOLVE_BENEATH ? -EXDEV : -EAGAIN;
    if (c->dirfd == AT_FDCWD_INT)
        return -EAGAIN;
    if (yr_fs_become(&c->id) < 0)
        return -EPERM;                           /* as the walk: never as ourselves */
    int fd = yr_start_at(c, c->dirfd, 1);
    if (fd < 0)
        return fd;                               /* -EBADF, -ENOTDIR; -EPERM: fail closed */
    close(fd);
    return -EAGAIN;
}

/* open, openat, creat: what build_open_how makes of the flags (unknown bits
 * dropped; O_PATH beats everything else), then the kernel's own checks. */
static int open_flags(struct yr_call *c)
{
    int flags = c->flags & VALID_OPEN_FLAGS;
    if (flags & O_PATH)
        flags &= O_PATH_FLAGS;
    c->flags = flags;
    if (!(flags & (O_CREAT | TMPFILE_BIT)))
        c->mode = 0;
    c->mode &= 07777;
    if (flags & (O_CREAT | TMPFILE_BIT)) {
        struct open_how how = { .flags = (uint64_t)flags, .mode = c->mode };
        return kernel_checks_how(&how);
    }
    return 0;
}

/* The times of utime, utimes, futimesat and utimensat, in timespecs. */
static int read_times(struct yr_call *c, uint64_t addr)
{
    int compat = c->ev.arch == AUDIT_ARCH_I386_;
    int32_t sys = c->ev.sys;
    c->times_null = addr == 0;
    if (!addr)
        return 0;
    unsigned char b[32];
    size_t n;
    if (sys == YR_SYS_UTIME)
        n = compat ? 8 : 16;
    else if (sys == YR_SYS_UTIMENSAT_TIME64)
        n = 32;
    else                                      /* utimensat, utimes, futimesat */
        n = compat ? 16 : 32;
    if (yr_read_caller(c, addr, b, n) < 0)
        return -EFAULT;
    int64_t v[4] = { 0, 0, 0, 0 };
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
    if (sys == YR_SYS_UTIME) {                /* {actime, modtime}: whole seconds */
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
    } else if (sys == YR_SYS_UTIMES || sys == YR_SYS_FUTIMESAT) {
        for (int i = 1; i < 4; i += 2) {
            if (v[i] < 0 || v[i] >= 1000000)
                return -EINVAL;
            v[i] *= 1000;
        }
    } else if (compat) {                       /* a compat caller's nsec is 32 bits */
        v[1] = (int32_t)v[1];
        v[3] = (int32_t)v[3];
    }
    c->ts[0] = (struct timespec){ (time_t)v[0], (long)v[1] };
    c->ts[1] = (struct timespec){ (time_t)v[2], (long)v[3] };
    return 0;
}

static int read_xname(struct yr_call *c, uint64_t addr)
{
    int n = yr_read_path(c, addr, c->xname, sizeof(c->xname));
    if (n == -ENAMETOOLONG || n == 0)
        return -ERANGE;
    return n < 0 ? n : 0;
}

/* A structure of the caller's of usize bytes, as copy_struct_from_user
 * takes it into ksize bytes: bytes past ksize must be zero (E2BIG). */
static int read_struct(struct yr_call *c, uint64_t addr, uint64_t usize, void *out, size_t ksize)
{
    unsigned char buf[4096];
    if (usize > sizeof(buf))
        return -E2BIG;
    memset(out, 0, ksize);
    if (yr_read_caller(c, addr, buf, (size_t)usize) < 0)
        return -EFAULT;
    for (uint64_t i = ksize; i < usize; i++)
        if (buf[i])
            return -E2BIG;
    memcpy(out, buf, usize < ksize ? (size_t)usize : ksize);
    return 0;
}

/* setxattrat, getxattrat: struct xattr_args { value, size, flags } (6.13). */
static int read_xattr_args(struct yr_call *c, uint64_t addr, uint64_t usize)
{
    struct { uint64_t value; uint32_t size, flags; } args;
    if (usize > 4096)
        return -E2BIG;
    if (usize < sizeof(args))
        return -EINVAL;
    int err = read_struct(c, addr, usize, &args, sizeof(args));
    if (err < 0)
        return err;
    c->buf = args.value;
    c->xsize = args.size;
    c->xflags = args.flags;
    if (c->ev.sys == YR_SYS_GETXATTRAT ? args.flags != 0
                                       : (args.flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE)))
        return -EINVAL;
    return c->ev.sys == YR_SYS_SETXATTRAT && c->xsize > XATTR_VALUE_MAX ? -E2BIG : 0;
}

/* The *xattrat calls and file_[gs]etattr take AT_SYMLINK_NOFOLLOW and
 * AT_EMPTY_PATH only. */
static int at_flags(struct yr_call *c, uint64_t v)
{
    c->flags = (int)(uint32_t)v;
    return c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) ? -EINVAL : 0;
}

/* The *xattrat calls (6.13): (dirfd, path, at_flags, ...). */
static int decode_xattrat(struct yr_call *c, uint64_t *path_addr)
{
    const uint64_t *a = c->ev.args;
    c->dirfd = (int32_t)a[0];
    *path_addr = a[1];
    int err = at_flags(c, a[2]);
    if (err < 0)
        return err;
    switch (c->ev.sys) {
    case YR_SYS_SETXATTRAT: case YR_SYS_GETXATTRAT:
        err = read_xattr_args(c, a[4], a[5]);
        return err < 0 ? err : read_xname(c, a[3]);
    case YR_SYS_LISTXATTRAT:
        c->buf = a[3];
        c->xsize = a[4];
        return 0;
    default:                                     /* removexattrat */
        return read_xname(c, a[3]);
    }
}

/* file_getattr, file_setattr (6.17): (dirfd, path, struct file_attr *, usize, at_flags). */
static int decode_file_attr(struct yr_call *c, uint64_t *path_addr)
{
    const uint64_t *a = c->ev.args;
    c->dirfd = (int32_t)a[0];
    *path_addr = a[1];
    c->buf = a[2];
    int err = at_flags(c, a[4]);             /* the kernel's first check */
    if (err < 0)
        return err;
    uint64_t usize = a[3];                   /* a size_t: all 64 bits (i386's cut already) */
    if (usize > 4096)
        return -E2BIG;
    if (usize < 24)
        return -EINVAL;                      /* FILE_ATTR_SIZE_VER0, before an empty path's EBADF */
    c->xflags = (uint32_t)usize;
    return 0;
}

/* "" (or NULL) with AT_EMPTY_PATH: the *xattrat calls and file_[gs]etattr
 * act on the file dirfd names, taken with fdget once the checks above are
 * passed, which refuses an O_PATH file as it refuses no file: EBADF, where
 * the walk (on_dirfd) would act on whatever the descriptor names.
 * setxattrat, getxattrat and file_[gs]etattr look a negative dirfd up
 * instead (AT_FDCWD: the cwd); listxattrat and removexattrat never do.
 * Another thread of the caller may swap the path or the descriptor after
 * this look: the walk then acts on the object the caller's own descriptor
 * names, judged by the gate as any, which /proc/self/fd/N reaches anyway. */
static int empty_path_needs_a_file(struct yr_call *c, uint64_t path_addr)
{
    char first = 0;
    if (!(c->flags & AT_EMPTY_PATH))
        return 0;
    if (path_addr && yr_read_caller(c, path_addr, &first, 1) < 0)
        return -EFAULT;
    if (first)
        return 0;                                /* a path: looked up */
    if (c->dirfd < 0)
        return c->ev.sys == YR_SYS_LISTXATTRAT || c->ev.sys == YR_SYS_REMOVEXATTRAT ? -EBADF : 0;
    yr_fs_reset();
    int copy = yr_fetch_thread_fd(c->ev.tid, yr_caller_tgid(c), c->dirfd);
    yr_fs_become(&c->id);
    if (copy < 0)
        return copy == -EBADF ? -EBADF : 0;    /* not ours to look at: the walk's to refuse */
    int flags = fcntl(copy, F_GETFL);
    close(copy);
    return flags >= 0 && (flags & O_PATH) ? -EBADF : 0;
}

/* Our copy of the caller's inotify instance or fanotify group (c->ifd),
 * fetched as us from the calling thread's own table (the kernel's
 * current->files): the call is made on it. */
static int take_group(struct yr_call *c, uint64_t fd_arg)
{
    yr_fs_reset();
    int fd = yr_fetch_thread_fd(c->ev.tid, yr_caller_tgid(c), (int32_t)fd_arg);
    yr_fs_become(&c->id);
    if (fd < 0)
        return -EBADF;
    c->ifd = fd;
    return 0;
}

static int decode_inotify(struct yr_call *c, uint64_t fd_arg, uint64_t mask)
{
    c->mode = (uint32_t)mask;
    if (!(c->mode & (IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED | IN_ONLYDIR |
                     IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_ADD | IN_ISDIR | IN_ONESHOT |
                     0x10000000 /* IN_MASK_CREATE */)))
        return -EINVAL;
    if (c->mode & IN_DONT_FOLLOW)
        c->res.follow = 0;
    return take_group(c, fd_arg);
}

/* fanotify_mark(fd, flags, mask, dirfd, path): the mark is made on our copy
 * of the caller's group, on the walked object. */
static int decode_fanotify(struct yr_call *c, uint64_t *path_addr, int compat,
                           const uint64_t *a)
{
    int at = compat ? 4 : 3;                /* i386 splits the 64-bit mask */
    c->xflags = (uint32_t)a[1];
    c->xsize = compat ? (a[2] & 0xFFFFFFFFu) | (a[3] << 32) : a[2];
    c->dirfd = (int32_t)a[at];
    *path_addr = a[at + 1];
    if (c->xflags & FAN_MARK_DONT_FOLLOW)
        c->res.follow = 0;
    return take_group(c, a[0]);
}

/* The metadata calls' arguments (OP_META). */
static int decode_meta(struct yr_call *c, uint64_t *path_addr)
{
    const struct yr_event *ev = &c->ev;
    int compat = ev->arch == AUDIT_ARCH_I386_;
    const uint64_t *a = ev->args;
    int err = 0;
    switch (ev->sys) {
    case YR_SYS_TRUNCATE:
        *path_addr = a[0]; c->len = compat ? s32(a[1]) : (int64_t)a[1];
        return c->len < 0 ? -EINVAL : 0;
    case YR_SYS_TRUNCATE64:
        *path_addr = a[0]; c->len = (int64_t)((a[1] & 0xFFFFFFFFu) | (a[2] << 32));
        return c->len < 0 ? -EINVAL : 0;
    case YR_SYS_CHMOD:
        *path_addr = a[0]; c->mode = (uint32_t)a[1] & 07777;
        return 0;
    case YR_SYS_FCHMODAT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->mode = (uint32_t)a[2] & 07777;
        return 0;
    case YR_SYS_FCHMODAT2:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->mode = (uint32_t)a[2] & 07777;
        c->flags = (int)a[3];
        return c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) ? -EINVAL : 0;
    case YR_SYS_CHOWN:
        *path_addr = a[0]; c->uid = (uint32_t)a[1]; c->gid = (uint32_t)a[2];
        if (compat && ev->nr == 182) {         /* i386 chown: 16-bit ids, 0xffff = -1 */
            c->uid = (c->uid & 0xFFFF) == 0xFFFF ? (uint32_t)-1 : (c->uid & 0xFFFF);
            c->gid = (c->gid & 0xFFFF) == 0xFFFF ? (uint32_t)-1 : (c->gid & 0xFFFF);
        }
        return 0;
    case YR_SYS_FCHOWNAT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->uid = (uint32_t)a[2];
        c->gid = (uint32_t)a[3]; c->flags = (int)a[4];
        return c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) ? -EINVAL : 0;
    case YR_SYS_UTIMENSAT: case YR_SYS_UTIMENSAT_TIME64:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->flags = (int)a[3];
        if (c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
            return -EINVAL;
        return read_times(c, a[2]);
    case YR_SYS_UTIME: case YR_SYS_UTIMES:
        *path_addr = a[0];
        return read_times(c, a[1]);
    case YR_SYS_FUTIMESAT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1];
        return read_times(c, a[2]);
    case YR_SYS_GETXATTR:
        *path_addr = a[0]; c->buf = a[2]; c->xsize = a[3];
        return read_xname(c, a[1]);
    case YR_SYS_SETXATTR:
        *path_addr = a[0]; c->buf = a[2]; c->xsize = a[3]; c->flags = (int)a[4];
        if (c->flags & ~(XATTR_CREATE | XATTR_REPLACE))
            return -EINVAL;
        err = read_xname(c, a[1]);
        return !err && c->xsize > XATTR_VALUE_MAX ? -E2BIG : err;
    case YR_SYS_LISTXATTR:
        *path_addr = a[0]; c->buf = a[1]; c->xsize = a[2];
        return 0;
    case YR_SYS_REMOVEXATTR:
        *path_addr = a[0];
        return read_xname(c, a[1]);
    case YR_SYS_STATFS:
        *path_addr = a[0]; c->buf = a[1];
        return 0;
    case YR_SYS_READLINK: case YR_SYS_READLINKAT: {
        /* do_readlinkat: bufsiz (an int) first, then the name; "" names the
         * dirfd's own object (LOOKUP_EMPTY, whatever the flags); the link
         * itself is read (followed only before a trailing slash, as lstat) */
        int at = c->ev.sys == YR_SYS_READLINKAT;
        int64_t size = s32(a[2 + at]);
        if (at)
            c->dirfd = (int32_t)a[0];
        *path_addr = a[at]; c->buf = a[1 + at]; c->xsize = (uint64_t)size;
        c->flags = AT_SYMLINK_NOFOLLOW;
        if (size <= 0)
            return -EINVAL;
        return *path_addr ? 0 : -EFAULT;
    }
    case YR_SYS_NAME_TO_HANDLE_AT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->buf = a[2];
        c->xsize = a[3];                    /* the mount id's address */
        c->flags = (int)a[4];
        return 0;
    case YR_SYS_OPEN_TREE: case YR_SYS_OPEN_TREE_ATTR:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->flags = (int)a[2];
        return may_not_clone_a_tree(c, a) ? -EPERM : 0;
    case YR_SYS_SETXATTRAT: case YR_SYS_GETXATTRAT: case YR_SYS_LISTXATTRAT:
    case YR_SYS_REMOVEXATTRAT: {
        int err = decode_xattrat(c, path_addr);
        return err < 0 ? err : empty_path_needs_a_file(c, *path_addr);
    }
    case YR_SYS_FILE_GETATTR: case YR_SYS_FILE_SETATTR: {
        int err = decode_file_attr(c, path_addr);
        return err < 0 ? err : empty_path_needs_a_file(c, *path_addr);
    }
    case YR_SYS_INOTIFY_ADD_WATCH:
        *path_addr = a[1];
        return decode_inotify(c, a[0], a[2]);
    case YR_SYS_FANOTIFY_MARK:
        return decode_fanotify(c, path_addr, compat, a);
    default:
        return -ENOSYS;
    }
}

/* The call's arguments. 0, or -errno the kernel gives before any walk. */
int yr_decode(struct yr_call *c, uint64_t *path_addr, uint64_t *target_addr)
{
    const struct yr_event *ev = &c->ev;
    const uint64_t *a = ev->args;
    int err = 0;
    c->dirfd = AT_FDCWD_INT;
    c->flags = 0;
    c->mode = 0;
    c->res.resolve = 0;
    c->res.follow = 1;
    *target_addr = 0;
    switch (ev->sys) {
    case YR_SYS_OPEN:
        *path_addr = a[0]; c->flags = (int)a[1]; c->mode = (uint32_t)a[2];
        err = open_flags(c);
        break;
    case YR_SYS_CREAT:
        *path_addr = a[0]; c->flags = O_CREAT | O_WRONLY | O_TRUNC; c->mode = (uint32_t)a[1];
        err = open_flags(c);
        break;
    case YR_SYS_OPENAT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->flags = (int)a[2];
        c->mode = (uint32_t)a[3];
        err = open_flags(c);
        break;
    case YR_SYS_OPENAT2:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1];
        err = read_how(c, a[2], a[3]);
        if (err == 0 && (c->res.resolve & RESOLVE_CACHED))
            err = cached_lookup(c, *path_addr);
        break;
    case YR_SYS_STAT: case YR_SYS_STAT64:
        *path_addr = a[0]; c->buf = a[1];
        break;
    case YR_SYS_LSTAT: case YR_SYS_LSTAT64:
        *path_addr = a[0]; c->buf = a[1]; c->flags = AT_SYMLINK_NOFOLLOW;
        break;
    case YR_SYS_NEWFSTATAT: case YR_SYS_FSTATAT64:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->buf = a[2]; c->flags = (int)a[3];
        if (c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | STATX_SYNC_BITS))
            return -EINVAL;                      /* vfs_statx's own check */
        break;
    case YR_SYS_STATX:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->flags = (int)a[2];
        c->mode = (uint32_t)a[3]; c->buf = a[4];
        if ((c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | STATX_SYNC_BITS)) ||
            (c->flags & STATX_SYNC_BITS) == STATX_SYNC_BITS || (c->mode & STATX__RESERVED))
            return -EINVAL;
        break;
    case YR_SYS_ACCESS:
        *path_addr = a[0]; c->mode = (uint32_t)a[1];
        break;
    case YR_SYS_FACCESSAT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->mode = (uint32_t)a[2];
        break;
    case YR_SYS_FACCESSAT2:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->mode = (uint32_t)a[2];
        c->flags = (int)a[3];
        if (c->flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH))
            return -EINVAL;
        break;
    case YR_SYS_EXECVE: case YR_SYS_CHDIR: case YR_SYS_CHROOT:
        *path_addr = a[0];
        break;
    case YR_SYS_EXECVEAT:
        c->dirfd = (int32_t)a[0]; *path_addr = a[1]; c->flags = (int)a[4];
        break;
    case YR_SYS_SYMLINK:
        *target_addr = a[0]; *path_addr = a[1];
        break;
    case YR_SYS_SYMLINKAT:
        *target_addr = a[0]; c->dirfd = (int32_t)a[1]; *path_addr = a[2];
        break;
    default:
        err = decode_meta(c, path_addr);
    }
    if (err < 0)
        return err;
    if (c->op == OP_ACCESS && (c->mode & ~(uint32_t)S_IRWXO))
        return -EINVAL;
    if (c->op == OP_OPEN) {
        c->res.follow = !(c->flags & O_NOFOLLOW) &&
                        (c->flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
        /* ADDFD takes its file with fget(), which refuses O_PATH files: an
         * O_PATH open is walked, judged and continued, like execve. */
        if (c->flags & O_PATH)
            c->op = OP_CHECK;
    } else if (c->op == OP_SYMLINK || (c->flags & AT_SYMLINK_NOFOLLOW)) {
        c->res.follow = 0;
    }
    return 0;
}
