/* stat, access, metadata and xattr calls, name_to_handle_at and symlink,
 * performed for the caller on the object its path led to (res.obj, held as
 * an O_PATH fd and judged by the gate), never by name again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>

#include "engine.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* The object exists (as the call's path form requires): 0 or -errno. */
int yr_object_there(const struct yr_call *c)
{
    const struct yr_res *r = &c->res;
    if (!r->exists && !r->magic)
        return -ENOENT;
    if (r->slash && !r->magic && !S_ISDIR(r->st.st_mode))
        return -ENOTDIR;
    return 0;
}

int yr_act_stat(struct yr_call *c)
{
    int err = yr_object_there(c);
    if (err < 0)
        return err;
    err = yr_stat_to_caller(c, c->res.obj, &c->res.obj_st);
    yr_reply(c->ctx, c->ev.id, 0, -err);
    return R_DONE;
}

int yr_act_access(struct yr_call *c)
{
    int err = yr_object_there(c);
    if (err < 0)
        return err;
    long rc = syscall(SYS_faccessat2, c->res.obj, "", (int)c->mode, AT_EMPTY_PATH | AT_EACCESS);
    yr_reply(c->ctx, c->ev.id, 0, rc < 0 ? errno : 0);
    return R_DONE;
}

int yr_perform_symlink(struct yr_call *c)
{
    if (!yr_call_still_waits(c))
        return R_DONE;                         /* the caller is gone: do nothing */
    int rc = symlinkat(c->target, c->res.dir, c->res.name);
    yr_reply(c->ctx, c->ev.id, 0, rc < 0 ? errno : 0);
    return R_DONE;
}

/* protect_creation (hook path_symlink): is a new symlink in dir one the
 * chain must judge? A sticky world-writable directory the caller's fsuid
 * does not own, whether symlink() makes the link or link() gives a symlink
 * inode a new name there (link.c). 1 (the directory's facts are in pub),
 * 0, or -errno. */
int yr_symlink_in_sticky(struct yr_call *c, int dir)
{
    if (!(yr_walk_config(NULL, NULL) & YR_WALK_PATH_SYMLINK))
        return 0;
    struct stat ds;
    if (fstat(dir, &ds) < 0)
        return -errno;
    uint32_t owner = yr_owner(dir, ds.st_uid, 0);
    if (!(ds.st_mode & S_ISVTX) || !(ds.st_mode & S_IWOTH) || yr_same_owner(owner, c->id.fsuid))
        return 0;
    c->pub.dir_uid = owner;
    c->pub.dir_mode = ds.st_mode;
    return 1;
}

int yr_act_symlink(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (r->exists || strcmp(r->name, ".") == 0 || strcmp(r->name, "..") == 0)
        return -EEXIST;
    if (r->slash)
        return -ENOENT;
    int ask = yr_symlink_in_sticky(c, r->dir);
    if (ask < 0)
        return ask;
    if (ask) {
        memcpy(c->pub.target, c->target, sizeof(c->pub.target));
        return yr_hook(c, YR_HOOK_PATH_SYMLINK, RESUME_SYMLINK);
    }
    return yr_perform_symlink(c);
}

/* name_to_handle_at(AT_SYMLINK_FOLLOW) on the walked object: the header
 * and handle (on EOVERFLOW the header only) and the mount id written back,
 * as do_sys_name_to_handle. */
#define AT_HANDLE_MNT_ID_UNIQUE_ 0x001
static long handle_of(struct yr_call *c, int fd)
{
    struct { uint32_t bytes; int32_t type; unsigned char h[128]; } fh;
    if (yr_read_caller(c, c->buf, &fh.bytes, 4) < 0) {
        errno = EFAULT;
        return -1;
    }
    if (fh.bytes > 128) {
        errno = EINVAL;
        return -1;
    }
    uint64_t mnt = 0;
    int extra = c->flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH);
    long rc = syscall(SYS_name_to_handle_at, fd, "", &fh, &mnt, AT_EMPTY_PATH | extra);
    int e = errno;
    if (rc < 0 && e != EOVERFLOW)
        return rc;
    size_t msize = (extra & AT_HANDLE_MNT_ID_UNIQUE_) ? 8 : 4;
    size_t hsize = 8 + (rc == 0 ? fh.bytes : 0);
    struct iovec lm = { &mnt, msize }, rm = { (void *)(uintptr_t)c->xsize, msize };
    struct iovec lh = { &fh, hsize }, rh = { (void *)(uintptr_t)c->buf, hsize };
    if (yr_write_caller(c, &lm, 1, &rm, 1) < 0 || yr_write_caller(c, &lh, 1, &rh, 1) < 0) {
        errno = EFAULT;
        return -1;
    }
    errno = e;
    return rc;
}

