/* Calls whose answers yama-run once gave differently from the kernel
 * (hunt-E round 8, findings 2, 4, 5, 6): each line is "CASE RESULT",
 * RESULT "ok" (or a number the case prints) or the errno's name.
 *
 *   fattr PATH        file_setattr of PATH as read, then changing its project
 *                     quota state (FS_XFLAG_PROJINHERIT, fa_projid): refused
 *                     (EINVAL) outside the initial user namespace; any change
 *                     made is undone
 *   usize PATH        file_getattr/file_setattr with usize 2^32+24 (E2BIG),
 *                     and with bad at_flags too (EINVAL first)
 *   futimesat         futimesat(fd, NULL, times) acts on fd (x86-64 and i386)
 *   lf BIG RO         i386 open/openat (int $0x80) of files over 2 GiB without
 *                     O_LARGEFILE: EOVERFLOW, nothing truncated; RO is one the
 *                     caller may not write (O_TRUNC's EACCES comes first)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define FILE_GETATTR 468
#define FILE_SETATTR 469
#define XFLAG_PROJINHERIT 0x200u
#define KERNEL_O_LARGEFILE 0100000      /* glibc's O_LARGEFILE is 0 on x86-64 */

struct file_attr_v0 {
    uint64_t xflags;
    uint32_t extsize, nextents, projid, cowextsize;
};

static void say(const char *what, long rc)
{
    if (rc < 0)
        printf("%s %s\n", what, strerrorname_np(errno));
    else
        printf("%s ok\n", what);
    fflush(stdout);
}

/* An i386 system call through int $0x80; -errno as the kernel returns it. */
static long i386_call(long nr, long a, long b, long c, long d)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
                     : "memory");
    return ret;
}

static void say_i386(const char *what, long rc)
{
    if (rc < 0 && rc > -4096) {
        errno = (int)-rc;
        say(what, -1);
    } else {
        say(what, 0);
    }
}

/* A string where an i386 call can point (below 4 GiB). */
static char *low_copy(const char *s)
{
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
                   -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    snprintf(m, 8192, "%s", s);
    return m;
}

static long getattr(const char *p, struct file_attr_v0 *fa)
{
    memset(fa, 0, sizeof(*fa));
    return syscall(FILE_GETATTR, AT_FDCWD, p, fa, sizeof(*fa), 0);
}

static long setattr(const char *p, const struct file_attr_v0 *fa)
{
    return syscall(FILE_SETATTR, AT_FDCWD, p, fa, sizeof(*fa), 0);
}

static int fattr(const char *p)
{
    struct file_attr_v0 was, fa, now;
    say("getattr", getattr(p, &was));
    fa = was;
    say("setattr-as-read", setattr(p, &fa));
    fa.xflags ^= XFLAG_PROJINHERIT;
    long rc = setattr(p, &fa);
    say("setattr-projinherit", rc);
    getattr(p, &now);
    printf("projinherit-changed %d\n", ((now.xflags ^ was.xflags) & XFLAG_PROJINHERIT) != 0);
    if (rc == 0)
        setattr(p, &was);                        /* undone */
    fa = was;
    fa.projid = was.projid + 1;
    rc = setattr(p, &fa);
    say("setattr-projid", rc);
    getattr(p, &now);
    printf("projid-changed %d\n", now.projid != was.projid);
    if (rc == 0)
        setattr(p, &was);
    return 0;
}

static int usize(const char *p)
{
    unsigned char fa[64] = { 0 };
    struct file_attr_v0 was, now;
    getattr(p, &was);
    size_t big = (1UL << 32) | 24;
    say("getattr-2^32+24", syscall(FILE_GETATTR, AT_FDCWD, p, fa, big, 0));
    say("setattr-2^32+24", syscall(FILE_SETATTR, AT_FDCWD, p, fa, big, 0));
    say("getattr-2^32+24-bad-flags", syscall(FILE_GETATTR, AT_FDCWD, p, fa, big, 1));
    say("getattr-8192", syscall(FILE_GETATTR, AT_FDCWD, p, fa, 8192UL, 0));
    getattr(p, &now);
    printf("xflags-changed %d\n", now.xflags != was.xflags);
    return 0;
}

