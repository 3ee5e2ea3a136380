/* starved_opens SPINNERS OPENS [BUSY_MS] (tests/test_backend_ptrace.py):
 * the main thread, at SCHED_IDLE, opens /etc/hostname OPENS times while
 * SPINNERS threads at SCHED_OTHER spin: it gets a CPU only now and then, as
 * on a loaded machine. Before each open it computes for BUSY_MS of its own
 * CPU time (0 by default): a thread that has used its share is made to wait
 * longest for the CPU again. Natively slow, but every open succeeds. Prints
 * "opened=N" and exits 0. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile int done;

static void *spin(void *unused)
{
    while (!done)
        ;
    return unused;
}

/* Spin until the thread has had ms more of CPU time. */
static void compute(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    double until = (double)t.tv_sec + (double)t.tv_nsec / 1e9 + ms / 1e3, now;
    do {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        now = (double)t.tv_sec + (double)t.tv_nsec / 1e9;
    } while (now < until);
}

int main(int argc, char **argv)
{
    int spinners = argc > 1 ? atoi(argv[1]) : 8, opens = argc > 2 ? atoi(argv[2]) : 100;
    int busy_ms = argc > 3 ? atoi(argv[3]) : 0;
    struct sched_param idle = { 0 }, other = { 0 };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
    pthread_attr_setschedparam(&attr, &other);
    pthread_t t[256];
    for (int i = 0; i < spinners && i < 256; i++)
        pthread_create(&t[i], &attr, spin, NULL);
    if (sched_setscheduler(0, SCHED_IDLE, &idle) < 0) {
        perror("SCHED_IDLE");
        return 2;
    }
    int opened = 0;
    for (int i = 0; i < opens; i++) {
        compute(busy_ms);
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd >= 0) {
            opened++;
            close(fd);
        }
    }
    done = 1;
    for (int i = 0; i < spinners && i < 256; i++)
        pthread_join(t[i], NULL);
    printf("opened=%d\n", opened);
    return 0;
}
