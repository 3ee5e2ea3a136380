/* fuzz_probe: make the hooked syscalls a fuzzer asks for, one per stdin line,
 * and print what each returned ("OK n" or the symbolic errno), one line each.
 *
 * Line: OP T1 T2 T3 T4 T5 T6   (always six tokens)
 *   OP: link linkat attach seize vmread vmwrite getfd ptracer
 *   T:  an integer (decimal or 0x hex, may be negative), or
 *       p:own p:secret p:dir p:missing p:new p:trail p:dirslash p:empty
 *       p:long p:comp p:unterm p:null p:bad p:kern p:procfd p:abs p:dotdot
 *       f:cwd f:dir f:file f:bad f:closed f:path f:pidfd_child f:pidfd_zombie
 *       f:pidfd_self f:pidfd_parent
 *       i:self i:child i:zombie i:reaped i:none i:init i:parent i:thread
 *       v:good v:empty v:bad v:kern v:null v:neg
 * Paths are relative to the cwd, which must hold "own" (ours, rw),
 * "secret" (someone else's, 0600) and the directory "d". The pids are made
 * at start: a sleeping child, a zombie child, a reaped child's pid. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PR_SET_PTRACER_ 0x59616d61

static pid_t child, zombie, reaped, thread_tid;
static int dirfd_, filefd, pathfd, pidfd_child, pidfd_zombie, pidfd_self, pidfd_parent;
static char *unterm;            /* a string that runs into a PROT_NONE page */
static char longpath[5000], longcomp[300], procfd[64], abspath[4200], dotdot[4200];
static long counter;
static char target_buf[64] = "remote bytes in every fork of this probe";
static char local_buf[64];
static struct iovec iov_good[2], iov_bad[1], iov_kern[1], iov_neg[1], iov_empty[1];
static char newname[64];

static void *idle_thread(void *arg)
{
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static void setup(void)
{
    child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            pause();
    }
    zombie = fork();
    if (zombie == 0)
        _exit(0);
    siginfo_t si;
    waitid(P_PID, zombie, &si, WEXITED | WNOWAIT);          /* a zombie, not reaped */
    reaped = fork();
    if (reaped == 0)
        _exit(0);
    waitpid(reaped, NULL, 0);
    pthread_t t;
    pthread_create(&t, NULL, idle_thread, NULL);
    while (!__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST))
        usleep(1000);

    dirfd_ = open("d", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    filefd = open("own", O_RDWR | O_CLOEXEC);
    pathfd = open("d", O_PATH | O_CLOEXEC);
    pidfd_child = (int)syscall(SYS_pidfd_open, child, 0);
    pidfd_zombie = (int)syscall(SYS_pidfd_open, zombie, 0);
    pidfd_self = (int)syscall(SYS_pidfd_open, getpid(), 0);
    pidfd_parent = (int)syscall(SYS_pidfd_open, getppid(), 0);

    char *pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(pages + 4096, 4096, PROT_NONE);
    memset(pages, 'u', 4096);
    unterm = pages + 4096 - 100;
    memset(longpath, 'a', sizeof longpath - 1);
    memset(longcomp, 'b', sizeof longcomp - 1);
    snprintf(procfd, sizeof procfd, "/proc/self/fd/%d", filefd);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        exit(2);
    snprintf(abspath, sizeof abspath, "%s/own", cwd);
    snprintf(dotdot, sizeof dotdot, "../%s/own", strrchr(cwd, '/') + 1);

    iov_good[0] = (struct iovec){ local_buf, 16 };
    iov_good[1] = (struct iovec){ local_buf + 16, 8 };
    iov_bad[0] = (struct iovec){ (void *)0x10, 8 };
    iov_kern[0] = (struct iovec){ (void *)0xffff888000000000UL, 8 };
    iov_neg[0] = (struct iovec){ local_buf, (size_t)-5 };
    iov_empty[0] = (struct iovec){ local_buf, 0 };
}

/* The same token means the same thing in both buffers: the remote side of
 * v:good points at target_buf, which every fork has at the same address. */
