/* Opens performed for the caller.
 *
 * The object an open leads to is held as an O_PATH fd and judged by the gate
 * before anything opens it (resolve.c: yr_hold_final); it is then opened by
 * name from the held parent and must be the inode judged, or, with no
 * parent held (a magic link, the whole path's look-up), from that fd
 * (through our own /proc/self/fd, so no other name can be swapped in), with
 * the caller's flags, credentials and umask, always O_NOCTTY, and installed
 * in the caller with SECCOMP_IOCTL_NOTIF_ADDFD (O_CLOEXEC as asked). Its
 * type, known before the open, says where it is opened: an open that may
 * wait for a peer goes to a worker thread (worker.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/capability.h>

#include "engine.h"

static int open_here(int dir, const char *name, int flags, uint32_t mode, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)flags, .resolve = resolve };
    if (flags & (O_CREAT | TMPFILE_BIT))
        how.mode = mode & 07777;
    int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
    return fd < 0 ? -1 : fd;
}

/* fd becomes the caller's, and the call's result. known: its stat when
 * already taken (NULL: taken here). */
int yr_install(struct yr_call *c, int fd, int flags, const struct stat *known)
{
    struct stat st;
    if (known || fstat(fd, &st) == 0)
        yr_opened_for(c, known ? known : &st);   /* the caller's to name by descriptor */
    int rc = yr_reply_addfd(c->ctx, c->ev.id, fd, (uint32_t)(flags & O_CLOEXEC));   /* closes fd */
    if (rc < 0)
        yr_reply(c->ctx, c->ev.id, 0, -rc);
    return R_DONE;
}

static __thread int own_fs;

