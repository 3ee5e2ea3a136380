/* group_signal_load (tests/test_group_signals.py): group signals in yama-run's
 * front's process group G with many members, which the supervisor sends to
 * each member but its own through pidfds (csrc/harden.c, yr_pin_group). Run
 * where the front leads G (yama-run started in a session of its own) and the
 * supervisor has few descriptors (a low RLIMIT_NOFILE). M members are idle
 * children of this program in G, waiting on a pipe.
 *
 *   group_signal_load front M SECS   the program leaves G for a group of its
 *                                    own; a process loops kill(-G, 0) and two
 *                                    loop kill(-G, SIGUSR2) for SECS (the
 *                                    members ignore it). The front passes on
 *                                    to the program a signal it gets:
 *                                    "front-reached=N sent=S refused=R"
 *   group_signal_load count M        the members catch SIGURG and count it;
 *                                    one kill(0, SIGURG):
 *                                    "kill=OK|ENAME got=N of M"
 *   group_signal_load bystander M K SECS [CALL]
 *                                    K processes loop kill(0, 0) for SECS;
 *                                    another (no member: a group of its own)
 *                                    stats and opens /etc/hostname in rounds:
 *                                    "rounds=N failed=F worst_ms=W". CALL
 *                                    in place of kill(0, 0), the program and
 *                                    the members in a group of their own
 *                                    (so the call is allowed), each a walk
 *                                    of /proc for the group: setown
 *                                    (F_SETOWN of a pipe to -our group),
 *                                    pidfdpg (pidfd_send_signal of our own
 *                                    pidfd, signal 0, to its group), prio
 *                                    (setpriority(PRIO_PGRP, 0, 0)) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int *shared;          /* [0]: members ready, [1]: SIGURG caught */
static const char *call = "kill";   /* what a looper calls (bystander's CALL) */
static int own_pipe[2], own_pidfd;  /* a looper's, for setown and pidfdpg */
static volatile sig_atomic_t reached;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void caught(int sig)
{
    (void)sig;
    atomic_fetch_add(&shared[1], 1);
}

static void front_passed(int sig)
{
    (void)sig;
    reached++;
}

/* m members in our group, the pipe's write end returned (closed: they exit). */
static int members(int m, int catch_urg)
{
    int pfd[2];
    if (pipe(pfd) < 0) {
        perror("pipe");
        exit(2);
    }
    for (int i = 0; i < m; i++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            exit(2);
        }
        if (p == 0) {
            signal(SIGURG, catch_urg ? caught : SIG_IGN);
            signal(SIGUSR2, SIG_IGN);
            close(pfd[1]);
            atomic_fetch_add(&shared[0], 1);
            char c;
            while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
    }
    close(pfd[0]);
    while (atomic_load(&shared[0]) < m)
        usleep(1000);
    return pfd[1];
}

/* One call of a looper's: kill(target, sig), or CALL on our group. */
static long one_call(pid_t target, int sig)
{
    if (!strcmp(call, "setown"))
        return fcntl(own_pipe[0], F_SETOWN, -getpgrp());
    if (!strcmp(call, "pidfdpg"))
        return syscall(SYS_pidfd_send_signal, own_pidfd, 0, NULL, 1 << 2);
    if (!strcmp(call, "prio"))
        return setpriority(PRIO_PGRP, 0, 0);
    return kill(target, sig);
}

/* A child that loops one_call until the deadline; its refusals (any errno)
 * are its exit status's count, capped. */
static pid_t looper(pid_t target, int sig, double until)
{
    pid_t p = fork();
    if (p == 0) {
        long refused = 0;
        own_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (pipe(own_pipe) < 0 || own_pidfd < 0)
            _exit(250);
        while (now() < until) {
            if (one_call(target, sig) < 0)
                refused++;
            if (sig)
                usleep(2000);
        }
        _exit(refused > 250 ? 250 : (int)refused);
    }
    return p;
}

static int reap_counted(pid_t p)
{
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

static void front(int m, double secs)
{
    pid_t g = getpgrp();
    signal(SIGUSR2, front_passed);
    int done = members(m, 0);
    if (setpgid(0, 0) < 0) {
        perror("setpgid");
        exit(2);
    }
    double until = now() + secs;
    pid_t pinner = looper(-g, 0, until);
    pid_t senders[2] = {looper(-g, SIGUSR2, until), looper(-g, SIGUSR2, until)};
    reap_counted(pinner);
    int refused = reap_counted(senders[0]) + reap_counted(senders[1]);
    usleep(200000);                     /* a signal passed on late */
    printf("front-reached=%d refused=%d\n", (int)reached, refused);
    close(done);
}

static void count(int m)
{
    signal(SIGURG, SIG_IGN);
    int done = members(m, 1);
    int rc = kill(0, SIGURG), e = errno;
    for (int i = 0; i < 200 && atomic_load(&shared[1]) < m; i++)
        usleep(10000);
    printf("kill=%s got=%d of %d\n", rc == 0 ? "OK" : strerrorname_np(e),
           atomic_load(&shared[1]), m);
    close(done);
}

static void bystander(int m, int k, double secs)
{
    if (strcmp(call, "kill") && setpgid(0, 0) < 0) {
        perror("setpgid");
        exit(2);
    }
    int done = members(m, 0);
    pid_t by = fork();
    if (by == 0) {
        setpgid(0, 0);
        long rounds = 0, failed = 0;
        double worst = 0, start = now(), until = start + secs + 0.5;
        while (now() < until) {
            double t = now();
            struct stat st;
            int fd = open("/etc/hostname", O_RDONLY);
            if (stat("/etc/hostname", &st) < 0 || fd < 0)
                failed++;
            if (fd >= 0)
                close(fd);
            if (now() - t > worst)
                worst = now() - t;
            rounds++;
            usleep(1000);
        }
        printf("rounds=%ld failed=%ld worst_ms=%.0f\n", rounds, failed, worst * 1000);
        fflush(stdout);
        _exit(0);
    }
    usleep(500000);                     /* the bystander's first calls made */
    pid_t killers[64];
    double until = now() + secs;
    for (int i = 0; i < k && i < 64; i++)
        killers[i] = looper(0, 0, until);
    for (int i = 0; i < k && i < 64; i++)
        reap_counted(killers[i]);
    waitpid(by, NULL, 0);
    close(done);
}

int main(int argc, char **argv)
{
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (argc >= 4 && !strcmp(argv[1], "front"))
        front(atoi(argv[2]), atof(argv[3]));
    else if (argc >= 3 && !strcmp(argv[1], "count"))
        count(atoi(argv[2]));
    else if (argc >= 5 && !strcmp(argv[1], "bystander")) {
        call = argc >= 6 ? argv[5] : call;
        bystander(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
    }
    else
        return 2;
    fflush(stdout);
    while (wait(NULL) > 0)
        ;
    return 0;
}