static long token(const char *t, int remote)
{
    if (!strncmp(t, "p:", 2)) {
        const char *k = t + 2;
        if (!strcmp(k, "own")) return (long)"own";
        if (!strcmp(k, "secret")) return (long)"secret";
        if (!strcmp(k, "dir")) return (long)"d";
        if (!strcmp(k, "missing")) return (long)"nope/x";
        if (!strcmp(k, "new")) {
            snprintf(newname, sizeof newname, "n%ld", counter);
            return (long)newname;
        }
        if (!strcmp(k, "trail")) return (long)"own/";
        if (!strcmp(k, "dirslash")) return (long)"d/";
        if (!strcmp(k, "empty")) return (long)"";
        if (!strcmp(k, "long")) return (long)longpath;
        if (!strcmp(k, "comp")) return (long)longcomp;
        if (!strcmp(k, "unterm")) return (long)unterm;
        if (!strcmp(k, "null")) return 0;
        if (!strcmp(k, "bad")) return 0x10;
        if (!strcmp(k, "kern")) return (long)0xffff888000000000UL;
        if (!strcmp(k, "procfd")) return (long)procfd;
        if (!strcmp(k, "abs")) return (long)abspath;
        if (!strcmp(k, "dotdot")) return (long)dotdot;
    } else if (!strncmp(t, "f:", 2)) {
        const char *k = t + 2;
        if (!strcmp(k, "cwd")) return AT_FDCWD;
        if (!strcmp(k, "dir")) return dirfd_;
        if (!strcmp(k, "file")) return filefd;
        if (!strcmp(k, "bad")) return -7;
        if (!strcmp(k, "closed")) return 999;
        if (!strcmp(k, "path")) return pathfd;
        if (!strcmp(k, "pidfd_child")) return pidfd_child;
        if (!strcmp(k, "pidfd_zombie")) return pidfd_zombie;
        if (!strcmp(k, "pidfd_self")) return pidfd_self;
        if (!strcmp(k, "pidfd_parent")) return pidfd_parent;
    } else if (!strncmp(t, "i:", 2)) {
        const char *k = t + 2;
        if (!strcmp(k, "self")) return getpid();
        if (!strcmp(k, "child")) return child;
        if (!strcmp(k, "zombie")) return zombie;
        if (!strcmp(k, "reaped")) return reaped;
        if (!strcmp(k, "none")) return 0x3fffffff;
        if (!strcmp(k, "init")) return 1;
        if (!strcmp(k, "parent")) return getppid();
        if (!strcmp(k, "thread")) return thread_tid;
    } else if (!strncmp(t, "v:", 2)) {
        static struct iovec remote_good[2];
        const char *k = t + 2;
        if (!strcmp(k, "good")) {
            if (!remote)
                return (long)iov_good;
            remote_good[0] = (struct iovec){ target_buf, 16 };
            remote_good[1] = (struct iovec){ target_buf + 16, 8 };
            return (long)remote_good;
        }
        if (!strcmp(k, "empty")) return (long)iov_empty;
        if (!strcmp(k, "bad")) return (long)iov_bad;
        if (!strcmp(k, "kern")) return (long)iov_kern;
        if (!strcmp(k, "neg")) return (long)iov_neg;
        if (!strcmp(k, "null")) return 0;
    } else {
        return strtol(t, NULL, 0);
    }
    fprintf(stderr, "bad token %s\n", t);
    exit(2);
}

static long call(const char *op, char tok[6][32])
{
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = token(tok[i], (!strcmp(op, "vmread") || !strcmp(op, "vmwrite")) && i == 3);
    if (!strcmp(op, "link"))
        return syscall(SYS_link, a[0], a[1]);
    if (!strcmp(op, "linkat"))
        return syscall(SYS_linkat, a[0], a[1], a[2], a[3], a[4]);
    if (!strcmp(op, "attach"))
        return syscall(SYS_ptrace, PTRACE_ATTACH, a[0], 0, 0);
    if (!strcmp(op, "seize"))
        return syscall(SYS_ptrace, PTRACE_SEIZE, a[0], a[1], a[2]);
    if (!strcmp(op, "vmread"))
        return syscall(SYS_process_vm_readv, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!strcmp(op, "vmwrite"))
        return syscall(SYS_process_vm_writev, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!strcmp(op, "getfd")) {
        long fd = syscall(SYS_pidfd_getfd, a[0], a[1], a[2]);
        if (fd >= 0)
            close((int)fd);
        return fd >= 0 ? 0 : fd;   /* the number is not the point */
    }
    if (!strcmp(op, "ptracer"))
        return syscall(SYS_prctl, PR_SET_PTRACER_, a[0], 0, 0, 0);
    fprintf(stderr, "bad op %s\n", op);
    exit(2);
}

int main(void)
{
    setup();
    char line[512], op[32], tok[6][32];
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "%31s %31s %31s %31s %31s %31s %31s", op, tok[0], tok[1], tok[2],
                   tok[3], tok[4], tok[5]) != 7) {
            fprintf(stderr, "bad line %s", line);
            return 2;
        }
        errno = 0;
        long rc = call(op, tok);
        if (rc < 0)
            printf("%s\n", strerrorname_np(errno));
        else
            printf("OK %ld\n", rc);
        fflush(stdout);
        counter++;
    }
    kill(child, SIGKILL);
    return 0;
}