/* The caller's umask, for this thread's creations (its own fs_struct). */
int yr_take_umask(struct yr_call *c)
{
    if (!own_fs) {
        if (unshare(CLONE_FS) < 0)
            return -errno;
        own_fs = 1;
    }
    int fd = yr_proc_open(c, "status", O_RDONLY);
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

/* Do the held file's mode bits let the caller open it so (generic_permission,
 * from its ids, its groups and CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH in
 * effect)? The kernel checks them besides its ptrace check, which a file of
 * the caller's own process opened as ourselves skips: a non-dumpable
 * process's /proc/self/environ (root's, 0400) stays refused to it. Worked
 * out here: proc's own permission op would ask the ptrace check again, of
 * this thread. */

static int owner_bits_allow(const struct yr_call *c, int fd, const struct stat *st, int flags)
{
    const struct yr_fsid *id = &c->id;
    int acc = flags & O_ACCMODE;
    int want = acc == O_RDONLY ? 4 : acc == O_WRONLY ? 2 : 6;
    if (id->caps >> CAP_DAC_OVERRIDE & 1)
        return 1;
    if (want == 4 && (id->caps >> CAP_DAC_READ_SEARCH & 1))
        return 1;
    return yr_mode_allows(id, fd, st, (unsigned int)want);
}

/* An open that may wait (a FIFO without a peer, a device, a lease): in a
 * worker thread (worker.c), which answers the caller (or, under the ptrace
 * backend, the tracer for it) when the open is done. */
static int wait_elsewhere(struct yr_call *c)
{
    yr_opened_for(c, &c->res.obj_st);
    return yr_open_in_worker(c, c->res.obj, c->flags);
}

/* ---- /dev/tty --------------------------------------------------------------- */

/* /dev/tty is whoever opens it's controlling terminal: the supervisor's own
 * open would yield the supervisor's. The caller's is its tty_nr (field 7 of
 * /proc/TID/stat; 0: none, and the kernel says ENXIO). */
static dev_t caller_tty(struct yr_call *c)
{
    static const int tty_field[] = { 7 };
    int fd = yr_proc_open(c, "stat", O_RDONLY);
    char buf[1024];
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    yr_close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long long field;
    if (yr_stat_fields(buf, tty_field, 1, &field) < 0)
        return 0;
    unsigned long long tty = (unsigned long long)(unsigned int)field;
    /* tty_nr: new_encode_dev (minor's low byte, major, minor's high bits) */
    return makedev((unsigned)((tty >> 8) & 0xfff), (unsigned)((tty & 0xff) | ((tty >> 12) & 0xfff00)));
}

static int is_dev_tty(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(5, 0);
}

/* The kernel's may_open on the held /dev/tty node itself, the only node it
 * asks about before it hands back the opener's terminal (tty_open_current_tty
 * never asks about the terminal's own node, which may be another user's: a
 * terminal kept across su, a root-started program that dropped to a user):
 * the mount's nodev, and the caller's permission (O_TRUNC asks for write),
 * asked of the kernel as the caller (this thread has its identity).
 * 0 or -errno. */
static int may_open_dev_tty(struct yr_call *c)
{
    struct statvfs vfs;
    if (fstatvfs(c->res.obj, &vfs) == 0 && (vfs.f_flag & ST_NODEV))
        return -EACCES;
    int acc = c->flags & O_ACCMODE;
    int want = (acc == O_RDONLY ? R_OK : acc == O_WRONLY ? W_OK : R_OK | W_OK) |
               (c->flags & O_TRUNC ? W_OK : 0);
    if (syscall(SYS_faccessat2, c->res.obj, "", want, AT_EMPTY_PATH | AT_EACCESS) < 0)
        return -errno;
    return 0;
}

/* Does the open file fd give every access the open asks for? */
static int gives_access(int fd, int flags)
{
    int has = fcntl(fd, F_GETFL);
    if (has < 0 || (has & O_PATH))
        return 0;
    int want = flags & O_ACCMODE, got = has & O_ACCMODE;
    return got == O_RDWR || (want == got && want != O_ACCMODE);
}

/* A copy of the caller's own file on its terminal tty (taken with
 * pidfd_getfd: what is checked is what is opened again, whatever another
 * of its threads does to its table meanwhile) that gives every access the
 * open asks for; -ENOENT when the caller holds none. Its descriptors are
 * looked at as ourselves: the kernel shows a process its own whatever its
 * dumpability (proc_fd_permission), and one that dropped its ids is no
 * longer dumpable. */
static int terminal_file_of_caller(struct yr_call *c, dev_t tty, int fl)
{
    char name[32];
    struct stat st;
    for (int n = 0; n < 256; n++) {            /* where a terminal's fds usually are */
        snprintf(name, sizeof(name), "fd/%d", n);
        yr_fs_pause();
        int found = fstatat(c->procdir, name, &st, 0) == 0 && S_ISCHR(st.st_mode) &&
                    st.st_rdev == tty;
        int copy = found ? yr_fetch_thread_fd(c->ev.tid, yr_caller_tgid(c), n) : -1;
        yr_fs_resume();
        if (copy < 0)
            continue;
        if (fstat(copy, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == tty &&
            gives_access(copy, fl))
            return copy;
        close(copy);
    }
    return -ENOENT;
}

/* Else the caller's terminal's node, /dev/pts/N in its root, held instead of
 * /dev/tty and opened below as the caller (its permission on the node). */
static int hold_terminal_node(struct yr_call *c, dev_t tty)
{
    struct yr_res *r = &c->res;
    char name[32];
    struct stat st;
    if (major(tty) < 136 || major(tty) > 143 || yr_open_root(c) < 0)
        return -ENXIO;
    snprintf(name, sizeof(name), "dev/pts/%u", (major(tty) - 136) * 256 + minor(tty));
    int fd = yr_openat2(c->res.root, name, O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != tty) {
        yr_close(fd);
        return -ENXIO;
    }
    close(r->obj);
    r->obj = fd;
    r->obj_st = st;
    r->magic = 1;                                /* opened from the held fd, not by name */
    return 0;
}

/* TIOCEXCL: the kernel refuses every new open of the terminal (EBUSY) but
 * one by a task with CAP_SYS_ADMIN (tty_reopen's capable()): the caller's
 * own, never ours, which reopens it. Set after this look, the open goes on,
 * as one that came first. */
static int exclusive_to_the_caller(struct yr_call *c, int tty_file)
{
    int excl = 0;
    return ioctl(tty_file, TIOCGEXCL, &excl) == 0 && excl &&
           !(c->id.caps & (1ULL << CAP_SYS_ADMIN));
}

/* The held object is /dev/tty (5:0): the caller's controlling terminal.
 * R_DONE (opened and installed), 0 (its node held instead: opened below),
 * or -errno, in the kernel's order: /dev/tty's permission, then ENXIO for
 * a caller without a terminal. Opened again from a file of the caller's on
 * it, with our authority but never beyond the caller's (that file gives
 * every access asked for already): a new file, whose flags are the open's
 * own. O_NONBLOCK (cleared after), as for the devices that never wait: the
 * terminal is open already. */
static int open_dev_tty(struct yr_call *c, int fl)
{
    int err = may_open_dev_tty(c);
    if (err < 0)
        return err;
    dev_t tty = caller_tty(c);
    if (!tty)
        return -ENXIO;                           /* no controlling terminal */
    int copy = terminal_file_of_caller(c, tty, fl);
    if (copy == -ENOENT)
        return hold_terminal_node(c, tty);
    if (exclusive_to_the_caller(c, copy)) {
        close(copy);
        return -EBUSY;
    }
    if (!yr_call_still_waits(c)) {
        close(copy);
        return R_DONE;                           /* its terminal and files were another's */
    }
    yr_fs_pause();
    int fd = yr_reopen(copy, (fl & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_NONBLOCK, 0);
    int e = errno;
    yr_fs_resume();
    close(copy);
    if (fd < 0)
        return -e;
    fcntl(fd, F_SETFL, c->flags & (O_NONBLOCK | O_APPEND | O_DIRECT | O_NOATIME));
    return yr_install(c, fd, c->flags, NULL);
}

/* Devices that never wait on open (the memory devices: null, zero, random...):
 * opened here; any other device, like a FIFO, where a stall delays only its
 * caller. */
static int may_wait(const struct stat *st)
{
    if (S_ISFIFO(st->st_mode))
        return 1;
    if (!S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode))
        return 0;
    return !(S_ISCHR(st->st_mode) && major(st->st_rdev) == 1);
}

/* Devices whose open binds the opener's namespaces, by whatever name, node
 * or magic link they were reached, opened as the caller like the id-map
 * files (helper.c): /dev/fuse (misc 10:229; a FUSE mount takes its fd only
 * if it was opened in the mounter's user namespace, fuse_fill_super),
 * /dev/net/tun (misc 10:200: its devices live in the opener's network
 * namespace, tun_chr_open) and /dev/ppp (108:0: ppp_open asks for
 * CAP_NET_ADMIN in the opener's user namespace). Their opens never wait
 * (they only allocate), so the helper's round trip on this receiver is
 * bounded. */
static const struct { unsigned major, minor, how; } opener_bound[] = {
    { 10, 229, 0 }, { 10, 200, YR_AS_CALLER_NET }, { 108, 0, 0 },
};

/* -1: not such a device; else how the helper opens it (yr_open_as_caller). */
static int binds_opener(const struct stat *st)
{
    for (size_t i = 0; S_ISCHR(st->st_mode) && i < sizeof(opener_bound) / sizeof(opener_bound[0]);
         i++)
        if (st->st_rdev == makedev(opener_bound[i].major, opener_bound[i].minor))
            return (int)opener_bound[i].how;
    return -1;
}

/* An O_CREAT open of the object st (held: res.obj) in the held directory: 1
 * when that directory is sticky (*ds its stat, *f the facts
 * may_create_in_sticky and yama-run's table look at: YR_CF_*, from the two
 * owners as yr_owner gives them, in own: the file's, the directory's), 0
 * when not, or -errno. */
static int create_facts(const struct yr_call *c, const struct stat *st, struct stat *ds,
                        uint32_t *f, uint32_t own[2])
{
    if (fstat(c->res.dir, ds) < 0)
        return -errno;
    if (!(ds->st_mode & S_ISVTX))
        return 0;
    own[0] = yr_owner(c->res.obj, st->st_uid, 0);
    own[1] = yr_owner(c->res.dir, ds->st_uid, 0);
    int type = st->st_mode & S_IFMT;
    *f = (type == S_IFIFO ? YR_CF_FIFO : type == S_IFREG ? YR_CF_REGULAR : 0) |
         (ds->st_mode & S_IWOTH ? YR_CF_DIR_WW : 0) |
         (ds->st_mode & S_IWGRP ? YR_CF_DIR_GW : 0) |
         (yr_same_owner(own[0], c->id.fsuid) ? YR_CF_OWNER : 0) |
         (yr_same_owner(own[1], own[0]) ? YR_CF_DIR_OWNER : 0);
    return 1;
}

/* The kernel's may_create_in_sticky, for an O_CREAT open of an existing
 * object in a sticky directory that is opened again from its held
 * descriptor (by a worker, for an open that may wait, or by a helper that
 * is the caller), where the kernel no longer sees the O_CREAT: regular files
 * and FIFOs at the levels fs.protected_regular and fs.protected_fifos have
 * now, any other type (a device node) whatever they say. 0 or -EACCES. */
static int kernel_sticky_create(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    struct stat ds;
    if (!(c->flags & O_CREAT) || r->magic || r->dir < 0)
        return 0;                    /* a magic link's own directory is never sticky */
    uint32_t f, own[2];
    int sticky = create_facts(c, &r->obj_st, &ds, &f, own);
    if (sticky <= 0)
        return sticky;
    int level = f & YR_CF_REGULAR ? yr_kernel_protection("regular")
              : f & YR_CF_FIFO ? yr_kernel_protection("fifos") : -1;
    if (level == 0 || (f & (YR_CF_OWNER | YR_CF_DIR_OWNER)))
        return 0;
    if (f & YR_CF_DIR_WW)
        return -EACCES;
    return (f & YR_CF_DIR_GW) && level >= 2 ? -EACCES : 0;
}

/* An open that changes something (a truncation, a file made, a device or
 * FIFO opened), which must be made only for the caller still waiting. */
static int opens_with_effect(int flags, int type)
{
    return (flags & (O_TRUNC | O_CREAT | TMPFILE_BIT)) || (type != S_IFREG && type != S_IFDIR);
}

#define MAX_NON_LFS 0x7fffffffL

/* i386's open and openat do not add O_LARGEFILE (every other open does, our
 * own always), and generic_file_open, the open op of every disk filesystem
 * and of tmpfs, refuses a regular file larger than MAX_NON_LFS without it:
 * EOVERFLOW, after every other check of the open. Not proc's or sysfs's
 * files (/proc/kcore, a PCI resource), which they open whatever the size.
 * 1: the caller's open of the held object must end so. The size is the
 * held inode's, taken by its walk during this call, as the kernel's is
 * taken during the open. */
static int beyond_non_lfs(const struct yr_call *c)
{
    const struct stat *st = &c->res.obj_st;
    if (c->ev.arch != AUDIT_ARCH_I386_ ||
        (c->ev.sys != YR_SYS_OPEN && c->ev.sys != YR_SYS_OPENAT) ||
        (c->flags & (YR_O_LARGEFILE | O_PATH)) || !S_ISREG(st->st_mode) ||
        st->st_size <= MAX_NON_LFS)
        return 0;
    struct statfs sf;
    return !(fstatfs(c->res.obj, &sf) == 0 &&
             (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC));
}

/* For such an open (beyond_non_lfs), made to give the open's own errors
 * but changing nothing, O_TRUNC is dropped (the kernel truncates only after
 * the EOVERFLOW) and its refusals are given first, as the kernel's are.
 * 0 or -errno. */
static int truncation_refused(const struct yr_call *c)
{
    if (!(c->flags & O_TRUNC))
        return 0;
    struct statx sx;
    if (statx(c->res.obj, "", AT_EMPTY_PATH, STATX_TYPE, &sx) < 0)
        return -errno;
    return yr_truncate_refusal(c->res.obj, &sx);
}

/* Open the held object (res.obj) with the caller's flags. */
int yr_open_final(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    int overflows = beyond_non_lfs(c);
    int trunc_err = overflows ? truncation_refused(c) : 0;
    if (trunc_err < 0)
        return trunc_err;
    /* c->flags kept: a look again (R_AGAIN) may find another file */
    int fl = (c->flags & ~(overflows ? O_TRUNC : 0)) | O_NOCTTY | O_CLOEXEC;
    int type = r->obj_st.st_mode & S_IFMT;
    int added_nonblock = 0;
    int bound = binds_opener(&r->obj_st);
    int waits = !(fl & O_NONBLOCK) && may_wait(&r->obj_st) &&
                !(type == S_IFIFO && (fl & O_ACCMODE) != O_RDONLY);
    int dev_tty = is_dev_tty(&r->obj_st);
    if (c->opener_matters || bound >= 0 || waits || dev_tty) {
        /* Opened again below (by a helper, a worker, or as the caller's
         * terminal), with no O_CREAT the kernel sees: its check first, as
         * the kernel makes it before any other. */
        int err = kernel_sticky_create(c);
        if (err < 0)
            return err;
    }
    if (c->opener_matters || bound >= 0) {
        int fd = yr_open_as_caller(c, r->obj, c->flags, bound > 0 ? (unsigned)bound : 0);
        return fd < 0 ? fd : yr_install(c, fd, c->flags, NULL);
    }
    if (dev_tty) {
        int rc = open_dev_tty(c, fl);
        if (rc != 0)
            return rc;
    }
    if (!(fl & O_NONBLOCK)) {
        if (waits)
            return wait_elsewhere(c);
        /* Writers to a FIFO with a reader, devices, regular files: never wait here. */
        fl |= O_NONBLOCK;
        added_nonblock = 1;
    }
    if ((fl & (O_CREAT | TMPFILE_BIT)) && yr_take_umask(c) < 0)
        return -ESRCH;
    if (opens_with_effect(fl, type) && !yr_call_still_waits(c))
        return R_DONE;                           /* its umask, root... were another's */
    int fd;
    struct stat st;
    const struct stat *opened = &st;
    if (r->magic || r->dir < 0) {
        /* the held file itself, opened again: its inode is the one held */
        fd = yr_reopen(r->obj, fl & ~(O_CREAT | O_EXCL | O_NOFOLLOW), c->mode);
        /* O_TMPFILE in the held directory: a new inode, stat'ed by yr_install
         * (tmpfiles.c records it, for linkat(AT_EMPTY_PATH)) */
        opened = fl & TMPFILE_BIT ? NULL : &r->obj_st;
    } else {
        /* By name from the held parent, so that the kernel's own rules on
         * the open (its sticky-directory checks with O_CREAT) apply; the
         * file opened must be the one judged. */
        fd = open_here(r->dir, r->name, fl, c->mode,
                       RESOLVE_NO_SYMLINKS | (r->resolve & RESOLVE_NO_XDEV));
        if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != r->obj_st.st_ino ||
                        st.st_dev != r->obj_st.st_dev) && !(fl & TMPFILE_BIT)) {
            close(fd);
            return R_AGAIN;                /* swapped meanwhile: look again */
        }
        if (fd < 0 && errno == ELOOP && r->follow)
            return R_AGAIN;                /* became a symlink: walk it */
    }
    int refused = fd < 0 && errno == EACCES;          /* errno: the open's, kept */
    if (refused && (type == S_IFDIR || (type == S_IFREG && owner_bits_allow(c, r->obj, &r->obj_st, fl))) &&
        yr_gate_own_unasked(c, r->obj)) {
        /* An entry of the caller's own process that the kernel lets its
         * thread group open whoever owns it (its fd directory listed, its
         * maps read, by a process that made itself non-dumpable): the held
         * object itself, opened again as ourselves. */
        yr_fs_pause();
        fd = yr_reopen(r->obj, fl & ~(O_CREAT | O_EXCL | O_NOFOLLOW), c->mode);
        int e = errno;
        yr_fs_resume();
        errno = e;
        opened = &r->obj_st;
    } else if (refused) {
        errno = EACCES;
    }
    if (fd < 0) {
        int e = errno;
        if (e == ENXIO && added_nonblock && type == S_IFIFO)
            return wait_elsewhere(c);      /* no reader yet: wait for one */
        if (e == EWOULDBLOCK && added_nonblock && type == S_IFREG)   /* a lease to break */
            return overflows ? -EOVERFLOW : wait_elsewhere(c);   /* the kernel's, after the wait */
        return -e;
    }
    if (overflows) {
        close(fd);
        return -EOVERFLOW;
    }
    int err = yr_gate_recheck(c);
    if (err < 0) {
        close(fd);
        return err;
    }
    if (added_nonblock)
        fcntl(fd, F_SETFL, c->flags & (O_APPEND | O_DIRECT | O_NOATIME));
    return yr_install(c, fd, c->flags, opened);
}

