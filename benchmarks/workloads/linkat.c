/* An emulated linkat: CALLS hard links to one file the caller owns, each
 * under a new name in DIR (names built before the timed loop; the links are
 * removed after it, untimed). yama-run performs every link itself (owner
 * case: settled in C). ok counts calls that returned 0.
 * usage: linkat CALLS DIR */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

#define NAME_LEN 24

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    if (argc < 3 || chdir(argv[2]) < 0) {
        fprintf(stderr, "usage: linkat CALLS DIR (an existing, writable directory)\n");
        return 2;
    }
    int fd = open("src", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) < 0) {
        perror("linkat: src");
        return 1;
    }
    long warm = bench_warmup(calls), total = warm + calls;
    char (*names)[NAME_LEN] = calloc((size_t)total, NAME_LEN);
    if (!names)
        return 1;
    for (long i = 0; i < total; i++)
        snprintf(names[i], NAME_LEN, "l%ld", i);
    for (long i = 0; i < warm; i++)
        linkat(AT_FDCWD, "src", AT_FDCWD, names[i], 0);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = warm; i < total; i++) {
        if (linkat(AT_FDCWD, "src", AT_FDCWD, names[i], 0) == 0)
            ok++;
        else {
            fail++;
            last_errno = errno;
        }
    }
    double t1 = bench_now_ns();
    for (long i = 0; i < total; i++)
        unlink(names[i]);
    unlink("src");
    bench_report("linkat", calls, t1 - t0, ok, fail, last_errno);
    return 0;
}
