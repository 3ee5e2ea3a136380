/* sigcont_session (tests/test_pid_pinning.py): SIGCONT's exemption, that any
 * process may continue one of its own session (check_kill_permission). T is
 * a stopped child of root's; C, uid 1001 (so the uid check fails), sends it
 * SIGCONT; prints what C's call answered and whether T was continued:
 *
 *   pid     C in T's session (one made here) sends kill(T)
 *   tgkill  the same by tgkill(T, T)
 *   pidfd   the same by pidfd_send_signal(pidfd of T)
 *   group   T and C in our group: C sends kill(0)
 *   pgrp    T and C in a new group of our session: C sends kill(0)
 *   escape  C in a session of its own sends kill(T): EPERM, not continued
 *
 * "MODE: ERRNO continued=yes|no" (ERRNO "ok" for 0). Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t stopped_child(void)
{
    pid_t t = fork();
    if (t == 0) {
        for (;;) {
            raise(SIGSTOP);
            pause();
        }
    }
    int st;
    waitpid(t, &st, WUNTRACED);
    return t;
}

static int continued(pid_t t)
{
    int st;
    for (int i = 0; i < 50; i++) {
        if (waitpid(t, &st, WCONTINUED | WNOHANG) == t && WIFCONTINUED(st))
            return 1;
        usleep(10000);
    }
    return 0;
}

static long send_cont(const char *mode, pid_t t)
{
    if (!strcmp(mode, "tgkill"))
        return syscall(SYS_tgkill, t, t, SIGCONT);
    if (!strcmp(mode, "pidfd")) {
        int fd = (int)syscall(SYS_pidfd_open, t, 0);
        return fd < 0 ? -1 : syscall(SYS_pidfd_send_signal, fd, SIGCONT, NULL, 0);
    }
    if (!strcmp(mode, "group") || !strcmp(mode, "pgrp"))
        return kill(0, SIGCONT);
    return kill(t, SIGCONT);
}

/* C: uid 1001 (a session of its own for escape); the errno of its call. */
static int by_another_uid(const char *mode, pid_t t)
{
    int p[2];
    if (pipe(p) < 0)
        exit(2);
    pid_t c = fork();
    if (c == 0) {
        if (!strcmp(mode, "escape") && setsid() < 0)
            _exit(2);
        if (setresgid(1001, 1001, 1001) || setresuid(1001, 1001, 1001))
            _exit(2);
        int e = send_cont(mode, t) < 0 ? errno : 0;
        if (write(p[1], &e, sizeof(e)) != sizeof(e))
            _exit(2);
        _exit(0);
    }
    int e = -1;
    if (read(p[0], &e, sizeof(e)) != sizeof(e))
        e = -1;
    waitpid(c, NULL, 0);
    return e;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *mode = argv[1];
    pid_t r = fork();
    if (r == 0) {
        if (!strcmp(mode, "pgrp") ? setpgid(0, 0) < 0
            : strcmp(mode, "group") && strcmp(mode, "escape") && setsid() < 0)
            _exit(2);
        pid_t t = stopped_child();
        int e = by_another_uid(mode, t);
        printf("%s: %s continued=%s\n", mode, e == 0 ? "ok" : e > 0 ? strerrorname_np(e) : "?",
               continued(t) ? "yes" : "no");
        fflush(stdout);
        kill(t, SIGKILL);
        waitpid(t, NULL, 0);
        _exit(0);
    }
    int st;
    waitpid(r, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}
