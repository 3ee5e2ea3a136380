/* pid_reuse_calls (tests/test_pid_pinning.py): pid_reuse_race.c with another
 * call in the race, chosen at build time, each one a signal route that named
 * its target by an integer pid and was continued:
 *
 *   -DRACE_SETOWN     fcntl(pipe, F_SETOWN, P) on a pipe whose F_SETSIG is
 *                     SIGNAL and which has O_ASYNC: once the call returns, one
 *                     byte through the pipe signals the owner the kernel set
 *                     (with -DSETOWN_EX: F_SETOWN_EX, F_OWNER_PID);
 *   -DRACE_SIGQUEUE32 rt_sigqueueinfo(P, SIGNAL, info) through int $0x80
 *                     (i386 number 178), si_code SI_QUEUE, the siginfo in
 *                     memory below 4 GiB.
 *
 * usage: pid_reuse_calls FIFO SIGNAL [tries], as pid_reuse_race. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long raced_call(pid_t pid, int sig);
#define kill(pid, sig) raced_call(pid, sig)
#include "pid_reuse_race.c"
#undef kill

#if defined(RACE_SETOWN)
static int owned[2];

__attribute__((constructor)) static void owned_pipe(void)
{
    if (pipe(owned) < 0 || fcntl(owned[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0)
        perror("the owned pipe");
}

/* Is the task numbered pid the supervisor's, or a child of ours? The byte is
 * written only then: where the old code set the owner to a task nobody
 * meant, that is the supervisor's thread the harness made take the number,
 * and never another process of the machine. */
static int ours_or_the_supervisors(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int tgid = -1, ppid = -1;
    while (fgets(buf, sizeof(buf), f)) {
        sscanf(buf, "Tgid: %d", &tgid);
        sscanf(buf, "PPid: %d", &ppid);
    }
    fclose(f);
    return tgid == getppid() || ppid == getpid();
}

static long raced_call(pid_t pid, int sig)
{
    if (fcntl(owned[0], F_SETSIG, sig) < 0)      /* a pipe names no owner: not routed */
        perror("F_SETSIG");
#ifdef SETOWN_EX
    struct f_owner_ex owner = { F_OWNER_PID, pid };
    int rc = fcntl(owned[0], F_SETOWN_EX, &owner);
#else
    int rc = fcntl(owned[0], F_SETOWN, pid);
#endif
    int e = errno;
    if (rc == 0 && ours_or_the_supervisors(pid)) {
        char c;
        if (write(owned[1], "x", 1) == 1 && read(owned[0], &c, 1) < 0)
            perror("read");
    }
    fcntl(owned[0], F_SETOWN, 0);
    errno = e;
    return rc;
}
#elif defined(RACE_SIGQUEUE32)
static int *info32;

__attribute__((constructor)) static void low_siginfo(void)
{
    info32 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
                  -1, 0);
    if (info32 == MAP_FAILED) {
        perror("mmap MAP_32BIT");
        _exit(1);
    }
    info32[2] = -1;         /* si_code SI_QUEUE; i386's si_pid, si_uid, si_int follow */
    info32[3] = getpid();
    info32[4] = getuid();
    info32[5] = 42;
}

static long raced_call(pid_t pid, int sig)
{
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(178L), "b"((long)pid), "c"((long)sig),
                     "d"((long)info32) : "memory");
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}
#else
#error "build with -DRACE_SETOWN or -DRACE_SIGQUEUE32"
#endif
