/* Opens the kernel judges on the opener's own credentials.
 *
 * The id-map files of /proc/PID (uid_map, gid_map, projid_map), setgroups
 * and timens_offsets are judged on file->f_cred: the user namespace, euid
 * and capabilities of whoever opened them (map_write, new_idmap_permitted,
 * proc_setgroups_open, proc_timens_set_offset), and so is /dev/fuse: a FUSE
 * mount takes its fd only if opened in the mounter's user namespace
 * (fuse_fill_super). /dev/net/tun binds the opener's network namespace
 * (tun_chr_open: current->nsproxy->net_ns): a device attached or created
 * through it lives there, so a caller that made a network namespace of its
 * own (unshare -rn) would reach the supervisor's, the host's, taps; and
 * /dev/ppp checks the opener's user namespace (ppp_open: f_cred). An fd the
 * supervisor opens carries the supervisor's,
 * never the caller's; continuing the caller's own open after a check
 * instead would let another thread swap the path for a sibling's
 * /proc/PID/mem.
 *
 * A message queue made by open(O_CREAT) on an mqueue mount is charged to
 * the RLIMIT_MSGQUEUE of whoever makes it (mqueue_get_inode: rlimit() of
 * current), ours for a file we would create.
 *
 * So such an open is made by a short-lived helper forked here: single
 * threaded, it takes the caller's ids, groups and capabilities (and the
 * limit the call is judged on), enters the
 * caller's user namespace (and, for tun, its network namespace), opens the
 * object the gate judged (our O_PATH fd,
 * through its own /proc/self/fd) or creates the name in the directory held,
 * and hands the fd back over a socketpair;
 * the supervisor installs it in the caller. The umask is the forking
 * thread's, which took the caller's (open.c, yr_take_umask). Nothing in the helper allocates:
 * it is a fork of a threaded process. While it lives, its pid is protected
 * like the supervisor's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>

#include "engine.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The caller's credentials as the supervisor sees them (ids in our user
 * namespace: kuids), read before the fork. */
struct as_caller {
    struct yr_creds ids;
    uint64_t eff, prm, inh;
};

static int read_caller(pid_t tid, struct as_caller *a)
{
    char path[64], buf[4096];
    if (yr_creds_read(tid, &a->ids) < 0)
        return -ESRCH;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ESRCH;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    const char *i = strstr(buf, "\nCapInh:"), *p = strstr(buf, "\nCapPrm:"),
               *e = strstr(buf, "\nCapEff:");
    if (!i || !p || !e)
        return -ESRCH;
    a->inh = strtoull(i + 8, NULL, 16);
    a->prm = strtoull(p + 8, NULL, 16);
    a->eff = strtoull(e + 8, NULL, 16);
    return 0;
}

