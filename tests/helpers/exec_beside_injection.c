/* exec_beside_injection TRIES (tests/test_backend_ptrace.py): each try forks
 * a process whose leader opens /etc/hostname in a loop (under the ptrace
 * backend each open's descriptor is passed in by injected calls) while
 * another thread execs this program after 0-3 ms; the new image exits 0.
 * The exec kills the leader wherever it is, an injection included.
 * Prints "tries=T bad=B" (and each bad try's wait status); exit 0 if every
 * try exited 0, as natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char self[] = "/proc/self/exe";
static int delay_us;

static void *execer(void *unused)
{
    usleep(delay_us);
    char *argv[] = { self, "new", NULL };
    execv(self, argv);
    _exit(3);
    return unused;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "new"))
        return 0;
    int tries = argc > 1 ? atoi(argv[1]) : 300, bad = 0;
    srand(getpid());
    for (int t = 0; t < tries; t++) {
        delay_us = rand() % 3000;
        pid_t p = fork();
        if (p == 0) {
            pthread_t th;
            pthread_create(&th, NULL, execer, NULL);
            for (;;) {
                int fd = open("/etc/hostname", O_RDONLY);
                if (fd >= 0)
                    close(fd);
            }
        }
        int st;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            printf("try %d: status %#x\n", t, st);
        }
    }
    printf("tries=%d bad=%d\n", tries, bad);
    return bad != 0;
}
