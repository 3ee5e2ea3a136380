/* System calls that touch no memory of the C library: no errno, no
 * cancellation state. The spawn's child runs in the supervisor's own memory
 * (CLONE_VM, spawn.c) on the thread pointer of the thread that cloned it, so
 * glibc's wrappers would write that thread's errno and cancellation word
 * while it runs on. Each returns the kernel's result: -errno on failure. */
#ifndef YR_RAWSYS_H
#define YR_RAWSYS_H

#if defined(__x86_64__)
#define YR_HAVE_RAW_SYSCALLS 1
static inline long yr_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define YR_HAVE_RAW_SYSCALLS 1
static inline long yr_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}
#else
/* Elsewhere the wrappers: spawn.c then forks (YR_HAVE_RAW_SYSCALLS unset). */
#include <errno.h>
#include <unistd.h>
static inline long yr_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    long ret = syscall(nr, a, b, c, d, e, f);
    return ret < 0 ? -errno : ret;
}
#endif

#define yr_raw0(nr) yr_raw6((nr), 0, 0, 0, 0, 0, 0)
#define yr_raw1(nr, a) yr_raw6((nr), (long)(a), 0, 0, 0, 0, 0)
#define yr_raw2(nr, a, b) yr_raw6((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define yr_raw3(nr, a, b, c) yr_raw6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define yr_raw4(nr, a, b, c, d) yr_raw6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#endif
