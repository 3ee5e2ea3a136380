/* Opens performed for the caller.
 *
 * The object an open leads to is held as an O_PATH fd and judged by the gate
 * before anything opens it (resolve.c: yr_hold_final); it is then opened from
 * that fd (through our own /proc/self/fd, so no other name can be swapped
 * in), with the caller's flags, credentials and umask, always O_NOCTTY, and
 * installed in the caller with SECCOMP_IOCTL_NOTIF_ADDFD (O_CLOEXEC as
 * asked). Its type, known before the open, says where it is opened: an open
 * that may wait for a peer goes to a worker thread (worker.c). */
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
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "engine.h"

static int open_here(int dir, const char *name, int flags, uint32_t mode, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)flags, .resolve = resolve };
    if (flags & (O_CREAT | TMPFILE_BIT))
        how.mode = mode & 07777;
    int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
    return fd < 0 ? -1 : fd;
}

/* fd becomes the caller's, and the call's result. */
int yr_install(struct yr_call *c, int fd, int flags)
{
    int rc = yr_reply_addfd(c->ctx, c->ev.id, fd, (uint32_t)(flags & O_CLOEXEC));
    close(fd);
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

/* An open that waits (a FIFO without a peer, a lease): in a worker thread
 * that answers the caller itself. The ptrace backend has one tracer thread
 * for every tracee and nothing else may answer for it: there the tracee
 * waits in its own open, checked and continued (docs/path-engine.md). */
static int wait_elsewhere(struct yr_call *c)
{
    if (c->ctx->listener >= 0)
        return yr_open_in_worker(c, c->res.obj, c->flags);
    yr_reply_continue(c->ctx, c->ev.id);
    return R_DONE;
}

/* Open the held object (res.obj) with the caller's flags. */
int yr_open_final(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    int fl = c->flags | O_NOCTTY | O_CLOEXEC;
    int type = r->obj_st.st_mode & S_IFMT;
    int added_nonblock = 0;
    if (!(fl & O_NONBLOCK)) {
        if (type == S_IFIFO && (fl & O_ACCMODE) == O_RDONLY)
            return wait_elsewhere(c);
        /* Writers to a FIFO with a reader, devices, regular files: never wait here. */
        fl |= O_NONBLOCK;
        added_nonblock = 1;
    }
    if ((fl & (O_CREAT | TMPFILE_BIT)) && yr_take_umask(c) < 0)
        return -ESRCH;
    int fd;
    if (r->magic || r->dir < 0) {
        fd = yr_reopen(r->obj, fl & ~(O_CREAT | O_EXCL | O_NOFOLLOW), c->mode);
    } else {
        /* By name from the held parent, so that the kernel's own rules on
         * the open (its sticky-directory checks with O_CREAT) apply; the
         * file opened must be the one judged. */
        fd = open_here(r->dir, r->name, fl, c->mode, RESOLVE_NO_SYMLINKS);
        struct stat st;
        if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != r->obj_st.st_ino ||
                        st.st_dev != r->obj_st.st_dev) && !(fl & TMPFILE_BIT)) {
            close(fd);
            return R_AGAIN;                /* swapped meanwhile: look again */
        }
        if (fd < 0 && errno == ELOOP && r->follow)
            return R_AGAIN;                /* became a symlink: walk it */
    }
    if (fd < 0) {
        int e = errno;
        if (e == ENXIO && added_nonblock && type == S_IFIFO)
            return wait_elsewhere(c);      /* no reader yet: wait for one */
        if (e == EWOULDBLOCK && added_nonblock && type == S_IFREG)
            return wait_elsewhere(c);      /* a lease to break */
        return -e;
    }
    if (added_nonblock)
        fcntl(fd, F_SETFL, c->flags & (O_APPEND | O_DIRECT | O_NOATIME));
    return yr_install(c, fd, c->flags);
}

/* /proc/PID/mem: whose? The pid from the held directory's own stat file,
 * valid in our pid namespace only if that /proc is ours. */
