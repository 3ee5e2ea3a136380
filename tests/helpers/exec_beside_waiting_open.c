/* exec_beside_waiting_open DIR TRIES (tests/test_backend_ptrace.py): each
 * try, the leader of a new process opens a fresh FIFO DIR/fifoN for reading
 * (no writer: it waits, under yama-run in a worker) while another thread
 * execs this program. The exec kills the waiting leader, so natively the
 * FIFO has no reader from then on: the new image's open for writing with
 * O_NONBLOCK, 200 ms later (past a worker's 100 ms tick), fails with ENXIO.
 * Prints "tries=T leaks=L other=O"; exit 0 if every try got ENXIO. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char self[] = "/proc/self/exe", fifo[256];
static volatile int go;

static void spin_us(int us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static void *execer(void *unused)
{
    while (!go)
        ;
    char *argv[] = { self, "new", fifo, NULL };
    execv(self, argv);
    _exit(3);
    return unused;
}

/* The new image: 0 if the FIFO has no reader (ENXIO), 1 if it has one. */
static int probe(const char *path)
{
    usleep(200000);
    int fd = open(path, O_WRONLY | O_NONBLOCK);
    if (fd >= 0)
        return 1;
    return errno == ENXIO ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "new"))
        return probe(argv[2]);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int tries = argc > 2 ? atoi(argv[2]) : 20, leaks = 0, other = 0;
    srand(getpid());
    for (int t = 0; t < tries; t++) {
        snprintf(fifo, sizeof(fifo), "%s/fifo%d", dir, t);
        unlink(fifo);
        mkfifo(fifo, 0666);
        int delay_us = rand() % 800;
        pid_t p = fork();
        if (p == 0) {
            pthread_t th;
            pthread_create(&th, NULL, execer, NULL);
            go = 1;
            spin_us(delay_us);
            open(fifo, O_RDONLY);
            _exit(4);
        }
        int st;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
            leaks++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            other++;
        unlink(fifo);
    }
    printf("tries=%d leaks=%d other=%d\n", tries, leaks, other);
    return leaks || other;
}