/* A message queue made on an mqueue mount by open(O_CREAT): charged to the
 * maker's RLIMIT_MSGQUEUE, so made by the helper that is the caller, under
 * the caller's limit (helper.c). */
static int create_queue(struct yr_call *c, int flags)
{
    struct yr_res *r = &c->res;
    struct rlimit lim;
    int err = yr_caller_limit(c, RLIMIT_MSGQUEUE, &lim);
    if (err < 0) {
        errno = -err;
        return -1;
    }
    int fd = yr_create_as_caller(c, r->dir, r->name, flags, c->mode, RLIMIT_MSGQUEUE, &lim);
    if (fd < 0) {
        errno = -fd;                 /* as open_here's: -1 and errno */
        return -1;
    }
    return fd;
}

#define MQUEUE_MAGIC 0x19800202              /* ipc/mqueue.c */

static int on_mqueue(int dir)
{
    struct statfs sf;
    return fstatfs(dir, &sf) == 0 && sf.f_type == MQUEUE_MAGIC;
}

static int create(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    int fl = c->flags;
    if (!(fl & O_CREAT))
        return -ENOENT;
    if (r->slash)
        return -EISDIR;
    if (yr_take_umask(c) < 0)
        return -ESRCH;
    if (!yr_call_still_waits(c))
        return R_DONE;                           /* its umask, root... were another's */
    int fd = on_mqueue(r->dir) ? create_queue(c, fl | O_EXCL)
                               : open_here(r->dir, r->name, fl | O_EXCL | O_NOCTTY | O_CLOEXEC,
                                           c->mode, RESOLVE_NO_SYMLINKS);
    if (fd < 0)
        return errno == EEXIST && !(fl & O_EXCL) ? R_AGAIN : -errno;
    return yr_install(c, fd, fl, NULL);
}

