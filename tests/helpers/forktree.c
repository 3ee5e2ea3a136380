/* A tree of N processes (binary fan-out); each makes hooked calls and checks
 * their answers. Prints "TREE <processes> <failures>" from the root. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define PR_SET_PTRACER 0x59616d61

static int check_hooked_calls(void)
{
    int failures = 0;
    if (prctl(PR_SET_PTRACER, getppid(), 0, 0, 0) != 0)
        failures++;
    char src[8] = "abcdefg", dst[8] = { 0 };
    struct iovec l = { dst, sizeof dst }, r = { src, sizeof src };
    if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != sizeof src)
        failures++;
    return failures;
}

/* Builds the subtree rooted at index i of n; returns processes and failures. */
static void subtree(int i, int n, int *procs, int *fails)
{
    *procs = 1;
    *fails = check_hooked_calls();
    int pipes[2][2];
    pid_t kids[2];
    int nkids = 0;
    for (int c = 0; c < 2; c++) {
        int child = 2 * i + 1 + c;
        if (child >= n)
            break;
        if (pipe(pipes[nkids]) < 0) { perror("pipe"); exit(2); }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); exit(2); }
        if (pid == 0) {
            int p, f;
            subtree(child, n, &p, &f);
            int msg[2] = { p, f };
            if (write(pipes[nkids][1], msg, sizeof msg) != sizeof msg)
                _exit(2);
            _exit(0);
        }
        close(pipes[nkids][1]);
        kids[nkids++] = pid;
    }
    for (int k = 0; k < nkids; k++) {
        int msg[2] = { 0, 1 };
        if (read(pipes[k][0], msg, sizeof msg) != sizeof msg)
            msg[1] = 1;
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            msg[1]++;
        *procs += msg[0];
        *fails += msg[1];
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200, procs, fails;
    subtree(0, n, &procs, &fails);
    printf("TREE %d %d\n", procs, fails);
    return fails != 0;
}
