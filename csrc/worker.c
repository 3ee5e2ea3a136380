/* Opens that may wait (a FIFO without its peer, a lease to break), each in
 * a thread of its own that answers its caller itself, so the receive loop
 * goes on serving every other caller meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "engine.h"

struct blocking_open {
    int listener;
    uint64_t id;
    pid_t tid;              /* the caller */
    int obj;                /* O_PATH: the object, judged by the gate */
    int flags;
    struct yr_fsid id_as;
};

/* ---- replies from any thread ----------------------------------------------- */

static void mt_reply(const struct blocking_open *b, int err)
{
    struct seccomp_notif_resp r;
    memset(&r, 0, sizeof(r));
    r.id = b->id;
    r.val = err ? -1 : 0;
    r.error = -err;
    while (ioctl(b->listener, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0 && errno == EINTR)
        ;
}

static void mt_addfd(const struct blocking_open *b, int fd)
{
    struct seccomp_notif_addfd add = {
        .id = b->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd,
        .newfd_flags = (b->flags & O_CLOEXEC) ? O_CLOEXEC : 0,
    };
    while (ioctl(b->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != ENOENT && errno != EINPROGRESS)
            mt_reply(b, errno);
        return;
    }
}

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

static int still_waiting(const struct blocking_open *b)
{
    uint64_t id = b->id;
    return ioctl(b->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

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
        fd = yr_reopen(b->obj, (b->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_NOCTTY, 0);
        if (fd >= 0 || errno != EINTR) {
            err = fd < 0 ? errno : 0;
            break;
        }
        if (!still_waiting(b)) {
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
        mt_addfd(b, fd);
        close(fd);
    } else if (err > 0) {
        mt_reply(b, err);
    }
    close(b->obj);
    free(b);
    return NULL;
}

/* Open obj (an O_PATH fd, judged) in a worker thread that replies itself.
 * R_DONE: the worker has the call; -errno otherwise. */
int yr_open_in_worker(struct yr_call *c, int obj, int flags)
{
    struct blocking_open *b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    int copy = fcntl(obj, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        free(b);
        return -errno;
    }
    *b = (struct blocking_open){ c->ctx->listener, c->ev.id, c->ev.tid, copy, flags, c->id };
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int rc = pthread_create(&t, &attr, blocking_worker, b);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(copy);
        free(b);
        return -EAGAIN;
    }
    return R_DONE;
}