/* getxattr and listxattr: the value or list written back. */
static long xattr_read(struct yr_call *c, const char *self)
{
    size_t size = c->xsize > XATTR_VALUE_MAX ? XATTR_VALUE_MAX : (size_t)c->xsize;
    int get = c->ev.sys == YR_SYS_GETXATTR || c->ev.sys == YR_SYS_GETXATTRAT;
    long rc = get ? getxattr(self, c->xname, size ? c->xbuf : NULL, size)
                  : listxattr(self, size ? c->xbuf : NULL, size);
    if (rc < 0 && errno == ERANGE && size >= XATTR_VALUE_MAX)
        errno = E2BIG;
    if (rc > 0 && size) {
        long err = get ? yr_acl_ids(c, c->xname, (unsigned char *)c->xbuf, (size_t)rc, 0) : 0;
        if (err < 0) {
            errno = (int)-err;                   /* its maps unknown: no ids of ours shown */
            return -1;
        }
        struct iovec l = { c->xbuf, (size_t)rc }, r = { (void *)(uintptr_t)c->buf, (size_t)rc };
        if (yr_write_caller(c, &l, 1, &r, 1) < 0) {
            errno = EFAULT;
            return -1;
        }
    }
    return rc;
}

/* readlink: the body of the link held as fd, at most bufsiz bytes, written
 * back without a NUL, as the kernel does. An object that is not a link:
 * EINVAL, or ENOENT when it was named by "" (do_readlinkat). A /proc link of
 * the caller's own process is read as ourselves, as resolve.c follows one
 * (follow_magic: the kernel never asks a process about its own links; asked
 * as the caller, it would want CAP_SYS_PTRACE from us over a caller in a
 * user namespace of its own); any other as the caller, after the gate. */
static long link_body(struct yr_call *c, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    if (!S_ISLNK(st.st_mode)) {
        errno = c->path[0] ? EINVAL : ENOENT;
        return -1;
    }
    size_t size = c->xsize < sizeof(c->xbuf) ? (size_t)c->xsize : sizeof(c->xbuf);
    int own = c->own_entry;
    if (own)
        yr_fs_pause();
    ssize_t n = readlinkat(fd, "", c->xbuf, size);
    int e = errno;
    if (own)
        yr_fs_resume();
    if (n > 0) {
        struct iovec l = { c->xbuf, (size_t)n }, r = { (void *)(uintptr_t)c->buf, (size_t)n };
        if (yr_write_caller(c, &l, 1, &r, 1) < 0)
            e = EFAULT, n = -1;
    }
    errno = e;
    return n;
}

static long statfs_to_caller(struct yr_call *c, int fd)
{
    struct statfs sf;
    memset(&sf, 0, sizeof(sf));
    if (fstatfs(fd, &sf) < 0)
        return -1;
    struct iovec l = { &sf, sizeof(sf) }, r = { (void *)(uintptr_t)c->buf, sizeof(sf) };
    if (yr_write_caller(c, &l, 1, &r, 1) < 0) {
        errno = EFAULT;
        return -1;
    }
    return 0;
}

#ifndef SYS_file_getattr
#define SYS_file_getattr 468
#define SYS_file_setattr 469
#endif

/* struct file_attr: fa_xflags (u64) at 0, fa_projid (u32) at 16. */
#define FA_PROJID 16
#define XFLAG_PROJINHERIT 0x200u
#define PROJID_INVALID 0xFFFFFFFFu

/* A file's project quota state (fa_projid, FS_XFLAG_PROJINHERIT) may be
 * changed from the initial user namespace only (fileattr_set_prepare):
 * our thread is there, a caller of another user namespace is not, so its
 * change is refused here. The kernel's own checks before that one (EROFS;
 * EPERM for a file the caller does not own, or for an immutable or
 * append-only bit) are had on a probe: the caller's struct (at c->xbuf)
 * with the project id no namespace maps (-1), which the kernel then
 * refuses (EINVAL) without changing anything. 0: the call may be made;
 * else -errno.
 * Race: the state is read here and set by our call after, not under the
 * kernel's inode lock. Only a process of the initial namespace can change
 * it in between (the caller cannot: each of its routes is refused, by the
 * kernel or here); our call then puts back the state read. */