static long capset3(uint64_t eff, uint64_t prm, uint64_t inh)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = {
        { (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
        { (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
    };
    return syscall(SYS_capset, &hdr, d);
}

static long capget_perm(uint64_t *prm)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    long rc = syscall(SYS_capget, &hdr, d);
    *prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
    return rc;
}

#define HELPER_SOCK_FD 4

static void send_result(int sock, int fd, int err)
{
    char byte = (char)err;
    struct iovec iov = { &byte, 1 };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.b;
        msg.msg_controllen = sizeof(ctl.b);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
        _exit(1);
}

/* The caller's namespaces the helper enters where they are not ours: the
 * user namespace always, first (the others are then judged from inside it);
 * the network namespace for the devices that bind it (YR_AS_CALLER_NET):
 * only for them, since the id-map files are written while a namespace is
 * being set up, where a network namespace of the caller's may not be
 * enterable yet (Chromium's zygote failed to write its uid_map). */
static const struct { const char *name; int type; unsigned when; } joined[] = {
    { "user", CLONE_NEWUSER, 0 },                /* 0: always */
    { "net", CLONE_NEWNET, YR_AS_CALLER_NET },
};
#define JOINED (int)(sizeof(joined) / sizeof(joined[0]))
#define HELPER_NS_FD 5                           /* joined[i]'s descriptor: 5 + i */

/* What the helper does as the caller: opens its fd 3 again (name NULL), or
 * creates name in it (a directory held); first takes the caller's limit of
 * resource (-1: none) while it may still raise ours. */
struct helper_job {
    const char *name;
    int flags;
    uint32_t mode;
    int resource;
    struct rlimit limit;
};

/* In the helper (fds: 3 the object, 4 the socket, 5 + i the caller's
 * namespace joined[i], entered where it is not ours: bit i of differs):
 * become the caller, open, send. Never returns. */
static void helper_main(const struct as_caller *a, const struct helper_job *job,
                        unsigned differs)
{
    const struct yr_creds *c = &a->ids;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 0);
    int err = 0;
    if (job->resource >= 0 && setrlimit(job->resource, &job->limit) < 0)
        err = errno;
    /* A session keyring of its own, empty: ours would lend the keys it
     * holds (/proc/keys lists what the opener's keyrings possess). */
    if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0 && errno != ENOSYS)
        err = errno;
    /* The ids first, in our namespace (where the caller's are mapped; its
     * own namespace may map none yet); capabilities kept to go on. */
    uint64_t ours = 0;
    if (syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || capget_perm(&ours) < 0)
        err = errno;
    if (!err && geteuid() == 0) {
        syscall(SYS_setgroups, c->ngroups, c->groups);        /* best effort: see doc */
        if (syscall(SYS_setresgid, c->rgid, c->egid, c->sgid) < 0 ||
            syscall(SYS_setresuid, c->ruid, c->euid, c->suid) < 0)
            err = errno;
        syscall(SYS_setfsgid, c->fsgid);
        syscall(SYS_setfsuid, c->fsuid);
        prctl(PR_SET_DUMPABLE, 0);               /* before it holds only the caller's */
        capset3(ours, ours, 0);                  /* effective again, for setns */
    }
    for (int i = 0; i < JOINED && !err; i++)
        if (differs >> i & 1 && setns(HELPER_NS_FD + i, joined[i].type) < 0)
            err = errno;
    prctl(PR_SET_DUMPABLE, 0);                   /* setns is a credential change too */
    if (!err && capset3(a->eff, a->prm, a->inh) < 0)
        err = errno;
    prctl(PR_SET_DUMPABLE, 0);                   /* commit_creds may have reset it */
    int fd = -1;
    if (!err) {
        fd = job->name ? openat(3, job->name, job->flags | O_NOCTTY | O_CLOEXEC, job->mode)
                       : openat(AT_FDCWD, "/proc/self/fd/3",
                                (job->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) |
                                O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            err = errno;
    }
    send_result(HELPER_SOCK_FD, fd, err);
    _exit(0);
}

/* Move fd to the number `want` in the child (no other fd of ours may be there). */
static int place(int fd, int want)
{
    return fd == want ? 0 : dup2(fd, want) < 0 ? -1 : 0;
}

/* The helper's pid while it lives: protected like the supervisor's. */
#define MAX_HELPERS 32
static volatile pid_t helpers[MAX_HELPERS];

int yr_is_helper(pid_t pid)
{
    for (int i = 0; i < MAX_HELPERS; i++)
        if (helpers[i] == pid && pid > 0)
            return 1;
    return 0;
}

static int mark_helper(pid_t pid)
{
    for (int i = 0; i < MAX_HELPERS; i++)
        if (__sync_bool_compare_and_swap(&helpers[i], 0, pid))
            return i;
    return -1;
}

static int receive_fd(int sock, int *err)
{
    struct pollfd p = { sock, POLLIN, 0 };
    if (poll(&p, 1, 5000) != 1) {                /* it never blocks: 5 s is broken */
        *err = ETIMEDOUT;
        return -1;
    }
    char byte = 0;
    struct iovec iov = { &byte, 1 };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                          .msg_controllen = sizeof(ctl.b) };
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) {
        *err = EIO;
        return -1;
    }
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (!cm || cm->cmsg_type != SCM_RIGHTS) {
        *err = byte ? (unsigned char)byte : EIO;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    return fd;
}

/* The caller's namespace joined[i] as an fd (bit i of *differs set when it
 * is not ours), or -1: the caller is gone. */
static int caller_ns(pid_t tid, int i, unsigned *differs)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)tid, joined[i].name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/self/ns/%s", joined[i].name);
    struct stat x, y;
    if (fd < 0 || stat(path, &y) < 0 || fstat(fd, &x) < 0) {
        yr_close(fd);
        return -1;
    }
    if (x.st_ino != y.st_ino || x.st_dev != y.st_dev)
        *differs |= 1u << i;
    return fd;
}