static long mtime_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (long)st.st_mtime : -1;
}

static int futimesat_cases(void)
{
    int mfd = memfd_create("parity8", 0);
    int pfd = open("/", O_PATH);
    struct timeval tv[2] = { { 1000000, 0 }, { 2000000, 0 } };
    struct timeval bad[2] = { { 1, 1000000 }, { 1, 0 } };
    say("futimesat-memfd-null-null", syscall(SYS_futimesat, mfd, NULL, NULL));
    say("futimesat-memfd-null-times", syscall(SYS_futimesat, mfd, NULL, tv));
    printf("memfd-mtime %ld\n", mtime_of(mfd));
    say("futimesat-opath-null", syscall(SYS_futimesat, pfd, NULL, NULL));
    say("futimesat-cwd-null", syscall(SYS_futimesat, AT_FDCWD, NULL, NULL));
    say("futimesat-memfd-null-bad-usec", syscall(SYS_futimesat, mfd, NULL, bad));
    say("futimesat-memfd-null-unreadable-times", syscall(SYS_futimesat, mfd, NULL, (void *)8));
    say("futimesat-closed-null", syscall(SYS_futimesat, 999, NULL, NULL));
    int32_t *tv32 = (int32_t *)low_copy("");
    tv32[0] = 3000000, tv32[1] = 0, tv32[2] = 4000000, tv32[3] = 0;
    say_i386("i386-futimesat-memfd-null-times", i386_call(299, mfd, 0, (long)(uintptr_t)tv32, 0));
    printf("memfd-mtime-i386 %ld\n", mtime_of(mfd));
    say_i386("i386-futimesat-opath-null", i386_call(299, pfd, 0, 0, 0));
    return 0;
}

static long size_of(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void open_case(const char *what, long rc)
{
    say_i386(what, rc);
    if (rc >= 0)
        close((int)rc);
}

static int lf(const char *bigp, const char *rop)
{
    char *big = low_copy(bigp), *ro = low_copy(rop);
    long b = (long)(uintptr_t)big;
    open_case("i386-open-rdonly", i386_call(5, b, O_RDONLY, 0, 0));
    open_case("i386-openat-rdonly", i386_call(295, AT_FDCWD, b, O_RDONLY, 0));
    open_case("i386-open-rdwr-creat", i386_call(5, b, O_RDWR | O_CREAT, 0600, 0));
    open_case("i386-open-wronly-trunc", i386_call(5, b, O_WRONLY | O_TRUNC, 0, 0));
    printf("size-after-trunc %ld\n", size_of(bigp));
    open_case("i386-open-largefile", i386_call(5, b, O_RDONLY | KERNEL_O_LARGEFILE, 0, 0));
    open_case("i386-open-path", i386_call(5, b, O_PATH, 0, 0));
    open_case("i386-open-ro-rdonly-trunc", i386_call(5, (long)(uintptr_t)ro, O_RDONLY | O_TRUNC,
                                                     0, 0));
    open_case("i386-open-ro-rdonly", i386_call(5, (long)(uintptr_t)ro, O_RDONLY, 0, 0));
    printf("size-after-ro %ld\n", size_of(rop));
    int fd = open(bigp, O_RDONLY);
    say("x86_64-open-rdonly", fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "fattr") == 0)
        return fattr(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "usize") == 0)
        return usize(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "futimesat") == 0)
        return futimesat_cases();
    if (argc >= 4 && strcmp(argv[1], "lf") == 0)
        return lf(argv[2], argv[3]);
    fprintf(stderr, "usage: %s fattr PATH | usize PATH | futimesat | lf BIG RO\n", argv[0]);
    return 2;
}
