/* The supervisor's side of the program's lifetime (sandbox/lifetime.py): the
 * main program's exit waited for, and its status given to the front
 * (csrc/front.c), each in one call.
 *
 * Why C: while the chain loads (sandbox/launch.py), the loader thread holds
 * the GIL for up to milliseconds at a time (imports). Written in Python, the
 * reaper took the GIL back after every system call of this path, about a
 * dozen, and the front heard the status a millisecond or more after the
 * program exited. Here the reaper takes it twice: after the wait, and
 * after the report, once the front already has the status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "yama.h"

/* What the spawn's status pipe holds once the main program is gone: nothing
 * if its exec succeeded, else a yr_spawn_failure (csrc/spawn.c). Its only
 * writer was the child, whose copy closed at the exec or at its exit, so
 * this never waits. */
static int read_exec_outcome(int status_fd, void *failure, size_t size)
{
    if (status_fd < 0)
        return 0;
    ssize_t n;
    do {
        n = read(status_fd, failure, size);
    } while (n < 0 && errno == EINTR);
    close(status_fd);
    return n < 0 ? 0 : (int)n;
}

/* Reap until the main program exits: its wait status in *raw, and the
 * number of bytes of its exec's failure read from status_fd into failure
 * (0: it ran); -ECHILD when there is no child left to wait for. A child
 * stopped by PTRACE_TRACEME is let go (we trace no one); the front's death
 * (front_gone, the parent-death signal) kills the program. Both signals are
 * blocked in every thread of the supervisor. */
int yr_reap_main(int main_pid, int front_gone, int status_fd, int *raw,
                 void *failure, size_t size)
{
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGCHLD);
    sigaddset(&wanted, front_gone);
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            return -errno;
        if (pid > 0 && WIFSTOPPED(status)) {
            yr_ptrace_release(pid, WSTOPSIG(status));
        } else if (pid == main_pid) {
            *raw = status;
            return read_exec_outcome(status_fd, failure, size);
        } else if (pid == 0) {
            siginfo_t info;
            if (sigwaitinfo(&wanted, &info) == front_gone)
                kill(main_pid, SIGKILL);    /* yama-run was killed: so is the program */
        }
    }
}

/* Out of the caller's session, its terminal and its pipes: a process left
 * behind by the program must not keep `out=$(yama-run ...)` waiting.
 * inherited: the caller's descriptors at start-up, each closed only while
 * it is still the caller's object (device and inode). */
static void detach(const int *fds, const uint64_t *devs, const uint64_t *inos, int n)
{
    setsid();                   /* EPERM: a group leader already: cannot, and need not */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        for (int fd = 0; fd <= 2; fd++)
            dup2(null, fd);
        close(null);
    }
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (fds[i] > 2 && fstat(fds[i], &st) == 0 && st.st_dev == devs[i] && st.st_ino == inos[i])
            close(fds[i]);
    }
}

/* The status to the front, detached first if asked; the front exits
 * normally from here on, so its death no longer concerns us. */
int yr_link_report(int sock, int front, int status, int detach_first,
                   const int *fds, const uint64_t *devs, const uint64_t *inos, int n)
{
    prctl(PR_SET_PDEATHSIG, 0);
    if (detach_first)
        detach(fds, devs, inos, n);
    char msg[1 + sizeof status] = {'S'};
    memcpy(msg + 1, &status, sizeof status);
    if (send(sock, msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg)
        return -errno;          /* the front is gone: nobody to tell */
    return kill(front, yr_front_wake_signal()) < 0 ? -errno : 0;
}
