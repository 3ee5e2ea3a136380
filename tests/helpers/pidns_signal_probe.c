/* Signals from inside a pid namespace of the program's own, which the kernel
 * judges by the sender's pid namespace: a pidfd of a process outside it
 * (access_pidfd_pidns: EINVAL), and SIGKILL to the namespace's init (ignored
 * from inside: SIGNAL_UNKILLABLE; forced only from an ancestor namespace).
 *
 *   pidns_signal_probe pidfd    a sibling outside signalled through a pidfd
 *                               opened before, then the init by pidfd_open(1)
 *   pidns_signal_probe kill0    kill(0, SIGKILL) from inside (the group is
 *                               the caller's job: run it in a session of its own)
 *
 * Prints "outside=ERRNO" and "init=ERRNO" (pidfd), "kill0=ERRNO" (when the
 * call returns), then "init-end=alive|KILLED" and "sibling=alive|KILLED". */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(long rc)
{
    return rc == 0 ? "0" : errno == EINVAL ? "EINVAL" : errno == EPERM ? "EPERM"
           : errno == ESRCH ? "ESRCH" : "OTHER";
}

static long pidfd_signal(int fd, int sig)
{
    return syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    int kill0 = !strcmp(argv[1], "kill0");
    pid_t sibling = fork();
    if (sibling == 0) {
        pause();
        _exit(0);
    }
    int sibling_fd = (int)syscall(SYS_pidfd_open, sibling, 0);
    if (unshare(CLONE_NEWPID | (getuid() ? CLONE_NEWUSER : 0)) < 0) {
        printf("setup=%s\n", strerror(errno));
        return 1;
    }
    pid_t init = fork();
    if (init == 0) {                         /* pid 1 of the new namespace */
        pid_t g = fork();
        if (g == 0) {
            if (kill0) {
                long rc = kill(0, SIGKILL);
                printf("kill0=%s\n", ename(rc));
            } else {
                printf("outside=%s\n", ename(pidfd_signal(sibling_fd, SIGKILL)));
                int init_fd = (int)syscall(SYS_pidfd_open, 1, 0);
                printf("init=%s\n", ename(pidfd_signal(init_fd, SIGKILL)));
            }
            _exit(0);
        }
        waitpid(g, NULL, 0);
        usleep(200000);                      /* a SIGKILL sent to it lands by now */
        _exit(0);
    }
    int st;
    waitpid(init, &st, 0);
    printf("init-end=%s\n", WIFSIGNALED(st) ? "KILLED" : "alive");
    printf("sibling=%s\n", waitpid(sibling, &st, WNOHANG) == sibling ? "KILLED" : "alive");
    kill(sibling, SIGKILL);
    waitpid(sibling, NULL, 0);
    return 0;
}