/* job done on obj by a helper that is the caller, in its user namespace
 * and, with YR_AS_CALLER_NET in how, its network namespace. The fd, or
 * -errno. */
static int as_caller(struct yr_call *c, int obj, const struct helper_job *job, unsigned how)
{
    struct as_caller a;
    yr_fs_reset();                               /* our look-ups, with our authority */
    int err = read_caller(c->ev.tid, &a);
    unsigned differs = 0;
    int ns[JOINED], hns[JOINED];
    for (int i = 0; i < JOINED; i++) {
        hns[i] = ns[i] = -1;
        if (joined[i].when && !(how & joined[i].when))
            continue;
        ns[i] = err ? -1 : caller_ns(c->ev.tid, i, &differs);
        if (ns[i] < 0 && !err)
            err = ESRCH;
    }
    /* Read by number: the caller's only if it still waits after (a killed
     * caller's number may have gone to another task, whose ids and
     * namespaces the helper would take). */
    if (!err && !yr_call_still_waits(c))
        err = ESRCH;
    int sv[2] = { -1, -1 };
    if (!err && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        err = errno;
    /* High numbers first, so that placing them at 3, 4, 5... never overwrites one. */
    int hobj = -1, hsock = -1;
    if (!err) {
        hobj = fcntl(obj, F_DUPFD_CLOEXEC, 64);
        hsock = fcntl(sv[1], F_DUPFD_CLOEXEC, 64);
        for (int i = 0; i < JOINED; i++)
            if (ns[i] >= 0 && (hns[i] = fcntl(ns[i], F_DUPFD_CLOEXEC, 64)) < 0)
                err = EMFILE;
        if (hobj < 0 || hsock < 0)
            err = EMFILE;
    }
    /* A fork with a pidfd: the helper is waited for and killed through it,
     * never by a number the reaper (lifetime.py) may have freed meanwhile. */
    pid_t pid = -1;
    int pidfd = -1;
    if (!err) {
        pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, NULL, 0);
        if (pid == 0) {
            if (place(hobj, 3) < 0 || place(hsock, HELPER_SOCK_FD) < 0)
                _exit(1);
            for (int i = 0; i < JOINED; i++)
                if (hns[i] < 0 ? close(HELPER_NS_FD + i) < 0 && errno != EBADF
                               : place(hns[i], HELPER_NS_FD + i) < 0)
                    _exit(1);                    /* nothing of ours left at a slot unused */
            syscall(SYS_close_range, HELPER_NS_FD + JOINED, ~0U, 0);
            char go;
            if (read(HELPER_SOCK_FD, &go, 1) != 1)   /* not before it is protected */
                _exit(1);
            helper_main(&a, job, differs);
        }
        if (pid < 0)
            err = errno;
    }
    int slot = pid > 0 ? mark_helper(pid) : -1;
    if (pid > 0 && (slot < 0 || write(sv[0], "g", 1) != 1))
        err = EAGAIN;
    yr_close(hobj);
    yr_close(hsock);
    for (int i = 0; i < JOINED; i++) {
        yr_close(hns[i]);
        yr_close(ns[i]);
    }
    yr_close(sv[1]);
    int fd = -1;
    if (!err)
        fd = receive_fd(sv[0], &err);
    if (fd < 0 && err == 0)
        err = EIO;
    yr_close(sv[0]);
    if (pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);   /* done, or broken */
        siginfo_t info;
        waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
        close(pidfd);
    }
    if (slot >= 0)
        helpers[slot] = 0;
    yr_fs_become(&c->id);
    return fd >= 0 ? fd : -(err ? err : EIO);
}

/* obj (O_PATH, judged) opened with flags by the helper. */
int yr_open_as_caller(struct yr_call *c, int obj, int flags, unsigned how)
{
    struct helper_job job = { .name = NULL, .flags = flags, .resource = -1 };
    return as_caller(c, obj, &job, how);
}

/* name created in dir (O_PATH, held) with flags (O_CREAT|O_EXCL) and mode
 * by the helper, judged on the caller's limit of resource. */
