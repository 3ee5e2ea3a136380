/* sigfill SECONDS: uses up the user's queued-signal allowance
 * (RLIMIT_SIGPENDING, counted per user): SIGRTMIN blocked, queued to itself
 * until EAGAIN; prints "queued=N" and holds them SECONDS
 * (tests/test_stall.py). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sigfill SECONDS\n");
        return 2;
    }
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    long n = 0;
    while (sigqueue(getpid(), SIGRTMIN, (union sigval){ 0 }) == 0)
        n++;
    printf("queued=%ld\n", n);
    fflush(stdout);
    sleep((unsigned)atoi(argv[1]));
    return 0;
}
