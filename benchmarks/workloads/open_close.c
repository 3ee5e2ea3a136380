/* open(PATH, O_RDONLY) and close of an ordinary file, CALLS times: with
 * every protection on yama-run performs the open itself and installs the fd
 * in the caller (close is never routed). ok counts opens that gave an fd.
 * usage: open_close CALLS PATH */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    if (argc < 3) {
        fprintf(stderr, "usage: open_close CALLS PATH\n");
        return 2;
    }
    const char *path = argv[2];
    for (long i = bench_warmup(calls); i > 0; i--) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0)
            close(fd);
    }
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            ok++;
            close(fd);
        } else {
            fail++;
            last_errno = errno;
        }
    }
    double t1 = bench_now_ns();
    bench_report("open_close", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
