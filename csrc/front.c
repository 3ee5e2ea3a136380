/* The front: the process the shell waits on (sandbox/lifetime.py says the
 * whole lifetime). It only waits: the supervisor, its child, tells it over a
 * SOCK_SEQPACKET pair what it needs, each message followed by the wake
 * signal (yr_front_wake_signal) except the first:
 *
 *   "H"            the child is the supervisor now (lifetime.Link)
 *   "P" + a pidfd  the program runs: the signals sent to yama-run go to it,
 *                  through the pidfd, so a reused pid is never signalled
 *   "S" + an int   the program's status: an exit code, which the front
 *                  returns at once, or -N: it was killed by signal N, and
 *                  the front dies by N (die_by)
 *   "T" + an int   the program stopped with that signal: the front stops
 *                  with it too, so that the shell sees its job stopped
 *
 * A shell's job is the front, which it waits for with WUNTRACED, but the
 * program is the supervisor's child, and the supervisor is in a session of
 * its own: so the front mirrors the program's stops ("T") and its
 * continuing (the supervisor sends the front SIGCONT), and passes on the
 * SIGCONT that continues it (`fg`, `bg`) to a stopped program. A signal it
 * forwards to a stopped program is followed by SIGCONT, as the kernel sends
 * SIGHUP and SIGCONT to a stopped process group that becomes orphaned: the
 * program may be in a group of its own (`bash -i`), which the kernel
 * counts as orphaned from the start (its parent, the supervisor, is in
 * another session), so when the shell goes it is the front's group that
 * the kernel hangs up, and the program must be ended from here.
 *
 * It is C for the installed command: csrc/launcher.c forks before it execs
 * the interpreter and the parent waits here, so no Python process is forked
 * or torn down on the way to the program's status (docs/startup.md). The
 * front that `python3 -m sandbox.cli` forks (lifetime.split) is this code too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procstat.h"
#include "yama.h"

#define EXIT_SETUP 125
#define SI_FROM_KERNEL 0x80     /* SI_KERNEL: from the terminal, the program has it too */

/* Sent to yama-run, passed on to the program while it runs. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define N_FORWARDED (int)(sizeof forwarded / sizeof forwarded[0])

int yr_front_forwarded(int i)
{
    return i >= 0 && i < N_FORWARDED ? forwarded[i] : 0;
}

int yr_front_wake_signal(void)
{
    return SIGRTMIN + 2;
}

static sigset_t front_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < N_FORWARDED; i++)
        sigaddset(&set, forwarded[i]);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGCONT);   /* it still continues us; blocked, it is also seen */
    sigaddset(&set, yr_front_wake_signal());
    return set;
}

/* Blocked in the calling thread before the fork, so that none of them is
 * lost, or acted on, before yr_front waits for it. */
int yr_front_block(void)
{
    sigset_t set = front_signals();
    return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

struct front {
    int sock, pidfd;
    pid_t supervisor;
    pid_t program;              /* the pidfd's pid, 0 until known */
    int mirror;                 /* "T" heard: the program's stop signal, to stop with */
    int heard;                  /* any message: the child is the supervisor */
    int status;                 /* the program's, once sent: a code, or -N for signal N */
    int ended;                  /* the status was sent */
    int pending[N_FORWARDED];   /* sent before the program ran, in order, once each */
    int n_pending;
};

static void forward(struct front *f, int sig)
{
    if (f->pidfd < 0) {
        for (int i = 0; i < f->n_pending; i++)
            if (f->pending[i] == sig)
                return;         /* pending twice is pending once, as in the kernel */
        f->pending[f->n_pending++] = sig;
        return;
    }
    syscall(SYS_pidfd_send_signal, f->pidfd, sig, NULL, 0);     /* ESRCH: it has exited */
}

/* The pid of a pidfd, as /proc/self/fdinfo gives it; 0 if unknown. */
static pid_t pidfd_pid(int pidfd)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    char *line = yr_read_text(path, buf, sizeof buf) > 0 ? strstr(buf, "\nPid:") : NULL;
    return line ? (pid_t)atoi(line + 5) : 0;
}

/* Whether the program is stopped now (job control, not a ptrace stop), read
 * from /proc. The "T" message says it was, at the supervisor's wait; it may
 * have been continued since (Ctrl-Z stops the front and a program of its
 * group together, and `fg` continues both before the message is read). */
static int program_stopped(const struct front *f)
{
    char path[64];
    if (f->program <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/stat", f->program);
    /* Still alive after the read: the pid was the program's, not a reuse
     * (the program is reaped only after it is gone for good). */
    return yr_stat_state(path) == 'T' &&
           syscall(SYS_pidfd_send_signal, f->pidfd, 0, NULL, 0) == 0;
}

static void take_pidfd(struct front *f, const int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (i == 0 && f->pidfd < 0) {
            f->pidfd = fds[i];
            f->program = pidfd_pid(fds[i]);
        } else
            close(fds[i]);      /* more than was sent: none of them is ours to keep */
    }
    for (int i = 0; i < f->n_pending && f->pidfd >= 0; i++)
        forward(f, f->pending[i]);
    f->n_pending = 0;
}

