/* Opens that may wait (a FIFO without its peer, a device, a lease to
 * break), each in a thread of its own, so the receive loop goes on serving
 * every other caller meanwhile. A waiting open costs a thread and a
 * descriptor: YR_WORKERS_PER_PROCESS per process and YR_WORKERS_MAX in all
 * at most; beyond, the open fails for that caller alone, with the errno of a
 * full table of open files: EMFILE (its process's), ENFILE (the sandbox's). Under user-notify the worker answers its
 * caller itself; under the ptrace backend only the tracer thread may touch a
 * tracee, so the worker leaves its answer in the context's queue and wakes
 * the tracer (tracer.c takes it with yr_worker_take); the caller stays in its
 * seccomp stop until then. */
#define _GNU_SOURCE
#include <dirent.h>
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

/* Deferred mode: answers waiting for the tracer, shared by the context and
 * every worker it started (the last one out frees it). */
struct done_item {
    struct done_item *next;
    uint64_t id;            /* the call's */
    pid_t tid;
    int pidfd;              /* the caller's task: its number may be reused once it is gone */
    struct yr_deferred reply;
};
struct yr_done {
    pthread_mutex_t lock;
    int refs;
    pid_t tracer;           /* the thread to wake */
    struct done_item *head;
    uint64_t *gone;         /* calls whose callers left their stop (yr_worker_cancel) */
    int ngone, gone_size;
};

/* ---- the bound ------------------------------------------------------------- */

static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;
static int workers;                          /* waiting opens in all */
static struct { pid_t tgid; int n; } workers_of[YR_WORKERS_MAX];  /* n == 0: free */

/* One more waiting open for process tgid: 0, or -EMFILE, -ENFILE. */
static int worker_reserve(pid_t tgid)
{
    pthread_mutex_lock(&workers_lock);
    int err = workers >= YR_WORKERS_MAX ? -ENFILE : 0, slot = -1;
    for (int i = 0; !err && i < YR_WORKERS_MAX; i++) {
        if (workers_of[i].n && workers_of[i].tgid == tgid) {
            slot = i;
            break;
        }
        if (!workers_of[i].n && slot < 0)
            slot = i;
    }
    if (!err && workers_of[slot].n >= YR_WORKERS_PER_PROCESS)
        err = -EMFILE;
    if (!err) {
        workers_of[slot].tgid = tgid;
        workers_of[slot].n++;
        workers++;
    }
    pthread_mutex_unlock(&workers_lock);
    return err;
}

static void worker_release(pid_t tgid)
{
    pthread_mutex_lock(&workers_lock);
    for (int i = 0; i < YR_WORKERS_MAX; i++)
        if (workers_of[i].n && workers_of[i].tgid == tgid) {
            workers_of[i].n--;
            workers--;
            break;
        }
    pthread_mutex_unlock(&workers_lock);
}

struct blocking_open {
    int listener;           /* user-notify: where to answer; -1: deferred */
    struct yr_done *done;   /* deferred: where to leave the answer */
    int pidfd;              /* deferred: the caller's task */
    uint64_t id;
    pid_t tid, tgid;        /* the caller */
    int obj;                /* O_PATH: the object, judged by the gate */
    int flags;
    struct yr_fsid id_as;
};

static void done_put(struct yr_done *d)
{
    pthread_mutex_lock(&d->lock);
    int last = --d->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (!last)
        return;
    for (struct done_item *i = d->head, *next; i; i = next) {
        next = i->next;
        if (i->reply.fd >= 0)
            close(i->reply.fd);
        close(i->pidfd);
        free(i);
    }
    free(d->gone);
    free(d);
}

/* The call id of a traced caller the tracer saw leave the stop it waited
 * in (tracer.c): killed by another thread's execve, which took its tid
 * (de_thread), it is still "there" to a signal or a pidfd by that tid, and
 * its worker would wait for ever, a FIFO's reader that natively no longer
 * is. Its worker gives up. Ids are the tracer's own, never reused. */
void yr_worker_cancel(struct yr_ctx *ctx, uint64_t id)
{
    struct yr_done *d = ctx->done;
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    if (d->ngone == d->gone_size) {
        int size = d->gone_size ? 2 * d->gone_size : 16;
        uint64_t *g = realloc(d->gone, (size_t)size * sizeof(*g));
        if (g) {
            d->gone = g;
            d->gone_size = size;
        }
    }
    if (d->ngone < d->gone_size)
        d->gone[d->ngone++] = id;
    pthread_mutex_unlock(&d->lock);
}

