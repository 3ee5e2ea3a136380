/* Signals that arrive while a routed open is served, counted: timers (no
 * routed call sends them) aimed at this thread, twelve standard signals and
 * ten queued real-time ones, expiring 20-410 us after each open starts; the
 * open follows a link of the caller's own (under symlinks.protected, walked
 * and performed by the supervisor, its descriptor passed in). Every one must
 * be delivered, with its own siginfo (SI_TIMER). Prints
 * "missing=N resent=N failed=N" over ITERATIONS opens of PATH. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const int standard[] = { SIGUSR1, SIGUSR2, SIGHUP, SIGINT, SIGTERM, SIGALRM, SIGWINCH,
                                SIGURG, SIGQUIT, SIGXCPU, SIGVTALRM, SIGPROF };
#define STANDARD (int)(sizeof(standard) / sizeof(standard[0]))
#define QUEUED 10
#define TIMERS (STANDARD + QUEUED)

static volatile sig_atomic_t delivered, not_from_timer;

static void count(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    delivered++;
    if (si->si_code != SI_TIMER)
        not_from_timer++;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: signals_during_open ITERATIONS PATH\n");
        return 2;
    }
    int iterations = atoi(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = count;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    timer_t timers[TIMERS];
    for (int i = 0; i < TIMERS; i++) {
        int sig = i < STANDARD ? standard[i] : SIGRTMIN;
        sigaction(sig, &sa, NULL);
        struct sigevent to_me;
        memset(&to_me, 0, sizeof(to_me));
        to_me.sigev_notify = SIGEV_THREAD_ID;
        to_me._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        to_me.sigev_signo = sig;
        if (timer_create(CLOCK_MONOTONIC, &to_me, &timers[i]) < 0) {
            perror("timer_create");
            return 2;
        }
    }
    int missing = 0, failed = 0;
    for (int it = 0; it < iterations; it++) {
        delivered = 0;
        struct itimerspec once = { { 0, 0 }, { 0, 20000 + (it % 40) * 10000 } };
        for (int i = 0; i < TIMERS; i++)
            timer_settime(timers[i], 0, &once, NULL);
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0)
            failed++;
        else
            close(fd);
        struct timespec pause = { 0, 2000000 };
        for (int k = 0; k < 100 && delivered < TIMERS; k++)
            nanosleep(&pause, NULL);
        missing += TIMERS - delivered;
    }
    printf("missing=%d resent=%d failed=%d\n", missing, (int)not_from_timer, failed);
    return 0;
}
