/* truncate(2) against the caller's RLIMIT_FSIZE (inode_newsize_ok).
 *
 *   fsize_probe ABI PATH LIMIT LENGTH SIGXFSZ [mixed]
 *
 * ABI: x64 (truncate), i386 (truncate64 through int $0x80: the length in
 * two registers) or i386-32 (i386's truncate: a 32-bit length).
 * SIGXFSZ: catch (a handler counts it), ignore, or default (the process
 * dies of it; no core). mixed: a root caller first takes real and
 * effective uid 1001 and keeps saved uid 0 (its ids then differ).
 * Prints "truncate <ok|ERRNO> size <bytes> sigxfsz <count>". */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static volatile sig_atomic_t caught;

static void on_xfsz(int sig)
{
    (void)sig;
    caught++;
}

static long int80(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c)
                     : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: fsize_probe ABI PATH LIMIT LENGTH SIGXFSZ [mixed]\n");
        return 2;
    }
    const char *abi = argv[1], *path = argv[2], *how = argv[5];
    unsigned long long length = strtoull(argv[4], NULL, 0);
    struct rlimit none = {0, 0}, lim = {strtoull(argv[3], NULL, 0), RLIM_INFINITY};
    setrlimit(RLIMIT_CORE, &none);
    if (argc > 6 && !strcmp(argv[6], "mixed") && setresuid(1001, 1001, 0) < 0)
        return 3;
    if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
        return 3;
    if (!strcmp(how, "catch"))
        signal(SIGXFSZ, on_xfsz);
    else if (!strcmp(how, "ignore"))
        signal(SIGXFSZ, SIG_IGN);
    else
        signal(SIGXFSZ, SIG_DFL);
    long r;
    if (!strcmp(abi, "x64")) {
        r = syscall(SYS_truncate, path, (long)length) < 0 ? -errno : 0;
    } else {
        char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (low == MAP_FAILED)
            return 3;
        snprintf(low, 4096, "%s", path);
        if (!strcmp(abi, "i386"))
            r = int80(193, (long)(uintptr_t)low, (long)(length & 0xffffffffu),
                      (long)(length >> 32));
        else
            r = int80(92, (long)(uintptr_t)low, (long)length, 0);
    }
    struct stat st;
    long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    printf("truncate %s size %lld sigxfsz %d\n", r == 0 ? "ok" : strerrorname_np((int)-r),
           size, (int)caught);
    return 0;
}