static int project_state_refusal(struct yr_call *c, const char *self, size_t usize)
{
    if (!c->id.foreign_userns)
        return 0;
    unsigned char now[24];
    if (syscall(SYS_file_getattr, AT_FDCWD, self, now, sizeof(now), 0) < 0)
        return -errno;
    uint64_t xflags, xflags_now;
    uint32_t projid, projid_now;
    memcpy(&xflags, c->xbuf, 8);
    memcpy(&xflags_now, now, 8);
    memcpy(&projid, c->xbuf + FA_PROJID, 4);
    memcpy(&projid_now, now + FA_PROJID, 4);
    if (projid == projid_now && !((xflags ^ xflags_now) & XFLAG_PROJINHERIT))
        return 0;
    if (projid_now == PROJID_INVALID)
        return -EINVAL;                 /* -1 is no probe there: it would be no change */
    uint32_t invalid = PROJID_INVALID;
    memcpy(c->xbuf + FA_PROJID, &invalid, 4);
    long rc = syscall(SYS_file_setattr, AT_FDCWD, self, c->xbuf, usize, 0);
    return rc < 0 ? -errno : -EINVAL;
}

/* file_getattr, file_setattr (6.17) on the held object: the same call made
 * on our copy of the caller's struct file_attr (its size checked by the
 * kernel), by the object's /proc/self/fd name (self), as the xattr calls
 * are. Not on the held fd with "" and AT_EMPTY_PATH: the kernel takes an
 * empty path's descriptor with fdget, which refuses the O_PATH file we hold
 * (EBADF, every call); the magic link lands on the object itself, never
 * followed further. */
static long file_attr(struct yr_call *c, const char *self)
{
    size_t usize = c->xflags;
    int set = c->ev.sys == YR_SYS_FILE_SETATTR;
    memset(c->xbuf, 0, usize);
    if (set && yr_read_caller(c, c->buf, c->xbuf, usize) < 0) {
        errno = EFAULT;
        return -1;
    }
    int err = set ? project_state_refusal(c, self, usize) : 0;
    if (err < 0) {
        errno = -err;
        return -1;
    }
    long rc = syscall(set ? SYS_file_setattr : SYS_file_getattr, AT_FDCWD, self, c->xbuf,
                      usize, 0);
    if (rc == 0 && !set) {
        struct iovec l = { c->xbuf, usize }, r = { (void *)(uintptr_t)c->buf, usize };
        if (yr_write_caller(c, &l, 1, &r, 1) < 0) {
            errno = EFAULT;
            return -1;
        }
    }
    return rc;
}

/* The kernel's refusals of a truncation of the regular file fd (sx: its
 * statx, with its attributes), as it gives them before truncating
 * (vfs_truncate; an O_TRUNC open's mnt_want_write and may_open): EROFS, the
 * write permission (EACCES; EPERM for an immutable file), EPERM for an
 * append-only one. 0 or -errno. */
int yr_truncate_refusal(int fd, const struct statx *sx)
{
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        return -EROFS;
    if (syscall(SYS_faccessat2, fd, "", W_OK, AT_EMPTY_PATH | AT_EACCESS) < 0)
        return -errno;
    return sx->stx_attributes & STATX_ATTR_APPEND ? -EPERM : 0;
}

/* truncate is made by us, under our RLIMIT_FSIZE: the caller's must be
 * judged here (inode_newsize_ok). Growing a file past the caller's soft
 * limit is EFBIG, and SIGXFSZ for the calling thread; shrinking is not
 * limited. The kernel finds it in setattr, after vfs_truncate's own errors
 * (EISDIR, EINVAL, EROFS, the write permission, EPERM for an append-only
 * file), which are therefore given first: a truncate that fails for them
 * sends no signal. 0: the truncate may be made; else -errno. */
static int beyond_fsize_limit(struct yr_call *c, int fd)
{
    struct rlimit lim;
    int err = yr_caller_limit(c, RLIMIT_FSIZE, &lim);
    if (err < 0)
        return err;
    uint64_t soft = lim.rlim_cur;
    if (soft == RLIM_INFINITY || (uint64_t)c->len <= soft)
        return 0;
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &sx) < 0)
        return -errno;
    if (S_ISDIR(sx.stx_mode))
        return -EISDIR;
    if (!S_ISREG(sx.stx_mode))
        return -EINVAL;
    if ((uint64_t)c->len <= sx.stx_size)
        return 0;
    err = yr_truncate_refusal(fd, &sx);
    if (err < 0)
        return err;
    /* Sent while the caller waits for our answer, as the kernel sends it
     * before the call returns. */
    if (yr_id_valid(c->ctx, c->ev.id))
        syscall(SYS_tgkill, yr_caller_tgid(c), c->ev.tid, SIGXFSZ);
    return -EFBIG;
}

