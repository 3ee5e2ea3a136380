/* prctl(PR_SET_PTRACER, 0): clear the declared tracer. yama-run emulates it
 * (answers 0); a kernel without Yama answers EINVAL, with Yama 0.
 * ok counts returns of 0.  usage: prctl_ptracer CALLS */
#include "bench.h"
#include <sys/prctl.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    for (long i = bench_warmup(calls); i > 0; i--)
        prctl(PR_SET_PTRACER, 0L, 0L, 0L, 0L);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        if (prctl(PR_SET_PTRACER, 0L, 0L, 0L, 0L) == 0)
            ok++;
        else {
            fail++;
            last_errno = errno;
        }
    }
    double t1 = bench_now_ns();
    bench_report("prctl_ptracer", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
