/* The front: the process the shell waits on (sandbox/lifetime.py says the
 * whole lifetime). It only waits: the supervisor, its child, tells it over a
 * SOCK_SEQPACKET pair what it needs, each message followed by the wake
 * signal (yr_front_wake_signal) except the first:
 *
 *   "H"            the child is the supervisor now (lifetime.Link)
 *   "P" + a pidfd  the program runs: the signals sent to yama-run go to it,
 *                  through the pidfd, so a reused pid is never signalled
 *   "S" + an int   the program's status: the front returns it at once
 *
 * It is C for the installed command: csrc/launcher.c forks before it execs
 * the interpreter and the parent waits here, so no Python process is forked
 * or torn down on the way to the program's status (docs/startup.md). The
 * front that `python3 -m sandbox.cli` forks (lifetime.split) is this code too. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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
    int heard;                  /* any message: the child is the supervisor */
    int status;                 /* the program's, once sent; -1 until then */
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

static void take_pidfd(struct front *f, const int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (i == 0 && f->pidfd < 0)
            f->pidfd = fds[i];
        else
            close(fds[i]);      /* more than was sent: none of them is ours to keep */
    }
    for (int i = 0; i < f->n_pending && f->pidfd >= 0; i++)
        forward(f, f->pending[i]);
    f->n_pending = 0;
}

/* Every message waiting; stops at the status. */
static void drain(struct front *f)
{
    while (f->status < 0) {
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
            if (msg[0] == 'S' && n >= 5)
                memcpy(&f->status, msg + 1, sizeof(int));
        }
    }
}

/* The child exited without a status. If it never became the supervisor
 * (the launcher's child: --help, a usage error, a program not found), its
 * own exit is yama-run's, a signal included; a supervisor gone silent is a
 * setup error. */
static int child_gone(const struct front *f, pid_t reaped, int raw)
{
    if (f->heard || reaped <= 0)
        return EXIT_SETUP;
    if (WIFEXITED(raw))
        return WEXITSTATUS(raw);
    int sig = WTERMSIG(raw);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    return 128 + sig;           /* a signal that does not end a process */
}

/* Wait for the program's status, forwarding signals meanwhile; the
 * caller has blocked them (yr_front_block) before it forked the supervisor. */
int yr_front(int sock, int supervisor)
{
    struct front f = {.sock = sock, .pidfd = -1, .supervisor = supervisor, .status = -1};
    prctl(PR_SET_DUMPABLE, 0);  /* out of the sandbox's reach, as the supervisor is */
    sigset_t wanted = front_signals();
    drain(&f);
    while (f.status < 0) {
        siginfo_t info;
        int sig = sigwaitinfo(&wanted, &info);
        if (sig < 0)
            continue;           /* EINTR: a stop and continue (job control) */
        if (sig == yr_front_wake_signal()) {
            drain(&f);
        } else if (sig == SIGCHLD) {
            drain(&f);
            int raw = 0;
            pid_t reaped = f.status < 0 ? waitpid(supervisor, &raw, WNOHANG) : 0;
            if (reaped != 0)    /* gone (or never ours: ECHILD) */
                return child_gone(&f, reaped, raw);
        } else if (info.si_code != SI_FROM_KERNEL) {
            forward(&f, sig);   /* from the terminal, the program has it already */
        }
    }
    return f.status;
}
