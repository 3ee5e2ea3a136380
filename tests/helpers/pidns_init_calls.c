/* pidns_init_calls (tests/test_pidns_parity.py): run as the init of a pid
 * namespace of the program's own (unshare -pf), the calls that reach every
 * process its namespace shows, which the kernel limits to that namespace:
 *
 *   kill-all    fork two sleepers, kill(-1, SIGTERM) as an init's shutdown
 *               does: "kill -1: 0" and how each sleeper ended;
 *   prio-user   setpriority(PRIO_USER, 0, 10) and ioprio_set(IOPRIO_WHO_USER,
 *               0, best-effort 7): "0" or the errno name of each. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *result(long rc)
{
    return rc == 0 ? "0" : strerrorname_np(errno);
}

static int kill_all(void)
{
    pid_t sleepers[2];
    for (int i = 0; i < 2; i++) {
        if ((sleepers[i] = fork()) == 0) {
            alarm(5);                   /* not reached: its own SIGALRM */
            pause();
            _exit(0);
        }
    }
    usleep(100000);
    printf("kill -1: %s\n", result(kill(-1, SIGTERM)));
    for (int i = 0; i < 2; i++) {
        int status;
        if (waitpid(sleepers[i], &status, 0) > 0 && WIFSIGNALED(status))
            printf("sleeper %d: signal %s\n", i, sigabbrev_np(WTERMSIG(status)));
    }
    return 0;
}

static int prio_user(void)
{
    printf("setpriority: %s\n", result(setpriority(PRIO_USER, 0, 10)));
    printf("ioprio_set: %s\n", result(syscall(SYS_ioprio_set, 3 /* IOPRIO_WHO_USER */, 0,
                                              (2 << 13) | 7)));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "kill-all") == 0)
        return kill_all();
    if (argc == 2 && strcmp(argv[1], "prio-user") == 0)
        return prio_user();
    fprintf(stderr, "usage: pidns_init_calls kill-all|prio-user\n");
    return 2;
}
