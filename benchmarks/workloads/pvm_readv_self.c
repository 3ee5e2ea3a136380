/* process_vm_readv of 64 bytes from the caller's own memory: a hooked call
 * that yama-run settles in C (own thread group: no LSM is asked).
 * ok counts full reads with the right bytes.  usage: pvm_readv_self CALLS */
#define _GNU_SOURCE
#include "bench.h"
#include <sys/uio.h>
#include <unistd.h>

static char src[64] = "yama-run benchmark: process_vm_readv of our own memory.......";
static char dst[64];

static long readv_self(pid_t self)
{
    struct iovec local = { dst, sizeof(dst) };
    struct iovec remote = { src, sizeof(src) };
    return process_vm_readv(self, &local, 1, &remote, 1, 0);
}

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    pid_t self = getpid();
    for (long i = bench_warmup(calls); i > 0; i--)
        readv_self(self);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        memset(dst, 0, sizeof(dst));
        long r = readv_self(self);
        if (r == (long)sizeof(src) && memcmp(dst, src, sizeof(src)) == 0)
            ok++;
        else {
            fail++;
            last_errno = r < 0 ? errno : 0;
        }
    }
    double t1 = bench_now_ns();
    bench_report("pvm_readv_self", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