/* Was call id cancelled? Forgotten once asked (with d->lock held). */
static int gone_locked(struct yr_done *d, uint64_t id)
{
    for (int i = 0; i < d->ngone; i++)
        if (d->gone[i] == id) {
            d->gone[i] = d->gone[--d->ngone];
            return 1;
        }
    return 0;
}

static int cancelled(struct yr_done *d, uint64_t id)
{
    pthread_mutex_lock(&d->lock);
    int gone = gone_locked(d, id);
    pthread_mutex_unlock(&d->lock);
    return gone;
}

static void no_op(int sig)
{
    (void)sig;
}

/* The tracer's context gets a queue, and its waits can be interrupted by a
 * worker's wake-up (no SA_RESTART: waitpid returns EINTR). */
void yr_worker_wakeable(struct yr_ctx *ctx)
{
    if (!ctx->done) {
        ctx->done = calloc(1, sizeof(*ctx->done));
        if (!ctx->done)
            return;
        pthread_mutex_init(&ctx->done->lock, NULL);
        ctx->done->refs = 1;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = no_op;
        sigemptyset(&sa.sa_mask);
        sigaction(YR_WAKE_SIG, &sa, NULL);
    }
    ctx->done->tracer = (pid_t)syscall(SYS_gettid);
}

void yr_worker_release(struct yr_ctx *ctx)
{
    if (ctx->done)
        done_put(ctx->done);
    ctx->done = NULL;
}

/* One worker's answer for a caller still waiting, if any: 1 (*id, *tid,
 * *reply filled), 0 none. Dropped, its descriptor closed: an answer for a
 * call cancelled (its caller left the stop the answer was made for, and its
 * tid may now be another task's, waiting in a call of its own), and one for
 * a task that is gone (its number may belong to another task by now).
 * Cancel and take both run in the tracer thread, so no cancel comes between
 * this check and the answer's use; a worker queues under d->lock, so an
 * answer queued after its call's cancel is seen cancelled here. */
int yr_worker_take(struct yr_ctx *ctx, uint64_t *id, pid_t *tid, struct yr_deferred *reply)
{
    struct yr_done *d = ctx->done;
    for (;;) {
        if (!d)
            return 0;
        pthread_mutex_lock(&d->lock);
        struct done_item *i = d->head;
        int gone = 0;
        if (i) {
            d->head = i->next;
            gone = gone_locked(d, i->id);
        }
        pthread_mutex_unlock(&d->lock);
        if (!i)
            return 0;
        int alive = !gone && syscall(SYS_pidfd_send_signal, i->pidfd, 0, NULL, 0) == 0;
        close(i->pidfd);
        *id = i->id;
        *tid = i->tid;
        *reply = i->reply;
        free(i);
        if (alive)
            return 1;
        if (reply->fd >= 0)
            close(reply->fd);
    }
}

static void deferred_answer(const struct blocking_open *b, int fd, int err)
{
    struct done_item *i = malloc(sizeof(*i));
    int pidfd = fcntl(b->pidfd, F_DUPFD_CLOEXEC, 0);
    if (!i || pidfd < 0) {
        free(i);
        yr_close(pidfd);
        if (fd >= 0)
            close(fd);
        return;                                  /* the caller stays stopped: killed at exit */
    }
    i->id = b->id;
    i->tid = b->tid;
    i->pidfd = pidfd;
    if (fd >= 0)
        i->reply = (struct yr_deferred){ .kind = YR_DEFER_FD, .fd = fd,
                                         .fd_flags = (uint32_t)(b->flags & O_CLOEXEC) };
    else
        i->reply = (struct yr_deferred){ .kind = YR_DEFER_RETURN, .err = err, .val = -1,
                                         .fd = -1 };
    pthread_mutex_lock(&b->done->lock);
    i->next = b->done->head;
    b->done->head = i;
    pid_t tracer = b->done->tracer;
    pthread_mutex_unlock(&b->done->lock);
    syscall(SYS_tgkill, getpid(), tracer, YR_WAKE_SIG);
}

/* ---- replies from any thread ----------------------------------------------- */