/* Every message waiting; stops at the status. */
static void drain(struct front *f)
{
    while (!f->ended) {
        char msg[64];
        union { struct cmsghdr align; char buf[CMSG_SPACE(4 * sizeof(int))]; } control;
        struct iovec iov = {msg, sizeof msg};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = control.buf, .msg_controllen = sizeof control.buf};
        ssize_t n = recvmsg(f->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0)
            return;             /* nothing waits (EAGAIN), or the supervisor closed its end */
        int fds[4], n_fds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && n_fds < 4; i++)
                    memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        f->heard = 1;
        if (msg[0] == 'P')
            take_pidfd(f, fds, n_fds);
        else {
            for (int i = 0; i < n_fds; i++)
                close(fds[i]);
            if (msg[0] == 'S' && n >= 5) {
                memcpy(&f->status, msg + 1, sizeof(int));
                f->ended = 1;
            }
            else if (msg[0] == 'T' && n >= 5)
                memcpy(&f->mirror, msg + 1, sizeof(int));
        }
    }
}

/* End by signal sig, at its default action, as the process we stand for
 * did: our parent must see a death by a signal, not exit(128+sig) (a
 * shell stops a loop only when its child died of SIGINT; subprocess gives
 * -sig), as env, timeout and sudo do. Never with a core of our own (we are
 * not dumpable either): the program's is its own. Raw system calls: glibc's
 * signal(), sigaddset() and raise() refuse its own two (32 and 33), by
 * which a program can be killed too (found by a review: yama-run exited
 * 160). Returns 128+sig, to exit with, only if that did not end us. */
static int die_by(int sig)
{
    if (sig < 1 || sig > 64)
        return 128 + sig;       /* no such signal: nothing to die by */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    /* the kernel's sigaction: the default handler, no flags, nothing masked
     * (all zero, whatever the architecture's field order) */
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = {0};
    uint64_t one = 1ULL << (sig - 1);
    syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(one));
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &one, NULL, sizeof(one));
    syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
    return 128 + sig;
}

/* The child exited without a status. If it never became the supervisor
 * (the launcher's child: --help, a usage error, a program not found), its
 * own exit is yama-run's, a signal included; a supervisor gone silent is a
 * setup error. */
static int child_gone(const struct front *f, pid_t reaped, int raw)
{
    if (f->heard || reaped <= 0)
        return EXIT_SETUP;
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : die_by(WTERMSIG(raw));
}

/* Stop as the program did, with its signal (the shell says "Stopped" or
 * "Stopped (tty output)" by it) at its default action; returns once
 * continued. SIGTSTP, SIGTTIN and SIGTTOU are discarded by the kernel in an
 * orphaned process group: then there is no shell to continue us either. */
static void stop_like(int sig)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    int set = sig != SIGSTOP && sigaction(sig, &dfl, &old) == 0;
    sigset_t one, mask;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, &mask);
    raise(sig);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    if (set)
        sigaction(sig, &old, NULL);
}

/* "T" heard: stop with the program, unless it was continued meanwhile. A
 * SIGCONT between the look and the stop leaves us stopped; the supervisor
 * then sees the program continued and continues us (yr_reap_main). */
static void mirror_stop(struct front *f)
{
    int sig = f->mirror;
    f->mirror = 0;
    if (program_stopped(f))
        stop_like(sig);
}

/* We were continued (the shell's `fg` or `bg`, or the supervisor because the
 * program was): a stopped program is continued too. A "T" read here is
 * older than this SIGCONT, or as old: the stop it reports is over. */
static void continued(struct front *f)
{
    drain(f);
    f->mirror = 0;
    if (program_stopped(f))
        forward(f, SIGCONT);
}

/* A signal for the program. One the terminal sent (SI_KERNEL) reached the
 * program's group already, unless the program stopped in a group of its
 * own: the kernel's SIGHUP to our orphaned group when the shell is gone is
 * one too. A stopped program gets SIGCONT after it, as the kernel sends an
 * orphaned stopped group SIGHUP then SIGCONT, so it is never left stopped
 * for ever with a signal pending. */
static void pass_on(struct front *f, int sig, int code)
{
    int stopped = program_stopped(f);
    if (code != SI_FROM_KERNEL || stopped)
        forward(f, sig);
    if (stopped)
        forward(f, SIGCONT);
}

/* Wait for the program's status, forwarding signals meanwhile; the
 * caller has blocked them (yr_front_block) before it forked the supervisor.
 * Returns the exit code to exit with; a program killed by a signal kills
 * us by it here. */
int yr_front(int sock, int supervisor)
{
    struct front f = {.sock = sock, .pidfd = -1, .supervisor = supervisor};
    prctl(PR_SET_DUMPABLE, 0);  /* out of the sandbox's reach, as the supervisor is */
    sigset_t wanted = front_signals();
    drain(&f);
    while (!f.ended) {
        siginfo_t info;
        int sig = sigwaitinfo(&wanted, &info);
        if (sig < 0)
            continue;           /* EINTR */
        if (sig == yr_front_wake_signal()) {
            drain(&f);
        } else if (sig == SIGCONT) {
            continued(&f);
        } else if (sig == SIGCHLD) {
            drain(&f);
            int raw = 0;
            pid_t reaped = !f.ended ? waitpid(supervisor, &raw, WNOHANG) : 0;
            if (reaped != 0)    /* gone (or never ours: ECHILD) */
                return child_gone(&f, reaped, raw);
        } else {
            pass_on(&f, sig, info.si_code);
        }
        if (f.mirror && !f.ended)
            mirror_stop(&f);
    }
    return f.status < 0 ? die_by(-f.status) : f.status;
}
