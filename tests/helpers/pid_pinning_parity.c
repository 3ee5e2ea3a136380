/* pid_pinning_parity (tests/test_pid_pinning.py): calls that name another
 * process by pid, which yama-run now performs through a pidfd; what a program
 * sees must be what it sees natively. Each line printed is compared.
 *
 *   setown      F_SETOWN of a child, then I/O on the pipe: the child reports
 *               the signal (F_SETSIG SIGRTMIN) and its siginfo; F_GETOWN; the
 *               errors for a reaped child, a bad descriptor, FIOSETOWN on a
 *               pipe.
 *   sigqueue32  i386 rt_sigqueueinfo / rt_tgsigqueueinfo (int $0x80) to a
 *               child: SI_QUEUE with a value, SI_SIGIO with a band and an fd;
 *               the codes only a signal to oneself may carry (EPERM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(long rc)
{
    return rc < 0 ? strerrorname_np(errno) : "ok";
}

static int go[2];

/* A child that takes count SIGRTMIN (blocked, by sigwaitinfo) once reap()
 * lets it, all sent by then (so the order is the kernel's: a thread's own
 * first), and prints what it got as it exits. show_fd: si_fd too (a SIGIO's is the number the
 * descriptor had where O_ASYNC was set: yama-run's copy, see the test). */
static pid_t receiver(int count, int show_fd)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t parent = getpid();
    if (pipe(go) < 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        alarm(10);
        char byte;
        if (read(go[0], &byte, 1) != 1)
            _exit(1);
        char out[1024] = "";
        size_t n = 0;
        for (int i = 0; i < count; i++) {
            siginfo_t si;
            if (sigwaitinfo(&set, &si) < 0)
                _exit(1);
            n += snprintf(out + n, sizeof(out) - n, "received SIGRTMIN+%d code=%d",
                          si.si_signo - SIGRTMIN, si.si_code);
            if (si.si_code == SI_QUEUE)
                n += snprintf(out + n, sizeof(out) - n, " pid=%s uid=%u value=%d\n",
                              si.si_pid == parent ? "parent" : "other", si.si_uid,
                              si.si_value.sival_int);
            else if (show_fd)
                n += snprintf(out + n, sizeof(out) - n, " band=%ld fd=%d\n", si.si_band,
                              si.si_fd);
            else
                n += snprintf(out + n, sizeof(out) - n, " band=%ld\n", si.si_band);
        }
        fputs(out, stdout);
        _exit(0);
    }
    return c;
}

static void reap(pid_t c)
{
    int status;
    if (write(go[1], "x", 1) != 1)
        perror("write");
    close(go[0]);
    close(go[1]);
    waitpid(c, &status, 0);
    printf("child status %d\n", status);
}

static int setown(void)
{
    int p[2];
    if (pipe(p) < 0 || fcntl(p[0], F_SETSIG, SIGRTMIN) < 0 ||
        fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0) {
        perror("pipe");
        return 1;
    }
    pid_t c = receiver(1, 0);
    printf("F_SETOWN child: %s\n", err(fcntl(p[0], F_SETOWN, c)));
    printf("F_GETOWN is the child: %d\n", fcntl(p[0], F_GETOWN) == c);
    if (write(p[1], "x", 1) != 1)
        perror("write");
    reap(c);
    printf("F_SETOWN reaped child: %s\n", err(fcntl(p[0], F_SETOWN, c)));
    printf("F_SETOWN bad fd, reaped child: %s\n", err(fcntl(1000, F_SETOWN, c)));
    int who = c;
    printf("FIOSETOWN on a pipe, reaped child: %s\n", err(ioctl(p[0], FIOSETOWN, &who)));
    printf("F_SETOWN self: %s\n", err(fcntl(p[0], F_SETOWN, getpid())));
    return 0;
}

static long int80(long nr, long a, long b, long c, long d)
{
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
                     : "memory");
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

enum { I386_RT_SIGQUEUEINFO = 178, I386_RT_TGSIGQUEUEINFO = 335 };

static int sigqueue32(void)
{
    int *info = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (info == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    pid_t c = receiver(2, 1);
    info[2] = SI_QUEUE;             /* i386: si_code, then si_pid, si_uid, si_int */
    info[3] = getpid();
    info[4] = getuid();
    info[5] = 4242;
    const char *queued = err(int80(I386_RT_SIGQUEUEINFO, c, SIGRTMIN, (long)info, 0));
    memset(info, 0, 128);
    info[2] = SI_SIGIO;             /* si_band (an i386 long), si_fd */
    info[3] = -7;
    info[4] = 3;
    const char *polled = err(int80(I386_RT_TGSIGQUEUEINFO, c, c, SIGRTMIN, (long)info));
    reap(c);                        /* its lines first */
    printf("rt_sigqueueinfo SI_QUEUE: %s\nrt_tgsigqueueinfo SI_SIGIO: %s\n", queued, polled);
    c = receiver(0, 0);                /* alive while the refused codes are tried */
    int codes[] = { SI_USER, SI_TKILL, 1 };
    for (int i = 0; i < 3; i++) {
        info[2] = codes[i];
        printf("rt_sigqueueinfo code %d: %s\n", codes[i],
               err(int80(I386_RT_SIGQUEUEINFO, c, SIGRTMIN, (long)info, 0)));
    }
    reap(c);
    info[2] = SI_QUEUE;
    printf("rt_sigqueueinfo reaped child: %s\n",
           err(int80(I386_RT_SIGQUEUEINFO, c, SIGRTMIN, (long)info, 0)));
    printf("rt_sigqueueinfo bad siginfo: %s\n",
           err(int80(I386_RT_SIGQUEUEINFO, c, SIGRTMIN, 8, 0)));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "setown") == 0)
        return setown();
    if (argc == 2 && strcmp(argv[1], "sigqueue32") == 0)
        return sigqueue32();
    fprintf(stderr, "usage: %s setown|sigqueue32\n", argv[0]);
    return 2;
}