static dev_t own_proc_dev;

static int mem_target(struct yr_call *c)
{
    struct stat ds, ps;
    if (!yr_on_proc(c->res.dir))
        return 0;
    if (!own_proc_dev) {
        if (stat("/proc", &ps) < 0)
            return -EACCES;
        own_proc_dev = ps.st_dev;
    }
    if (fstat(c->res.dir, &ds) < 0 || ds.st_dev != own_proc_dev)
        return -EACCES;                         /* fail closed */
    int fd = openat(c->res.dir, "stat", O_RDONLY | O_CLOEXEC);
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
static int opener_matters(struct yr_call *c)
{
    static const char *const names[] = { "uid_map", "gid_map", "projid_map", "setgroups" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(c->res.name, names[i]) == 0)
            return yr_on_proc(c->res.dir);
    return 0;
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
    int fd = open_here(r->dir, r->name, fl | O_EXCL | O_NOCTTY | O_CLOEXEC, c->mode,
                       RESOLVE_NO_SYMLINKS);
    if (fd < 0)
        return errno == EEXIST && !(fl & O_EXCL) ? R_AGAIN : -errno;
    return yr_install(c, fd, fl);
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
    if (fstat(r->dir, &ds) < 0)
        return -errno;
    if (!(ds.st_mode & S_ISVTX))
        return 0;
    uint32_t f = (type == S_IFIFO ? YR_CF_FIFO : YR_CF_REGULAR) |
                 (ds.st_mode & S_IWOTH ? YR_CF_DIR_WW : 0) |
                 (ds.st_mode & S_IWGRP ? YR_CF_DIR_GW : 0) |
                 (r->st.st_uid == c->id.fsuid ? YR_CF_OWNER : 0) |
                 (r->st.st_uid == ds.st_uid ? YR_CF_DIR_OWNER : 0);
    if (yr_walk_table_allows(create_mask, f))
        return 0;
    struct yr_walk *pub = &c->pub;
    pub->facts = f;
    pub->obj_uid = r->obj_st.st_uid;
    pub->obj_mode = r->obj_st.st_mode;
    pub->dir_uid = ds.st_uid;
    pub->dir_mode = ds.st_mode;
    return yr_hook(c, YR_HOOK_CREATE_IN_STICKY, RESUME_OPEN);
}

/* Opening another process's /proc/PID/mem: the ptrace module decides. */
static int mem_hook(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (!(yr_walk_config(NULL, NULL) & YR_WALK_PROC_MEM) || strcmp(r->name, "mem") != 0 ||
        !S_ISREG(r->st.st_mode) || r->magic)
        return 0;
    int pid = mem_target(c);
    if (pid <= 0)
        return pid;
    if (yr_tgid_of(pid) == yr_caller_tgid(c))                 /* one's own: always allowed */
        return 0;
    struct stat ds;
    if (fstat(r->dir, &ds) < 0)
        return -errno;
    c->pub.obj_uid = r->obj_st.st_uid;
    c->pub.obj_mode = r->obj_st.st_mode;
    c->pub.dir_uid = ds.st_uid;
    c->pub.dir_mode = ds.st_mode;
    c->pub.mem_pid = pid;
    return yr_hook(c, YR_HOOK_PROC_MEM, RESUME_OPEN);
}

int yr_act_open(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    int fl = c->flags;
    if (r->magic)
        return yr_open_final(c);
    if (!r->exists)
        return create(c);
    if ((fl & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
        return -EEXIST;
    if (r->slash && !S_ISDIR(r->st.st_mode) && !S_ISLNK(r->st.st_mode))
        return -ENOTDIR;
    int rc = sticky_hook(c);
    if (rc == 0)
        rc = mem_hook(c);
    if (rc != 0)
        return rc;
    if (opener_matters(c)) {
        if (yr_id_valid(c->ctx, c->ev.id))
            yr_reply_continue(c->ctx, c->ev.id);
        return R_DONE;
    }
    return yr_open_final(c);
}