int yr_create_as_caller(struct yr_call *c, int dir, const char *name, int flags, uint32_t mode,
                        int resource, const struct rlimit *limit)
{
    struct helper_job job = { .name = name, .flags = flags, .mode = mode,
                              .resource = resource, .limit = *limit };
    return as_caller(c, dir, &job, 0);
}

/* ---- O_ASYNC turned on by a process that is the caller ---------------------------
 *
 * Turning O_ASYNC on may name the file's owner: a terminal's fasync makes it
 * the foreground group, or where there is none (always for a pty master:
 * TIOCSCTTY and TIOCSPGRP set the slave's) whoever turns it on,
 * task_pid(current) as a process, if the file has no owner yet (tty_fasync,
 * __f_setown with force 0). Turned on by a thread of ours, that was the
 * supervisor's process for as long as the thread lived, and input on a
 * master sent it SIGIO, or F_SETSIG's signal (found by a review: killed in
 * about a second by a program that wrote to the slave in a loop). Set to
 * the caller first, an owner may be reset to none by another of its
 * threads (F_SETOWN 0, continued) just before the kernel names ours.
 *
 * So it is turned on by a short-lived process that takes exactly the
 * caller's authority (yr_take_exactly), protected like the open helpers
 * while it lives: no task of ours is ever `current` there. It is forked as
 * ourselves and becomes the caller after: a fork made with the caller's
 * real uid is charged to it and checked against RLIMIT_NPROC (copy_process),
 * so a program at its limit was refused EAGAIN where natively the call makes
 * no process (a review). Named the owner, that process takes no signal (all
 * blocked from its birth; SIGKILL or SIGSTOP end or stop only it, the call
 * then answered EINTR, the owner left on it, which no signal reaches once
 * it is gone) and names the calling thread instead, as the kernel would
 * have: task_pid(current) of that thread, as a process (PIDTYPE_TGID), is
 * what F_SETOWN_EX's F_OWNER_PID of its number sets (find_vpid takes any
 * task's pid), so a thread that is no leader reads F_GETOWN 0 and is offered
 * the SIGIO first, as natively (send_sigio: pid_task(pid, PIDTYPE_PID)). */
struct fasync_job {
    const struct yr_creds *c;   /* the caller's authority, taken by the process */
    int fd;            /* our copy of the caller's descriptor */
    uint32_t cmd;      /* F_SETFL or FIOASYNC */
    int32_t arg;       /* F_SETFL's flags, FIOASYNC's value */
    pid_t tid;         /* the calling thread, in our numbers */
    int pin;           /* a pidfd of that thread, taken while it waited in its call */
};

/* Did the kernel name this process the owner? As a process (a terminal, tun
 * and tap: PIDTYPE_TGID), or as its one thread (a driver that names
 * task_pid(current) as PIDTYPE_PID: older kernels' tun). */
static int named_us(int fd)
{
    struct f_owner_ex owner;
    return syscall(SYS_fcntl, fd, F_GETOWN_EX, &owner) == 0 &&
           (owner.type == F_OWNER_PID || owner.type == F_OWNER_TID) && owner.pid == getpid();
}

/* The owner made the calling thread, as a process. By number, so tested
 * alive by its pin before and after: the thread waits in its call, where it
 * cannot be reaped, unless it was killed meanwhile (dead before: the owner
 * stays on us, dying with us; dead after: reset to none, as yr_setown_as
 * does, whose window this shares: a number reaped and taken again between
 * the first test and the fcntl). */
static void name_the_caller(const struct fasync_job *job)
{
    struct f_owner_ex owner = { F_OWNER_PID, job->tid };
    if (!yr_pidfd_alive(job->pin))
        return;
    syscall(SYS_fcntl, job->fd, F_SETOWN_EX, &owner);
    if (!yr_pidfd_alive(job->pin))
        syscall(SYS_fcntl, job->fd, F_SETOWN, 0L);
}

/* The caller's O_ASYNC turned on: 0 or -errno; the owner handed to the
 * calling thread if the kernel named us. */
static int32_t turn_on(const struct fasync_job *job)
{
    int value = job->arg;
    long rc = job->cmd == FIOASYNC ? syscall(SYS_ioctl, job->fd, FIOASYNC, &value)
                                   : syscall(SYS_fcntl, job->fd, F_SETFL, (long)job->arg);
    if (rc < 0)
        return -errno;
    if (named_us(job->fd))
        name_the_caller(job);
    return 0;
}

