/* A chain of N processes, each the child of the one before; the deepest
 * prints "DEEPEST <pid>" and waits. Each dies with its parent
 * (PR_SET_PDEATHSIG), so killing the first ends the chain. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 1; i < n; i++) {
        pid_t parent = getpid();
        pid_t child = fork();
        if (child < 0)
            return 1;
        if (child > 0) {
            for (;;)
                pause();
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            return 1;                            /* the parent died before the prctl */
    }
    printf("DEEPEST %d\n", (int)getpid());
    fflush(stdout);
    for (;;)
        pause();
}
