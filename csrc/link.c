/* link and linkat, performed for the caller.
 *
 * Both paths go through the resolver as every other path call does, hooks
 * and gate included: the old one first (its trailing link followed only
 * with AT_SYMLINK_FOLLOW, then decided on as follow_link), as the kernel
 * resolves it before it looks at the new name; then the new name's parent.
 * The source is held as an O_PATH fd; the hardlink rule is decided on the
 * facts of that fd, and the link is made from that same fd as the caller
 * (AT_EMPTY_PATH on a descriptor this thread opened with the caller's
 * identity): no other thread can change what is linked after the check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/capability.h>

#include "engine.h"

/* The chain's path_link rule, one for every receiver of the sandbox (a live
 * change reaches them all): one aligned word, read once per decision. */
static uint64_t link_mask;


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

/* The held source's facts. CAP_FOWNER counts as the kernel's
 * capable_wrt_inode_uidgid: only over an inode whose uid and gid the
 * caller's namespace maps; a caller's capabilities count only in ours
 * (caps), so they are those yr_owner does not call unmapped. */
static uint32_t base_facts(struct yr_call *c, const struct stat *src)
{
    struct yr_link *op = &c->link;
    struct stat st = *src;
    op->uid = yr_owner(c->link_src, st.st_uid, 0);
    op->gid = yr_owner(c->link_src, st.st_gid, 1);
    op->mode = st.st_mode;
    op->fsuid = c->id.fsuid;
    uint32_t f = 0;
    if (yr_same_owner(op->uid, c->id.fsuid))
        f |= YR_LF_OWNER;
    if ((c->id.caps >> CAP_FOWNER & 1) && op->uid != YR_UNMAPPED && op->gid != YR_UNMAPPED)
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

/* Link the held source to the new name as the caller (this thread has its
 * identity): 0, or -1 and errno. AT_EMPTY_PATH is the kernel's to allow
 * only on a file whose opener's credentials are this thread's current ones
 * (6.10+): a source held since before a switch of identity is opened again
 * first. */
static int link_held(struct yr_call *c)
{
    int rc = linkat(c->link_src, "", c->link_dir, c->link.name, AT_EMPTY_PATH);
    if (rc < 0 && errno == ENOENT) {
        int again = yr_reopen(c->link_src, O_PATH, 0);
        if (again >= 0) {
            rc = linkat(again, "", c->link_dir, c->link.name, AT_EMPTY_PATH);
            int e = errno;
            close(again);
            errno = e;
        }
    }
    return rc;
}

/* The source and the new name's directory are on two mounts: the kernel
 * refuses the link (EXDEV), but only after its look-up of the new name, whose
 * own error comes first where the filesystem's lookup of a missing name
 * fails instead of leaving a negative dentry (procfs; the empty directories
 * sysfs and procfs keep as mount points: ENOENT, from filename_create), and
 * after a trailing slash (ENOENT) and a read-only mount (EROFS). The kernel
 * names it: the link itself, asked of it, cannot be made (our name has no
 * trailing slash: its ENOENT, which comes after the look-up's errors, is
 * ours to give). The race: none. Both mounts are pinned by our
 * descriptors, so their ids, compared here, stay distinct, and the kernel
 * compares those same mounts (the held source's and the held directory's),
 * whatever is renamed or mounted meanwhile. */
static int cross_mount_error(struct yr_call *c)
{
    int err = link_held(c) == 0 ? -EXDEV : -errno;     /* 0 cannot be: see above */
    if (c->link.trailing && (err == -EROFS || err == -EXDEV))
        return -ENOENT;
    return err;
}

static int on_two_mounts(struct yr_call *c)
{
    struct statx a, b;
    return statx(c->link_src, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) == 0 &&
           statx(c->link_dir, "", AT_EMPTY_PATH, STATX_MNT_ID, &b) == 0 &&
           (a.stx_mask & STATX_MNT_ID) && a.stx_mnt_id != b.stx_mnt_id;
}

/* The errors the kernel finds between the two lookups and may_linkat's
 * rule: an existing new name, two mounts (and what comes before), a
 * trailing slash, a read-only mount, an owner the mount's idmap does not
 * map (may_linkat's own first test). */
static int before_rule(struct yr_call *c)
{
    struct stat st;
    int dir = c->link_dir;
    if (fstatat(dir, c->link.name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return -EEXIST;
    if (errno != ENOENT)
        return -errno;
    if (on_two_mounts(c))
        return cross_mount_error(c);
    if (c->link.trailing)
        return -ENOENT;
    struct statvfs vfs;
    if (fstatvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        return -EROFS;
    if (fstat(c->link_src, &st) == 0 && yr_owner_overflows(c->link_src, &st))
        return -EOVERFLOW;
    return 0;
}

static int perform(struct yr_call *c)
{
    if (!yr_call_still_waits(c))
        return R_DONE;                         /* the caller is gone: do nothing */
    int rc = link_held(c);
    yr_reply(c->ctx, c->ev.id, 0, rc < 0 ? errno : 0);
    return R_DONE;
}

/* The link rule allows it. A new name for a symlink inode is a symlink
 * created in that directory: protect_creation's rule judges it as it
 * judges symlink() (meta.c, hook path_symlink, the new path and the link's
 * body for the audit), after the errors the kernel finds first, which
 * symlink() also gives first (EEXIST...). */
static int allowed(struct yr_call *c)
{
    int ask = S_ISLNK(c->link.mode) ? yr_symlink_in_sticky(c, c->link_dir) : 0;
    if (ask > 0 && (ask = before_rule(c)) == 0) {
        ssize_t n = readlinkat(c->link_src, "", c->pub.target, sizeof(c->pub.target) - 1);
        c->pub.target[n > 0 ? n : 0] = '\0';
        int rc = yr_hook(c, YR_HOOK_PATH_SYMLINK, RESUME_LINK_SYMLINK);
        memcpy(c->pub.path, c->link.new_path, sizeof(c->pub.path));
        return rc;
    }
    return ask < 0 ? ask : perform(c);
}

/* Split the new path's last component as filename_parentat does: -EEXIST
 * for ".", ".." and "/" (the kernel's LAST_DOT, LAST_DOTDOT, LAST_ROOT),
 * after its parent was found. */
static int new_name(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (strcmp(r->name, ".") == 0 || strcmp(r->name, "..") == 0)
        return -EEXIST;
    snprintf(c->link.name, sizeof(c->link.name), "%s", r->name);
    c->link.trailing = r->slash;
    c->link_dir = r->dir;
    r->dir = -1;
    return 0;
}

/* Both strings in one process_vm_readv (one mm look-up and access check
 * instead of two), each as yr_read_path's first read takes it. Used only
 * when it gives both NULs; anything else (a fault, a long string) is read
 * again one string at a time, for the kernel's errors in its order (the
 * old path's first). Returns the old path's length or -1. */
static int read_both(struct yr_call *c, uint64_t oldp)
{
    struct yr_link *op = &c->link;
    size_t c1 = yr_first_read(oldp), c2 = yr_first_read(c->link_newp);
    struct iovec local[2] = { { op->old_path, c1 }, { op->new_path, c2 } };
    struct iovec remote[2] = { { (void *)(uintptr_t)oldp, c1 },
                               { (void *)(uintptr_t)c->link_newp, c2 } };
    if (process_vm_readv(c->ev.tid, local, 2, remote, 2, 0) != (ssize_t)(c1 + c2))
        return -1;
    c->mem_reads++;             /* the call's first read (caller.c): later ones are checked */
    char *z1 = memchr(op->old_path, '\0', c1), *z2 = memchr(op->new_path, '\0', c2);
    if (!z1 || !z2)
        return -1;
    c->link_new_len = (int)(z2 - op->new_path);
    return (int)(z1 - op->old_path);
}

/* The source is held (res.obj): read and resolve the new name, then decide. */
int yr_link_source_held(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    struct yr_link *op = &c->link;
    if (!r->exists && !r->magic)
        return -ENOENT;
    if (r->slash && !r->magic && !S_ISDIR(r->st.st_mode))
        return -ENOTDIR;
    c->link_src = r->obj;
    r->obj = -1;
    struct stat src_st = r->obj_st;
    yr_close(r->dir);
    r->dir = -1;
    int n = c->link_new_len >= 0 ? c->link_new_len : yr_read_str(c, c->link_newp, op->new_path);
    if (n < 0)
        return n;
    if (n == 0)
        return -ENOENT;
    r->follow = 0;
    r->magic = r->exists = 0;
    int from = -1;
    if (op->new_path[0] != '/') {
        /* The new name's walk may start where the old one did. */
        int same = c->dirfd == c->link_newdfd && c->path[0] != '/' && c->spare_start >= 0;
        from = same ? c->spare_start : yr_start_at(c, c->link_newdfd, 1);
        if (same)
            c->spare_start = -1;
        if (from < 0)
            return from;
    }
    int err = yr_walk(c, from, op->new_path);
    if (err == 0)
        err = new_name(c);
    if (err < 0)
        return err;
    uint64_t mask = __atomic_load_n(&link_mask, __ATOMIC_RELAXED);
    op->facts = base_facts(c, &src_st);
    if (!op->trailing && known_without_rw(mask, op->facts) &&
        yr_link_table_allows(mask, op->facts))
        return allowed(c);                     /* the common case, settled here */
    op->facts |= caller_can_rw(c->link_src) ? YR_LF_RW : 0;
    if (!op->trailing && yr_link_table_allows(mask, op->facts))
        return allowed(c);
    err = before_rule(c);
    if (err < 0)
        return err;
    return yr_hook(c, YR_HOOK_PATH_LINK, RESUME_LINK);     /* a module may object */
}

/* The AT_EMPTY_PATH source: the caller's descriptor itself, if the kernel
 * would let the caller name it (tmpfiles.c); never our authority instead. */
static int empty_source(struct yr_call *c, int32_t olddfd)
{
    int fd = yr_start_at(c, olddfd, 0);
    if (fd < 0)
        return fd;                             /* -EBADF, -EPERM or -ESRCH */
    struct yr_res *r = &c->res;
    r->obj = fd;
    r->magic = 1;                              /* reached through the caller's fd */
    if (fstat(fd, &r->obj_st) < 0)
        return -errno;
    if (olddfd != AT_FDCWD_INT && !yr_empty_path_link_allowed(c, &r->obj_st))
        return -ENOENT;
    int err = yr_gate(c, fd, ACC_LINK);
    return err ? err : yr_link_source_held(c);
}

int yr_link_settle(struct yr_ctx *ctx, const struct yr_event *ev)
{
    struct yr_call *c = ctx->call;
    yr_call_reset(c, ctx, ev);
    c->op = OP_LINK;
    int32_t olddfd = AT_FDCWD_INT;       /* kept in c->dirfd */
    uint64_t oldp;
    if (ev->sys == YR_SYS_LINK) {
        oldp = ev->args[0];
        c->link_newdfd = AT_FDCWD_INT;
        c->link_newp = ev->args[1];
        c->flags = 0;
    } else {
        olddfd = (int32_t)ev->args[0];
        oldp = ev->args[1];
        c->link_newdfd = (int32_t)ev->args[2];
        c->link_newp = ev->args[3];
        c->flags = (int32_t)ev->args[4];
    }
    c->link.flags = c->flags;
    c->dirfd = olddfd;
    if (c->flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))
        return yr_call_finish(c, -EINVAL);
    int err = yr_caller_identity(ctx, ev, &c->id, &c->procdir);
    if (err < 0)
        return yr_call_finish(c, err);
    if (yr_fs_become(&c->id) < 0)
        return yr_call_finish(c, -EPERM);        /* acting as ourselves instead: never */
    c->link_new_len = -1;
    int n = read_both(c, oldp);
    if (n < 0)
        n = yr_read_str(c, oldp, c->link.old_path);
    if (n < 0)
        return yr_call_finish(c, n);
    if (n == 0 && !(c->flags & AT_EMPTY_PATH))
        return yr_call_finish(c, -ENOENT);
    memcpy(c->path, c->link.old_path, sizeof(c->path));
    c->res.follow = (c->flags & AT_SYMLINK_FOLLOW) != 0;
    int rc;
    if (n == 0) {
        rc = empty_source(c, olddfd);
    } else {
        int from = -1;
        if (c->path[0] != '/' && (from = yr_start_at(c, olddfd, 1)) < 0)
            return yr_call_finish(c, from);
        return yr_call_run(c, from);
    }
    if (rc == R_HOOK)
        return 0;
    if (rc == R_DONE) {
        yr_call_close(c);
        return 1;
    }
    return yr_call_finish(c, rc < 0 ? rc : -EAGAIN);
}

/* After the chain's verdict on path_link. 1: replied; 0: a symlink's new
 * name waits for path_symlink's. */
int yr_link_resume(struct yr_call *c, int32_t deny_errno)
{
    if (deny_errno)
        return yr_call_finish(c, -deny_errno);
    int rc = allowed(c);
    if (rc == R_HOOK)
        return 0;
    if (rc != R_DONE)
        return yr_call_finish(c, rc < 0 ? rc : -EAGAIN);
    yr_call_close(c);
    return 1;
}

/* After the chain's path_symlink verdict allowed a symlink's new name. */
int yr_link_symlink_resume(struct yr_call *c)
{
    perform(c);
    yr_call_close(c);
    return 1;
}

struct yr_link *yr_ctx_link(struct yr_ctx *ctx)
{
    return &ctx->call->link;
}

void yr_ctx_link_table(struct yr_ctx *ctx, uint64_t allow_mask)
{
    (void)ctx;
    __atomic_store_n(&link_mask, allow_mask, __ATOMIC_RELAXED);
}

/* After the chain: deny with deny_errno, or make the link as the caller.
 * 1: replied; 0: another hook point (a symlink's new name, path_symlink),
 * answered with yr_walk_resume. */
int yr_link_finish(struct yr_ctx *ctx, uint64_t id, int32_t deny_errno)
{
    struct yr_call *c = ctx->call;
    (void)id;
    if (c->resume != RESUME_LINK) {
        yr_reply(ctx, c->ev.id, 0, EPERM);     /* nothing held: fail closed */
        return 1;
    }
    c->resume = RESUME_NONE;
    c->pub.hook = 0;
    yr_fs_become(&c->id);
    int rc = yr_link_resume(c, deny_errno);
    yr_fs_reset();
    return rc;
}
