/* A child, dumpable at first, makes itself non-dumpable and then enters a
 * user namespace of its own after a random pause, while the parent asks its
 * pidfd for its user namespace (PIDFD_GET_USER_NAMESPACE) again and again.
 * A descriptor of the NEW namespace was taken after the unshare, so after
 * the child became non-dumpable, when the kernel refuses the caller (no
 * CAP_SYS_PTRACE over the child's memory's namespace). Prints "new=N"
 * (such descriptors) over TRIALS children. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GET_USER_NAMESPACE _IO(0xFF, 9)    /* PIDFD_GET_USER_NAMESPACE */

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ns_of_a_changing_target TRIALS\n");
        return 2;
    }
    int trials = atoi(argv[1]), taken_new = 0;
    struct stat ours;
    if (stat("/proc/self/ns/user", &ours) < 0)
        return 2;
    volatile int *moved = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                               -1, 0);
    for (int i = 0; i < trials; i++) {
        int go[2];
        if (pipe(go) < 0)
            return 2;
        *moved = 0;
        pid_t child = fork();
        if (child == 0) {
            char c;
            if (read(go[0], &c, 1) != 1)
                _exit(3);
            srand((unsigned)getpid());
            struct timespec pause_for = { 0, (rand() % 301) * 1000L };
            nanosleep(&pause_for, NULL);
            prctl(PR_SET_DUMPABLE, 0);
            if (unshare(CLONE_NEWUSER) < 0)
                _exit(3);
            *moved = 1;
            pause();
            _exit(0);
        }
        int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        usleep(2000);
        if (write(go[1], "x", 1) != 1)
            return 2;
        for (int k = 0; k < 200 && pidfd >= 0; k++) {
            int fd = ioctl(pidfd, GET_USER_NAMESPACE, 0);
            if (fd >= 0) {
                struct stat st;
                int is_new = fstat(fd, &st) == 0 && st.st_ino != ours.st_ino;
                close(fd);
                if (is_new) {
                    taken_new++;
                    break;
                }
            } else if ((errno == EACCES || errno == EPERM) && *moved) {
                break;
            }
        }
        if (pidfd >= 0)
            close(pidfd);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        close(go[0]);
        close(go[1]);
    }
    printf("new=%d\n", taken_new);
    return 0;
}