/* In the helper (born with every signal blocked): become the caller, wait
 * to be protected, turn O_ASYNC on, send 0 or -errno. Never returns. */
static void fasync_main(const struct fasync_job *job, int sock)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 0);
    int32_t result = yr_take_exactly(job->c) < 0 ? -(errno ? errno : EPERM) : 0;
    prctl(PR_SET_DUMPABLE, 0);                   /* commit_creds may have reset it */
    char go;
    if (read(sock, &go, 1) != 1)
        _exit(1);
    if (result == 0)
        result = turn_on(job);
    if (send(sock, &result, sizeof(result), MSG_NOSIGNAL) < 0)
        _exit(1);
    _exit(0);
}

/* The helper's answer, or -EINTR: it was ended or stopped before it gave
 * one (by a signal of the file's, F_SETSIG SIGKILL or SIGSTOP: the
 * program's own doing; it never blocks otherwise, 5 s is broken). */
static int fasync_answer(int sock)
{
    struct pollfd p = { sock, POLLIN, 0 };
    int32_t result;
    if (poll(&p, 1, 5000) != 1 || recv(sock, &result, sizeof(result), 0) != sizeof(result))
        return -EINTR;
    return result;
}

/* A fork of ours with a pidfd, born with every signal blocked (the forking
 * thread's mask, raw: glibc's would leave its own 32 and 33 open), so that
 * nothing reaches it before it is protected; the thread's mask restored. */
static pid_t fork_blocked(int *pidfd)
{
    uint64_t all = ~0ULL, old;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all));
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, pidfd, NULL, 0);
    if (pid != 0) {
        int e = errno;
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));
        errno = e;
    }
    return pid;
}

/* The helper forked, protected, waited for, and ended (killed and reaped
 * through its pidfd, never by a number the reaper may have freed). */
static int fasync_by_helper(const struct fasync_job *job)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* The helper keeps only its three descriptors, placed at 3, 4 and 5
     * (high numbers first, so that placing one never overwrites another):
     * none of ours (the listener, the pool's, the front's link) is ever in
     * a process that runs as the caller. */
    int hfd = fcntl(job->fd, F_DUPFD_CLOEXEC, 64), hpin = fcntl(job->pin, F_DUPFD_CLOEXEC, 64);
    int hsock = fcntl(sv[1], F_DUPFD_CLOEXEC, 64);
    int pidfd = -1;
    pid_t pid = hfd < 0 || hpin < 0 || hsock < 0 ? (errno = EMFILE, -1) : fork_blocked(&pidfd);
    if (pid == 0) {
        struct fasync_job own = *job;
        own.fd = 3, own.pin = 4;
        if (place(hfd, 3) < 0 || place(hpin, 4) < 0 || place(hsock, 5) < 0)
            _exit(1);
        syscall(SYS_close_range, 6, ~0U, 0);
        fasync_main(&own, 5);
    }
    int rc = pid < 0 ? -errno : -EAGAIN;
    yr_close(hfd);
    yr_close(hpin);
    yr_close(hsock);
    yr_close(sv[1]);                             /* its end: EOF once it is gone */
    int slot = pid > 0 ? mark_helper(pid) : -1;
    if (slot >= 0 && write(sv[0], "g", 1) == 1)
        rc = fasync_answer(sv[0]);
    yr_close(sv[0]);
    if (pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        siginfo_t info;
        waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
        close(pidfd);
    }
    if (slot >= 0)
        helpers[slot] = 0;
    return rc;
}

/* O_ASYNC turned on (cmd F_SETFL with flags arg, or FIOASYNC with value
 * arg) on fd, our copy of the caller's descriptor, by a helper that is the
 * caller; pin: a pidfd of the calling thread tid. 0 or -errno. The fork is
 * made as ourselves (the thread's identity paused: a caller's real uid it
 * may hold would be charged for it), the helper becomes the caller. */
int yr_fasync_as(const struct yr_creds *c, int fd, uint32_t cmd, int32_t arg, pid_t tid,
                 int pin)
{
    struct fasync_job job = { .c = c, .fd = fd, .cmd = cmd, .arg = arg, .tid = tid, .pin = pin };
    yr_fs_pause();
    int rc = fasync_by_helper(&job);
    yr_fs_resume();
    return rc;
}
