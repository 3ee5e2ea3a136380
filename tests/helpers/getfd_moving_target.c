/* Run under `unshare -r`: the caller and each target are root of that user
 * namespace, with no capability left. A target makes itself non-dumpable,
 * holds a file at descriptor 42, and after a random pause (up to 1.5 ms)
 * moves into a new user namespace of its own, while the caller loops
 * pidfd_getfd(target, 42). The kernel refuses every try (the target's
 * memory is in the first namespace, where the caller has no
 * CAP_SYS_PTRACE). Prints "taken=N refused=N" over TRIALS targets. FILE:
 * the file the targets hold. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: getfd_moving_target TRIALS FILE\n");
        return 2;
    }
    int trials = atoi(argv[1]);
    struct __user_cap_header_struct head = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof(none));
    if (syscall(SYS_capset, &head, none) < 0) {
        perror("capset");
        return 2;
    }
    int taken = 0, refused = 0;
    for (int i = 0; i < trials; i++) {
        int go[2];
        if (pipe(go) < 0)
            return 2;
        pid_t target = fork();
        if (target == 0) {
            int held = open(argv[2], O_RDONLY);
            dup2(held, 42);
            prctl(PR_SET_DUMPABLE, 0);
            char c;
            if (read(go[0], &c, 1) != 1)
                _exit(3);
            srand((unsigned)getpid());
            struct timespec pause_for = { 0, rand() % 1500000 };
            nanosleep(&pause_for, NULL);
            if (unshare(CLONE_NEWUSER) < 0)
                _exit(3);
            pause();
            _exit(0);
        }
        usleep(3000);
        int pidfd = (int)syscall(SYS_pidfd_open, target, 0);
        if (write(go[1], "x", 1) != 1)
            return 2;
        for (int k = 0; k < 40 && pidfd >= 0; k++) {
            int fd = (int)syscall(SYS_pidfd_getfd, pidfd, 42, 0);
            if (fd >= 0) {
                taken++;
                close(fd);
                break;
            }
            refused += errno == EPERM || errno == EACCES;
        }
        if (pidfd >= 0)
            close(pidfd);
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
        close(go[0]);
        close(go[1]);
    }
    printf("taken=%d refused=%d\n", taken, refused);
    return 0;
}
