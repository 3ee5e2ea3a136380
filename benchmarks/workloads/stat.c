/* stat(PATH) of an ordinary file, CALLS times (glibc: newfstatat without
 * AT_SYMLINK_NOFOLLOW, a call that follows a trailing symlink, so with every
 * protection on yama-run performs it and writes the caller's buffer). ok
 * counts calls that returned 0 with the size found before the loop.
 * usage: stat CALLS PATH */
#include "bench.h"
#include <sys/stat.h>

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    if (argc < 3) {
        fprintf(stderr, "usage: stat CALLS PATH\n");
        return 2;
    }
    const char *path = argv[2];
    struct stat st;
    if (stat(path, &st) < 0) {
        perror("stat");
        return 1;
    }
    off_t size = st.st_size;
    for (long i = bench_warmup(calls); i > 0; i--)
        stat(path, &st);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        st.st_size = -1;
        if (stat(path, &st) == 0 && st.st_size == size)
            ok++;
        else {
            fail++;
            last_errno = errno;
        }
    }
    double t1 = bench_now_ns();
    bench_report("stat", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