/* Change or read the metadata of fd (O_PATH, the walked object), as the
 * caller, through its /proc/self/fd name or an AT_EMPTY_PATH call. */
int yr_meta_perform(struct yr_call *c, int fd)
{
    if (yr_meta_writes(c->ev.sys) && !yr_call_still_waits(c))
        return R_DONE;                         /* the caller is gone: do nothing */
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    long rc = -1;
    switch (c->ev.sys) {
    case YR_SYS_TRUNCATE: case YR_SYS_TRUNCATE64:
        rc = beyond_fsize_limit(c, fd);
        if (rc < 0)
            errno = (int)-rc, rc = -1;
        else
            rc = truncate(self, c->len);
        break;
    case YR_SYS_CHMOD: case YR_SYS_FCHMODAT: case YR_SYS_FCHMODAT2:
        rc = syscall(SYS_fchmodat2, fd, "", c->mode, AT_EMPTY_PATH);
        break;
    case YR_SYS_CHOWN: case YR_SYS_FCHOWNAT: {
        uint32_t uid = c->uid, gid = c->gid;
        int err = yr_ids_from_caller(c, &uid, &gid);
        if (err < 0)
            errno = -err;
        else
            rc = fchownat(fd, "", uid, gid, AT_EMPTY_PATH);
        break;
    }
    case YR_SYS_UTIMENSAT: case YR_SYS_UTIMENSAT_TIME64: case YR_SYS_UTIME:
    case YR_SYS_UTIMES: case YR_SYS_FUTIMESAT:
        rc = utimensat(fd, "", c->times_null ? NULL : c->ts, AT_EMPTY_PATH);
        break;
    case YR_SYS_GETXATTR: case YR_SYS_LISTXATTR: case YR_SYS_GETXATTRAT: case YR_SYS_LISTXATTRAT:
        rc = xattr_read(c, self);
        break;
    case YR_SYS_SETXATTR: case YR_SYS_SETXATTRAT:
        if (c->xsize && yr_read_caller(c, c->buf, c->xbuf, (size_t)c->xsize) < 0) {
            errno = EFAULT;
            break;
        }
        long err = yr_acl_ids(c, c->xname, (unsigned char *)c->xbuf, (size_t)c->xsize, 1);
        if (err < 0) {
            errno = (int)-err;
            break;
        }
        rc = setxattr(self, c->xname, c->xbuf, (size_t)c->xsize,
                      c->ev.sys == YR_SYS_SETXATTR ? c->flags : (int)c->xflags);
        break;
    case YR_SYS_REMOVEXATTR: case YR_SYS_REMOVEXATTRAT:
        rc = removexattr(self, c->xname);
        break;
    case YR_SYS_FILE_GETATTR: case YR_SYS_FILE_SETATTR:
        rc = file_attr(c, self);
        break;
    case YR_SYS_INOTIFY_ADD_WATCH:
        rc = inotify_add_watch(c->ifd, self, c->mode & ~(uint32_t)IN_DONT_FOLLOW);
        break;
    case YR_SYS_FANOTIFY_MARK:
        rc = fanotify_mark(c->ifd, c->xflags & ~(uint32_t)FAN_MARK_DONT_FOLLOW, c->xsize,
                           AT_FDCWD, self);
        break;
    case YR_SYS_STATFS:                          /* x86-64 and x32: the kernel's layout */
        rc = statfs_to_caller(c, fd);
        break;
    case YR_SYS_NAME_TO_HANDLE_AT:
        rc = handle_of(c, fd);
        break;
    case YR_SYS_READLINK: case YR_SYS_READLINKAT:
        rc = link_body(c, fd);
        break;
    default:
        errno = ENOSYS;
    }
    yr_reply(c->ctx, c->ev.id, rc < 0 ? 0 : rc, rc < 0 ? errno : 0);
    return R_DONE;
}

int yr_act_meta(struct yr_call *c)
{
    int err = yr_object_there(c);
    return err < 0 ? err : yr_meta_perform(c, c->res.obj);
}
