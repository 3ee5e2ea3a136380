/* sigpend_fifo FIFO N: blocked FIFO opens while the user's queued-signal
 * allowance (RLIMIT_SIGPENDING, counted per user) is used up
 * (tests/test_stall.py). It queues SIGRTMIN to itself until EAGAIN, starts
 * N children that open FIFO for reading (nobody writes), kills and reaps
 * them after a second, takes its queued signals back, then prints
 * "queued=K answered=A" (A: children whose open returned by itself) and
 * "ready", and waits 3 s: meanwhile no reader of FIFO is left, natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sigpend_fifo FIFO N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    long queued = 0;
    while (sigqueue(getpid(), SIGRTMIN, (union sigval){ 0 }) == 0)
        queued++;
    pid_t kids[1024];
    for (int i = 0; i < n && i < 1024; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int fd = open(argv[1], O_RDONLY);
            _exit(fd >= 0 ? 0 : 1);
        }
    }
    sleep(1);
    int answered = 0, status;
    for (int i = 0; i < n && i < 1024; i++) {
        if (waitpid(kids[i], &status, WNOHANG) == kids[i]) {
            answered++;
            continue;
        }
        kill(kids[i], SIGKILL);
        waitpid(kids[i], &status, 0);
    }
    struct timespec now = { 0, 0 };
    while (sigtimedwait(&rt, NULL, &now) > 0)
        ;
    printf("queued=%ld answered=%d\nready\n", queued, answered);
    fflush(stdout);
    sleep(3);
    return 0;
}
