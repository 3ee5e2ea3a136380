/* stall_probe: a bystander that measures how long the supervisor keeps it
 * waiting, and attackers that try to make it wait (issue 13 items 3 and 4).
 *
 *   stall_probe bystander STOPFILE
 *       until STOPFILE exists (at most 100 s), make routed calls
 *       (prctl(PR_SET_PTRACER, 0): answered by the supervisor's Python) back
 *       to back; print "WORST_US n" (the longest single call) and "CALLS n".
 *   stall_probe threads N SECONDS
 *       (meant to run as pid 1 of a pid namespace of its own) start N idle
 *       threads, print "THREADS n", then for SECONDS alternate ptrace attach
 *       of one of its own threads and PR_SET_PTRACER naming another; print
 *       "CALLS n".
 *   stall_probe declare N
 *       N children each declare PR_SET_PTRACER naming this process and stay
 *       alive; print "DECLARED ok ENOMEM other"; the children are then
 *       released and reaped, and a last declaration from this process tells
 *       whether the supervisor still answers: "AFTER 0|errno".
 *   stall_probe redeclare N
 *       N declarations in a row from this one process (each replaces the
 *       last); print "REDECLARED ok other".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PR_SET_PTRACER_ 0x59616d61

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *errname(int e)
{
    const char *name = strerrorname_np(e);
    return name ? name : "E?";
}

static int bystander(const char *stopfile)
{
    double end = now() + 100, worst = 0;
    long calls = 0;
    while (now() < end && (calls % 64 || access(stopfile, F_OK) != 0)) {
        double t0 = now();
        prctl(PR_SET_PTRACER_, 0, 0, 0, 0);
        double took = now() - t0;
        if (took > worst)
            worst = took;
        calls++;
    }
    printf("WORST_US %ld\nCALLS %ld\n", (long)(worst * 1e6), calls);
    return 0;
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static pid_t tids[4];
static void *report(void *arg)
{
    tids[(long)arg] = (pid_t)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static int threads(int n, double seconds)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16384);
    pthread_t t;
    for (long k = 0; k < 2; k++)
        pthread_create(&t, &attr, report, (void *)k);
    int made = 2;
    for (; made < n; made++)
        if (pthread_create(&t, &attr, idle, NULL) != 0)
            break;
    while (!tids[0] || !tids[1])
        usleep(1000);
    printf("THREADS %d\n", made);
    fflush(stdout);
    double end = now() + seconds;
    long calls = 0;
    while (now() < end) {
        ptrace(PTRACE_ATTACH, tids[0], 0, 0);          /* its own: EPERM from the kernel */
        prctl(PR_SET_PTRACER_, (unsigned long)tids[1], 0, 0, 0);
        calls += 2;
    }
    printf("CALLS %ld\n", calls);
    fflush(stdout);
    _exit(0);
}

static int declare(int n)
{
    int go[2];
    if (pipe(go) < 0)
        return 2;
    int ok = 0, nomem = 0, other = 0;
    pid_t *kids = calloc((size_t)n, sizeof(*kids));
    int *res = calloc((size_t)n, sizeof(*res));
    int report[2];
    if (pipe(report) < 0)
        return 2;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            int rc = prctl(PR_SET_PTRACER_, (unsigned long)getppid(), 0, 0, 0) == 0 ? 0 : errno;
            if (write(report[1], &rc, sizeof(rc)) != sizeof(rc))
                _exit(2);
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        kids[i] = pid;
        if (pid < 0)
            other++;
    }
    for (int i = 0; i < n; i++) {
        if (kids[i] <= 0)
            continue;
        int rc;
        if (read(report[0], &rc, sizeof(rc)) != sizeof(rc))
            rc = -1;
        if (rc == 0)
            ok++;
        else if (rc == ENOMEM)
            nomem++;
        else
            other++;
    }
    printf("DECLARED %d %d %d\n", ok, nomem, other);
    fflush(stdout);
    close(go[1]);                      /* every child reads EOF and exits */
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
    (void)res;
    int rc = prctl(PR_SET_PTRACER_, (unsigned long)getppid(), 0, 0, 0);
    printf("AFTER %s\n", rc == 0 ? "0" : errname(errno));
    return 0;
}

static int redeclare(int n)
{
    int ok = 0, other = 0;
    for (int i = 0; i < n; i++) {
        if (prctl(PR_SET_PTRACER_, (unsigned long)getppid(), 0, 0, 0) == 0)
            ok++;
        else
            other++;
    }
    printf("REDECLARED %d %d\n", ok, other);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(120);
    if (argc == 3 && !strcmp(argv[1], "bystander"))
        return bystander(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "threads"))
        return threads(atoi(argv[2]), atof(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "declare"))
        return declare(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "redeclare"))
        return redeclare(atoi(argv[2]));
    fprintf(stderr, "usage: stall_probe bystander STOPFILE | threads N S | declare N | "
            "redeclare N\n");
    return 2;
}
