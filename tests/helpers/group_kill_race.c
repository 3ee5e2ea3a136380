/* group_kill_race (tests/test_pid_pinning.py): kill(0, SIGALRM) from a
 * program in yama-run's front's process group, which the supervisor sends
 * itself to each member but its own processes, while a member's number is
 * given to a thread of the supervisor:
 *
 *   1. child C exits and is kept a zombie, a member of the group: pid P,
 *      taken just after the pid space wrapped (a low number: /proc lists it
 *      early, so it is judged early in the supervisor's walk of /proc);
 *   2. a vfork loop wraps the pid space again, to GAP pids short of P;
 *   3. thread T1 calls kill(0, SIGALRM) (ignored here); while the supervisor
 *      walks /proc and judges the members, the last forks reach P-1, C is
 *      reaped (P is free, and the kernel's next pid) and thread T3 opens a
 *      FIFO with no writer: the supervisor serves it in a new worker thread,
 *      which takes P;
 *   4. sent by number, the signal meant for C reached that thread, and so
 *      the supervisor's whole process: SIGALRM ended it (yama-run exit 125).
 *
 * The supervisor's walk of /proc takes a time that grows with the number of
 * processes on the machine: PAD sleeping processes (in a group of their own,
 * above the low numbers C takes) make it long enough on a quiet machine too.
 * Each try reaps C at another point of the supervisor's work (a fraction of
 * the last kill(0)'s time). The supervisor must survive every try: the last
 * line says "survived", and the program exits 0.
 * usage: group_kill_race FIFO tries */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GAP 200
#define PAD 2000

static int go1[2], go3[2];
static volatile int kill_done, t3_done;
static volatile double kill_ms;
static const char *fifo;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *t1fn(void *a)
{
    (void)a;
    for (char c; read(go1[0], &c, 1) == 1;) {
        double t = now();
        kill(0, SIGALRM);
        kill_ms = (now() - t) * 1e3;
        __atomic_store_n(&kill_done, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void *t3fn(void *a)
{
    (void)a;
    for (char c; read(go3[0], &c, 1) == 1;) {
        int fd = open(fifo, O_RDONLY);      /* a new worker thread of the supervisor */
        if (fd >= 0)
            close(fd);
        __atomic_store_n(&t3_done, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static pid_t one(void)
{
    pid_t c = vfork();
    if (c == 0)
        _exit(0);
    if (c > 0)
        waitpid(c, NULL, 0);
    return c;
}

static void timed_kill(void)
{
    kill_done = 0;
    if (write(go1[1], "x", 1) != 1)
        _exit(2);
}

static void wait_kill(void)
{
    while (!kill_done)
        usleep(100);
}

/* forks until one gets a pid in [lo, hi), after the pid space wrapped if
 * wrap; 0 when the cursor passed hi first */
static pid_t fork_to(pid_t lo, pid_t hi, int wrap)
{
    pid_t last = 0, got;
    for (long n = 0; n < 200000; n++) {
        got = one();
        if (got < last)
            wrap = 0;
        if (!wrap && got >= lo && got < hi)
            return got;
        if (!wrap && got >= hi)
            return 0;
        last = got;
    }
    return 0;
}

/* PAD processes that sleep until we exit, numbered above 5000 */
static void pad(void)
{
    pid_t next = one();
    if (next < 5000 || next > 30000)
        fork_to(5000, 6000, next > 30000);
    for (int i = 0; i < PAD; i++) {
        pid_t c = fork();
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            setpgid(0, 0);
            pause();
            _exit(0);
        }
        if (c < 0)
            break;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    fifo = argv[1];
    int tries = atoi(argv[2]), ran = 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, SIG_IGN);
    pid_t sup = getppid();
    pthread_t t1, t3;
    if (pipe(go1) < 0 || pipe(go3) < 0 || pthread_create(&t1, NULL, t1fn, NULL) ||
        pthread_create(&t3, NULL, t3fn, NULL))
        return 2;
    pad();
    timed_kill();                           /* the first call pays for what is loaded once */
    wait_kill();
    timed_kill();
    wait_kill();
    double base = kill_ms;
    printf("group_kill_race: pgrp %d, kill(0) %.1f ms\n", getpgrp(), base);
    for (int t = 0; t < tries; t++) {
        pid_t next = one();
        if (next < 1000 || next > 3000)
            fork_to(1000, 3000, next > 3000);   /* C gets a low pid, GAP above the first */
        pid_t c = fork();
        if (c == 0)
            _exit(0);
        siginfo_t si;
        waitid(P_PID, c, &si, WEXITED | WNOWAIT);
        pid_t P = c;
        if (!fork_to(P - GAP, P, 1)) {
            printf("try %d: P=%d missed\n", t, P);
            waitpid(P, NULL, 0);
            continue;
        }
        timed_kill();
        double frac = 0.15 + 0.6 * (t % 8) / 8.0;
        double start = now();
        int ok = fork_to(P - 1, P, 0) == P - 1;
        while (ok && !kill_done && now() - start < base * frac / 1e3)
            ;
        waitpid(P, NULL, 0);                /* P is free, and the next pid */
        t3_done = 0;
        if (ok && write(go3[1], "x", 1) != 1)
            return 2;
        wait_kill();
        while (ok && !t3_done) {            /* T3 let go */
            int w = open(fifo, O_WRONLY | O_NONBLOCK);
            if (w >= 0)
                close(w);
            usleep(1000);
        }
        ran += ok;
        printf("try %d: P=%d %s, kill(0) %.1f ms, reaped at %.0f%%\n", t, P,
               ok ? "reaped in the call" : "missed", kill_ms, 100 * base * frac / kill_ms);
        if (getppid() != sup)
            return 1;                       /* never reached: the supervisor takes us along */
        base = kill_ms;
    }
    printf("survived %d tries (%d raced)\n", tries, ran);
    return 0;
}
