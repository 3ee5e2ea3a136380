/* group_signal_probe: group signals that could reach yama-run's front
 * (tests/test_escape_authority.py). Each mode prints one "NAME=RESULT" line
 * and exits 0 if it is still alive to do so.
 *
 *   group_signal_probe dead-leader   (the second stage of a job-control
 *                                    pipeline, its group's leader the first)
 *                                    a pidfd of its group's leader; once the
 *                                    leader has exited, leaves the group and
 *                                    sends SIGKILL to the group the pidfd
 *                                    names (PIDFD_SIGNAL_PROCESS_GROUP):
 *                                    "dead-leader=OK|ENAME"
 *   group_signal_probe kill0-race N  leaves its parent's group, then N
 *                                    children, each for 50 ms: one thread
 *                                    moves it between a group of its own and
 *                                    that group, another calls
 *                                    kill(0, SIGKILL): "kill0-race=survived"
 *   group_signal_probe self-group    (not a group leader) SIGCONT to the
 *                                    group numbered by its own pid
 *                                    (PIDFD_SELF_THREAD_GROUP with
 *                                    PIDFD_SIGNAL_PROCESS_GROUP):
 *                                    "self-group=OK|ENAME"
 *   group_signal_probe tty-excl      TIOCEXCL on its terminal (fd 0), drops
 *                                    to uid 1001, opens /dev/tty:
 *                                    "tty-excl=OK|ENAME" */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PIDFD_SIGNAL_PROCESS_GROUP (1 << 2)
#define PIDFD_SELF_THREAD_GROUP (-10001)

static const char *result(long rc)
{
    if (rc >= 0)
        return "OK";
    switch (errno) {
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    default: return strerror(errno);
    }
}

static int dead_leader(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpgrp(), 0);
    if (fd < 0)
        return 1;
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 10000) != 1)                 /* the leader exits */
        return 1;
    if (setpgid(0, 0) < 0)                       /* it leaves the group itself */
        return 1;
    long rc = syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, PIDFD_SIGNAL_PROCESS_GROUP);
    printf("dead-leader=%s\n", result(rc));
    return 0;
}

static pid_t their_group;

static void *flip(void *unused)
{
    (void)unused;
    for (;;) {
        setpgid(0, 0);
        setpgid(0, their_group);
    }
    return NULL;
}

static int kill0_race(int n)
{
    their_group = getpgrp();
    if (setpgid(0, 0) < 0)                       /* the probe itself survives */
        return 1;
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c == 0) {
            pthread_t t;
            setpgid(0, 0);                       /* never the probe's group */
            pthread_create(&t, NULL, flip, NULL);
            struct timespec end, now;
            clock_gettime(CLOCK_MONOTONIC, &end);
            end.tv_nsec += 50000000L;
            for (;;) {
                kill(0, SIGKILL);
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > end.tv_sec + (end.tv_nsec >= 1000000000L) ||
                    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
                    _exit(0);
            }
        }
        waitpid(c, NULL, 0);
    }
    printf("kill0-race=survived\n");
    return 0;
}

static int self_group(void)
{
    if (getpgrp() == getpid()) {
        pid_t c = fork();                        /* a child leads no group */
        if (c != 0) {
            waitpid(c, NULL, 0);
            return 0;
        }
    }
    long rc = syscall(SYS_pidfd_send_signal, PIDFD_SELF_THREAD_GROUP, SIGCONT, NULL,
                      PIDFD_SIGNAL_PROCESS_GROUP);
    printf("self-group=%s\n", result(rc));
    fflush(stdout);
    return 0;
}

static int tty_excl(void)
{
    if (ioctl(0, TIOCEXCL) < 0)
        return 1;
    if (setgroups(0, NULL) < 0 || setresgid(1001, 1001, 1001) < 0 ||
        setresuid(1001, 1001, 1001) < 0)
        return 1;
    int fd = open("/dev/tty", O_RDWR);
    printf("tty-excl=%s\n", result(fd));
    ioctl(0, TIOCNXCL);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "dead-leader") == 0)
        return dead_leader();
    if (argc == 3 && strcmp(argv[1], "kill0-race") == 0)
        return kill0_race(atoi(argv[2]));
    if (argc == 2 && strcmp(argv[1], "self-group") == 0)
        return self_group();
    if (argc == 2 && strcmp(argv[1], "tty-excl") == 0)
        return tty_excl();
    fprintf(stderr, "usage: group_signal_probe dead-leader|kill0-race N|self-group|tty-excl\n");
    return 2;
}