static void mt_answer(const struct blocking_open *b, int64_t val, int err)
{
    struct seccomp_notif_resp r;
    memset(&r, 0, sizeof(r));
    r.id = b->id;
    r.val = err ? -1 : val;
    r.error = -err;
    while (ioctl(b->listener, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0 && errno == EINTR)
        ;
}

static void mt_reply(const struct blocking_open *b, int err)
{
    mt_answer(b, 0, err);
}

/* fd becomes the caller's result, and is closed here before the caller is
 * woken, as yr_reply_addfd does it (notify.c: why not ADDFD_FLAG_SEND). */
static void mt_addfd(const struct blocking_open *b, int fd)
{
    long got = yr_listener_addfd(b->listener, b->id, fd, (b->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
    if (got != -ENOENT && got != -EINPROGRESS)   /* gone, or answered already */
        mt_answer(b, got < 0 ? 0 : got, got < 0 ? (int)-got : 0);
}

/* The waiting thread wakes every 100 ms (the tick, below, interrupts the
 * open) to see whether the caller is gone or has a signal pending that the
 * kernel would act on: natively that signal would interrupt the open, and
 * the seccomp wait of a caller can only be killed. The caller then gets
 * ERESTARTSYS, which the kernel turns into EINTR or a restart of the call,
 * or a stop and a restart after SIGCONT, as for its own wait. */
#define WAKE_SIG YR_WAKE_SIG
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

static long status_number(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);
    return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

#define SIG_BIT(sig) (1ULL << ((sig) - 1))
/* Default action: stop (SIGSTOP's cannot be caught, ignored or blocked). */
#define STOP_SIGS (SIG_BIT(SIGSTOP) | SIG_BIT(SIGTSTP) | SIG_BIT(SIGTTIN) | SIG_BIT(SIGTTOU))
/* Default action: ignore (SIGCHLD, SIGURG, SIGWINCH) or continue. */
#define HARMLESS_SIGS (SIG_BIT(SIGCHLD) | SIG_BIT(SIGURG) | SIG_BIT(SIGWINCH) | SIG_BIT(SIGCONT))
/* Threads of the caller's process looked at per tick for a stop in progress. */
#define PEERS_LOOKED_AT 64

/* The signals the kernel acts on once the caller leaves its wait: caught
 * ones and, with stops, those whose default action stops it; blocked ones
 * stay pending. */
static uint64_t acting_signals(const char *status, int stops)
{
    uint64_t caught = status_mask(status, "\nSigCgt:");
    uint64_t stopping = stops ? STOP_SIGS & ~caught & ~status_mask(status, "\nSigIgn:") : 0;
    return (caught | stopping) & ~status_mask(status, "\nSigBlk:");
}

/* The signals pending for a tracee (its own or its process's) that would
 * end its process: not blocked, caught or ignored, their default action to
 * terminate (or dump core). Natively such a signal kills a process waiting
 * in any call at once (complete_signal's group kill); a traced one gets no
 * such shortcut, its signal waits for a signal-delivery stop, and the
 * caller, held in its seccomp stop until answered, outlived SIGTERM,
 * SIGHUP and timeout(1) for as long as its FIFO had no peer. Answered
 * EINTR, the caller on its way out takes the signal (ptrace_stop's
 * recalc_sigpending: queued signals passed it over while it was stopped)
 * and dies of it, as natively; EINTR itself reaches no code of its. */
static uint64_t ending_signals(const char *status)
{
    uint64_t pending = status_mask(status, "\nSigPnd:") | status_mask(status, "\nShdPnd:");
    uint64_t spared = status_mask(status, "\nSigBlk:") | status_mask(status, "\nSigCgt:") |
                      status_mask(status, "\nSigIgn:") | STOP_SIGS | HARMLESS_SIGS;
    return pending & ~spared;
}

/* The state letter of thread tid of process tgid (T: stopped, t: a
 * tracee's stop), 0 if gone. */
static char thread_state(pid_t tgid, const char *tid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)tgid, tid);
    return yr_stat_state(path);
}

/* Is a stop of the caller's process in progress? The thread that took the
 * stop signal stopped itself and marked the others (do_signal_stop:
 * JOBCTL_STOP_PENDING, which /proc does not show); the caller, in its
 * wait, is the one left. So: another of its threads is stopped (T; a
 * tracee's stop is t). The leader first: running or in an interruptible
 * sleep it would have stopped at once, so then no stop is in progress (one
 * that has just begun is seen at the next tick); otherwise up to
 * PEERS_LOOKED_AT more threads, each tick. */
static int group_stopping(pid_t tgid, pid_t tid)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", (int)tgid);
    if (tid != tgid) {
        char leader = thread_state(tgid, name);
        if (leader == 'T')
            return 1;
        if (leader == 'R' || leader == 'S')
            return 0;
    }
    char path[48];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)tgid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int stopped = 0, looked = 0;
    for (struct dirent *e; !stopped && looked < PEERS_LOOKED_AT && (e = readdir(d));) {
        pid_t peer = (pid_t)atoi(e->d_name);
        if (peer <= 0 || peer == tid || peer == tgid)
            continue;
        looked++;
        stopped = thread_state(tgid, e->d_name) == 'T';
    }
    closedir(d);
    return stopped;
}

