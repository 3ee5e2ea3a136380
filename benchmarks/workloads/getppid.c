/* An unhooked syscall: getppid(), never routed to the supervisor.
 *
 * With "allow-filter" the program first installs a one-instruction seccomp
 * filter that allows everything: the kernel's fixed cost of any filter on
 * this machine, to compare yama-run's filter with.
 * usage: getppid CALLS [allow-filter] */
#include "bench.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void allow_filter(void)
{
    struct sock_filter insns[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { 1, insns };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
        perror("getppid: allow-filter");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    if (argc > 2 && strcmp(argv[2], "allow-filter") == 0)
        allow_filter();
    long expect = syscall(SYS_getppid);   /* the raw syscall: no libc caching */
    for (long i = bench_warmup(calls); i > 0; i--)
        syscall(SYS_getppid);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        long r = syscall(SYS_getppid);
        if (__builtin_expect(r == expect, 1))
            ok++;
        else {
            fail++;
            last_errno = r < 0 ? errno : 0;
        }
    }
    double t1 = bench_now_ns();
    bench_report("getppid", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