/* O_CREAT met an existing file in a sticky directory: create_in_sticky. */
static int sticky_hook(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    uint64_t follow_mask, create_mask;
    yr_walk_config(&follow_mask, &create_mask);
    int type = r->st.st_mode & S_IFMT;
    if (!(c->flags & O_CREAT) || (type != S_IFREG && type != S_IFIFO) || create_mask == ~0ULL)
        return 0;
    struct stat ds;
    uint32_t f, own[2];
    int sticky = create_facts(c, &r->st, &ds, &f, own);
    if (sticky <= 0)
        return sticky;
    if (yr_walk_table_allows(create_mask, f))
        return 0;
    struct yr_walk *pub = &c->pub;
    pub->facts = f;
    pub->obj_uid = own[0];
    pub->obj_mode = r->obj_st.st_mode;
    pub->dir_uid = own[1];
    pub->dir_mode = ds.st_mode;
    return yr_hook(c, YR_HOOK_CREATE_IN_STICKY, RESUME_OPEN);
}

int yr_act_open(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    int fl = c->flags;
    if (r->magic) {
        /* do_open on what exists: O_CREAT | O_EXCL is EEXIST, O_CREAT of a
         * directory EISDIR (the reopen below drops O_CREAT, and a directory
         * opened for reading would be given) */
        if ((fl & O_CREAT) && S_ISDIR(r->obj_st.st_mode))
            return fl & O_EXCL ? -EEXIST : -EISDIR;
        return yr_open_final(c);
    }
    if (!r->exists)
        return create(c);
    if ((fl & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
        return -EEXIST;
    if (r->slash && !S_ISDIR(r->st.st_mode) && !S_ISLNK(r->st.st_mode))
        return -ENOTDIR;
    int rc = sticky_hook(c);
    if (rc != 0)
        return rc;
    return yr_open_final(c);
}