/* Process-wide signals the kernel offers first to a thread it picks, not
 * to the leader (complete_signal tries the task it is given first):
 * SIGCHLD to the thread that forked the child or traces it
 * (do_notify_parent, do_notify_parent_cldstop: tsk->parent); SIGPROF,
 * SIGVTALRM and SIGXCPU to the thread running when the CPU time ran out
 * (posix-cpu-timers.c: check_cpu_itimer's tsk, check_rlimit's current);
 * SIGIO and SIGURG to the owner's task, the thread that set it where
 * F_NOTIFY, F_SETLEASE or a terminal's O_ASYNC made it the owner
 * (task_pid(current); send_sigio: pid_task(pid, PIDTYPE_PID)). kill(),
 * sigqueue, killpg() and the terminal, ITIMER_REAL, and a timer's or
 * mq_notify's SIGEV_SIGNAL name the process, and the kernel then offers
 * the signal to its leader first. */
#define NOT_AT_LEADER (SIG_BIT(SIGCHLD) | SIG_BIT(SIGPROF) | SIG_BIT(SIGVTALRM) | \
                       SIG_BIT(SIGXCPU) | SIG_BIT(SIGIO) | SIG_BIT(SIGURG))

/* The signals every thread of process tgid but its leader blocks, as far
 * as PEERS_LOOKED_AT threads go (none past them). */
static uint64_t blocked_by_peers(pid_t tgid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)tgid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t all = ~0ULL;
    int looked = 0;
    for (struct dirent *e; all && (e = readdir(d));) {
        pid_t peer = (pid_t)atoi(e->d_name);
        if (peer <= 0 || peer == tgid)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)tgid, (int)peer);
        if (++looked > PEERS_LOOKED_AT || yr_read_text(path, buf, sizeof(buf)) <= 0)
            all = 0;                             /* not known: as if one took them */
        else
            all &= status_mask(buf, "\nSigBlk:");
    }
    closedir(d);
    return all;
}

/* Did the kernel surely set the leader's TIF_SIGPENDING for one of
 * shared, process-wide signals pending that it does not block? Yes for a
 * signal it offers the leader first (not NOT_AT_LEADER), which the leader
 * takes unless it has the flag already. Yes too for one every other thread
 * blocks: whichever thread it was offered to, the leader was the only one
 * that could want it. A peer that blocked it only after it came was either
 * not the one offered it, or had the flag for it, and blocking a signal
 * pending with the flag set hands it on to a thread that does not block it
 * (retarget_shared_pending, as at a thread's exit): read after ShdPnd, the
 * peers' masks cannot show a
 * signal blocked by all that the leader was never woken for. Otherwise a
 * NOT_AT_LEADER signal interrupts the leader's open only once it is done,
 * even where it was offered to the leader (kill() of the process with
 * SIGCHLD, a CPU timer that ran out just before its call). Left: any
 * signal sent to the process naming another of its threads (kill() or
 * sigqueue of its tid, a thread pidfd with PIDFD_SIGNAL_THREAD_GROUP,
 * F_SETOWN of its tid or an F_SETSIG signal of a file it owns, a child's
 * clone exit signal, a parent-death signal it asked for) is offered to
 * that thread first: a waiting leader then gets ERESTARTSYS without the
 * flag (512). */
