/* A hooked ptrace request that is denied: PTRACE_ATTACH to a process that is
 * not ours. ok counts -1/EPERM (the denial expected everywhere this runs);
 * an attach that succeeds is a broken setup: detach and stop at once.
 * usage: ptrace_attach CALLS PID */
#include "bench.h"
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long attach(pid_t pid)
{
    return syscall(SYS_ptrace, PTRACE_ATTACH, (long)pid, 0L, 0L);
}

static void attached(pid_t pid)
{
    waitpid(pid, NULL, __WALL);
    syscall(SYS_ptrace, PTRACE_DETACH, (long)pid, 0L, 0L);
    fprintf(stderr, "ptrace_attach: PTRACE_ATTACH to %d succeeded; expected EPERM\n", (int)pid);
    exit(3);
}

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    pid_t pid = (pid_t)bench_arg(argc, argv, 2, "PID");
    for (long i = bench_warmup(calls); i > 0; i--)
        if (attach(pid) == 0)
            attached(pid);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        long r = attach(pid);
        if (r == 0)
            attached(pid);
        if (r == -1 && errno == EPERM)
            ok++;
        else {
            fail++;
            last_errno = errno;
        }
    }
    double t1 = bench_now_ns();
    bench_report("ptrace_attach", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