static int leader_offered(pid_t tgid, uint64_t shared)
{
    return (shared & ~NOT_AT_LEADER) || (shared & blocked_by_peers(tgid));
}

/* Should the caller leave its wait for a signal?
 *
 * ERESTARTSYS needs the caller's TIF_SIGPENDING: the kernel restarts (or
 * stops) a call only in its signal path on the way out to user space
 * (arch_do_signal_or_restart), run only when that flag is set; without
 * it the caller would see errno 512. Only the cases that surely set it on
 * the caller count, and only the caller clears its own (recalc_sigpending,
 * on its way out), asleep meanwhile:
 * - a signal of its own (SigPnd): complete_signal wakes it, or it had the
 *   flag already;
 * - a process-wide one (ShdPnd) that the caller does not block, when it is
 *   its process's only thread, or its leader and offered to it
 *   (leader_offered). Another thread of several is woken or not as the
 *   kernel chooses, which /proc does not say (found by a review: answered
 *   for a caller the kernel had not chosen, an open failed with errno
 *   512): there such a signal interrupts the open only once it is done;
 * - a stop in progress (group_stopping): do_signal_stop set the flag of
 *   every thread not stopped.
 * SIGCONT between this check and the answer flushes the stop signals and
 * JOBCTL_STOP_PENDING (prepare_signal) but not TIF_SIGPENDING: the caller
 * finds nothing to do in get_signal and its call is restarted, as a wait
 * the kernel woke for a stop that was then cancelled.
 * Stops only under user-notify: a tracee's call can only be answered
 * (EINTR, worse than a stop that comes late), and its stops are its
 * tracer's. A tracee's signal that ends its process (ending_signals), its
 * own or its process's, whichever thread the kernel chose: the process
 * dies of it, and what its other threads see of an EINTR first is nothing
 * they could act on. */
static int caller_signalled(const struct blocking_open *b)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)b->tid);
    if (yr_read_text(path, buf, sizeof(buf)) <= 0)
        return 0;
    int stops = b->listener >= 0, alone = status_number(buf, "\nThreads:") <= 1;
    if (!stops && ending_signals(buf))
        return 1;
    uint64_t acting = acting_signals(buf, stops);
    if (status_mask(buf, "\nSigPnd:") & acting)
        return 1;
    uint64_t shared = status_mask(buf, "\nShdPnd:") & acting;
    if (shared && (alone || (b->tid == b->tgid && leader_offered(b->tgid, shared))))
        return 1;
    return stops && !alone && group_stopping(b->tgid, b->tid);
}

static int still_waiting(const struct blocking_open *b)
{
    if (b->listener < 0)                         /* a tracee waits in its stop until killed */
        return !cancelled(b->done, b->id) &&
               (syscall(SYS_tgkill, b->tgid, b->tid, 0) == 0 || errno == EPERM);
    uint64_t id = b->id;
    return ioctl(b->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* ---- a tick for threads that wait ------------------------------------------
 *
 * A thread waiting in a call only a signal interrupts (a worker's FIFO open,
 * the tracer's wait while it injects) is sent YR_WAKE_SIG every 100 ms by
 * one ticker thread. A POSIX timer would take a queued signal of the user's
 * RLIMIT_SIGPENDING, which any program of the user can use up (the open was
 * then waited for unwatched, or refused); a non-realtime signal sent with
 * tgkill is set pending whatever that allowance (only its siginfo is lost),
 * and one pending is enough. A slot is emptied under the lock before its
 * thread goes on, so no tick reaches a thread that no longer asked for it;
 * the ticker ends once no slot is taken (one thread fewer to count), and
 * the next wait starts another. */
#define TICK_SLOTS 512
static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t ticked[TICK_SLOTS];
static int ticker_running;              /* under tick_lock: it ends when no slot is taken */

static void *ticker(void *unused)
{
    (void)unused;
    const struct timespec period = { 0, 100000000L };
    pid_t me = getpid();
    for (int busy = 1; busy;) {
        nanosleep(&period, NULL);
        pthread_mutex_lock(&tick_lock);
        busy = 0;
        for (int i = 0; i < TICK_SLOTS; i++)
            if (ticked[i]) {
                syscall(SYS_tgkill, me, ticked[i], YR_WAKE_SIG);
                busy = 1;
            }
        ticker_running = busy;
        pthread_mutex_unlock(&tick_lock);
    }
    return NULL;
}

/* Under tick_lock. */
static int ticker_start(void)
{
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &was);    /* it takes no signal of anyone's */
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int up = pthread_create(&t, &attr, ticker, NULL) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    return up;
}

/* The calling thread ticked from now: its slot, or -1 (none to be had). */
int yr_tick_start(void)
{
    pid_t me = (pid_t)syscall(SYS_gettid);
    int slot = -1;
    pthread_mutex_lock(&tick_lock);
    if (!ticker_running)
        ticker_running = ticker_start();
    for (int i = 0; ticker_running && i < TICK_SLOTS && slot < 0; i++)
        if (!ticked[i]) {
            ticked[i] = me;
            slot = i;
        }
    pthread_mutex_unlock(&tick_lock);
    return slot;
}

void yr_tick_stop(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&tick_lock);
    ticked[slot] = 0;
    pthread_mutex_unlock(&tick_lock);
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
    /* The tick is what ends a wait whose caller died or was signalled:
     * without one (no ticker, every slot taken), no wait: the open fails
     * (ENOMEM), never left to block where nothing would notice its caller
     * gone. */
    int tick = yr_tick_start();
    int fd = -1, err = tick >= 0 ? 0 : ENOMEM;
    if (!err && yr_fs_become(&b->id_as) < 0)
        err = EPERM;                             /* never opened as ourselves */
    for (; !err;) {
        fd = yr_reopen(b->obj, (b->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_NOCTTY, 0);
        if (fd >= 0 || errno != EINTR) {
            err = fd < 0 ? errno : 0;
            break;
        }
        if (!still_waiting(b)) {
            err = -1;                            /* the caller is gone: nobody to answer */
            break;
        }
        if (caller_signalled(b)) {
            /* A tracee cannot be made to restart its call: it sees EINTR. */
            err = b->listener >= 0 ? ERESTARTSYS_ : EINTR;
            break;
        }
    }
    yr_tick_stop(tick);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (b->listener < 0) {
        if (err >= 0)
            deferred_answer(b, fd, err);
        else if (fd >= 0)
            close(fd);
        done_put(b->done);
        close(b->pidfd);
    } else if (fd >= 0) {
        mt_addfd(b, fd);        /* closes fd */
    } else if (err > 0) {
        mt_reply(b, err);
    }
    close(b->obj);
    worker_release(b->tgid);
    free(b);
    return NULL;
}

/* Open obj (an O_PATH fd, judged) in a worker thread that replies itself.
 * R_DONE: the worker has the call; -errno otherwise. */
int yr_open_in_worker(struct yr_call *c, int obj, int flags)
{
    pid_t tgid = yr_caller_tgid(c);
    if (tgid <= 0)
        return -ESRCH;
    int err = worker_reserve(tgid);
    if (err)
        return err;
    struct blocking_open *b = malloc(sizeof(*b));
    int copy = b ? fcntl(obj, F_DUPFD_CLOEXEC, 0) : -1;
    if (copy < 0) {
        err = b ? -errno : -ENOMEM;
        free(b);
        worker_release(tgid);
        return err;
    }
    struct yr_ctx *ctx = c->ctx;
    *b = (struct blocking_open){ ctx->listener, ctx->done, -1, c->ev.id, c->ev.tid,
                                 tgid, copy, flags, c->id };
    if (ctx->listener < 0) {
        b->pidfd = (int)syscall(SYS_pidfd_open, c->ev.tid, O_EXCL /* PIDFD_THREAD */);
        if (!ctx->done || b->pidfd < 0) {
            yr_close(b->pidfd);
            close(copy);
            free(b);
            worker_release(tgid);
            return -ENOSYS;                      /* a tracer that cannot be woken */
        }
        pthread_mutex_lock(&ctx->done->lock);
        ctx->done->refs++;
        pthread_mutex_unlock(&ctx->done->lock);
    }
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int rc = pthread_create(&t, &attr, blocking_worker, b);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        if (ctx->listener < 0) {
            done_put(b->done);
            close(b->pidfd);
        }
        close(copy);
        free(b);
        worker_release(tgid);
        return -EAGAIN;
    }
    if (ctx->listener < 0)
        ctx->reply = (struct yr_deferred){ .kind = YR_DEFER_PENDING, .fd = -1 };
    return R_DONE;
}
