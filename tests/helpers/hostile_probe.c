/* hostile_probe: attacks a sandboxed program can make, and what it sees.
 *
 * Every result is one line "NAME RESULT" (RESULT: 0 or a symbolic errno;
 * a few lines carry facts instead).
 *
 *   hostile_probe shield [sigio]
 *       aim everything at the parent (the supervisor, when run as the main
 *       program): the kill family with SIGKILL, group signals with SIGUSR2
 *       (blocked here, fatal to a process that does not expect it), ptrace
 *       attach/seize, process_vm_readv/writev, pidfd_getfd, /proc/PID/mem,
 *       /proc/PID/environ, /proc/PID/fd; then a hooked call to show the
 *       supervisor still answers (ALIVE 0). sigio: also F_SETOWN a pipe to the
 *       supervisor with F_SETSIG SIGKILL and make it readable.
 *   hostile_probe abi ABI OP [ARG...]
 *       one hooked syscall family through one ABI (x64, i386 = int $0x80 with
 *       every pointer in MAP_32BIT memory, x32 = __X32_SYSCALL_BIT):
 *       attach | seize | vmread | vmwrite | getfd   (on a child of ours)
 *       traceme (in a child) | ptracer | ptracer_hi (option | 1 << 32)
 *       link SRC DST | linkat SRC DST | uring_setup | uring_enter [FD] |
 *       uring_register [FD] | kill (SIGKILL to the parent) |
 *       open | openat | openat2 | creat | stat | lstat | stat64 | lstat64 |
 *       fstatat | statx | access | faccessat | faccessat2  PATH
 *   hostile_probe failclosed FILE [pending]
 *       a child waits until this main program is gone, then makes hooked
 *       and unhooked calls and writes the results to FILE; with pending, it
 *       first makes a hooked call as soon as FILE.go exists
 *   hostile_probe ownfilter allow|errno
 *       installs a seccomp filter of its own (ALLOW everything, or also
 *       uname -> ENOTTY), then makes hooked calls
 *   hostile_probe listener
 *       asks for a second user-notify listener
 *   hostile_probe traceme-raise
 *       PTRACE_TRACEME (the parent, the supervisor, becomes the tracer), then
 *       a signal to itself that it handles; exits 3
 *   hostile_probe declare N
 *       N live children each hold a PR_SET_PTRACER declaration at once
 *   hostile_probe uring-hold PROGRAM [ARG...]
 *       creates an io_uring ring, then execs PROGRAM with the ring fd
 *       inherited (its number in $RING_FD)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <stddef.h>
#include <unistd.h>

#define PR_SET_PTRACER_ 0x59616d61
#define X32 0x40000000L

static void say(const char *name, long rc, int err)
{
    char buf[256];
    int n = rc < 0 ? snprintf(buf, sizeof buf, "%s %s\n", name, strerrorname_np(err))
                   : snprintf(buf, sizeof buf, "%s 0\n", name);
    if (write(1, buf, (size_t)n) != n)
        _exit(3);
}

static pid_t sleeper(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)    /* it died before we armed PDEATHSIG */
            _exit(0);
        for (;;)
            pause();
    }
    return pid;
}

/* ---- the supervisor out of reach ------------------------------------------ */

static void first_tid_signals(pid_t sup, int *tkill_err, int *tgkill_err)
{
    /* Every thread of the supervisor, its notification thread included. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", sup);
    DIR *d = opendir(path);
    *tkill_err = *tgkill_err = ENOENT;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t tid = atoi(e->d_name);
        if (tid <= 0)
            continue;
        if (syscall(SYS_tkill, tid, SIGKILL) == 0 || *tkill_err == ENOENT)
            *tkill_err = errno;
        if (syscall(SYS_tgkill, sup, tid, SIGKILL) == 0 || *tgkill_err == ENOENT)
            *tgkill_err = errno;
        if (*tkill_err == 0 || *tgkill_err == 0)
            break;
    }
    closedir(d);
}

static int cmd_shield(int with_sigio)
{
    pid_t sup = getppid();
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    long rc;

    rc = kill(sup, SIGKILL);
    say("KILL", rc, errno);
    int tk, tg;
    first_tid_signals(sup, &tk, &tg);
    say("TKILL", tk ? -1 : 0, tk);
    say("TGKILL", tg ? -1 : 0, tg);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGKILL;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    rc = syscall(SYS_rt_sigqueueinfo, sup, SIGKILL, &si);
    say("SIGQUEUEINFO", rc, errno);
    rc = syscall(SYS_rt_tgsigqueueinfo, sup, sup, SIGKILL, &si);
    say("TGSIGQUEUEINFO", rc, errno);
    int pidfd = (int)syscall(SYS_pidfd_open, sup, 0);
    rc = pidfd < 0 ? -1 : syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    say("PIDFD_SEND_SIGNAL", rc, errno);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", sup);
    int procdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = procdir < 0 ? -1 : syscall(SYS_pidfd_send_signal, procdir, SIGKILL, NULL, 0);
    say("PROCDIR_SEND_SIGNAL", rc, errno);

    rc = kill(0, SIGUSR2);
    say("KILL_OWN_GROUP", rc, errno);
    rc = kill(-getpgrp(), SIGUSR2);
    say("KILL_PGRP", rc, errno);

    rc = ptrace(PTRACE_ATTACH, sup, 0, 0);
    say("ATTACH", rc, errno);
    rc = ptrace(PTRACE_SEIZE, sup, 0, 0);
    say("SEIZE", rc, errno);
    char buf[8];
    struct iovec l = { buf, sizeof buf }, r = { (void *)0x400000, sizeof buf };
    rc = process_vm_readv(sup, &l, 1, &r, 1, 0);
    say("VMREAD", rc, errno);
    rc = process_vm_writev(sup, &l, 1, &r, 1, 0);
    say("VMWRITE", rc, errno);
    rc = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, 0, 0);
    say("GETFD", rc, errno);
    snprintf(path, sizeof path, "/proc/%d/mem", sup);
    rc = open(path, O_RDWR | O_CLOEXEC);
    say("PROCMEM", rc, errno);
    snprintf(path, sizeof path, "/proc/%d/environ", sup);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    rc = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    say("ENVIRON", rc, errno);
    snprintf(path, sizeof path, "/proc/%d/fd/0", sup);
    rc = open(path, O_RDONLY | O_CLOEXEC);
    say("PROCFD", rc, errno);

    if (with_sigio) {
        /* SIGKILL through a file owner: the kernel sends it on I/O readiness */
        int p[2];
        rc = pipe(p);
        if (rc == 0) {
            rc = fcntl(p[0], F_SETOWN, sup);
            if (rc == 0)
                rc = fcntl(p[0], F_SETSIG, SIGKILL);
            if (rc == 0)
                rc = fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
            if (rc == 0 && write(p[1], "x", 1) != 1)
                rc = -1;
        }
        say("SIGIO_SETUP", rc, errno);
        struct f_owner_ex owner = { F_OWNER_PID, sup };
        rc = pipe(p) == 0 ? fcntl(p[0], F_SETOWN_EX, &owner) : -1;
        say("SETOWN_EX", rc, errno);
        int sv[2], who = sup;
        rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ? ioctl(sv[0], FIOSETOWN, &who) : -1;
        say("FIOSETOWN", rc, errno);
        /* and the same calls naming ourselves work, and take effect */
        owner.pid = getpid();
        struct f_owner_ex back = { 0, 0 };
        rc = fcntl(p[1], F_SETOWN_EX, &owner);
        fcntl(p[1], F_GETOWN_EX, &back);
        say("OWN_SETOWN_EX", rc, errno);
        printf("OWN_OWNER_EX %d\n", back.type == F_OWNER_PID && back.pid == getpid());
        who = getpid();
        int got = 0;
        rc = ioctl(sv[1], FIOSETOWN, &who);
        ioctl(sv[1], FIOGETOWN, &got);
        say("OWN_FIOSETOWN", rc, errno);
        printf("OWN_OWNER_SOCK %d\n", got == getpid());
        rc = fcntl(p[1], F_SETOWN_EX, (void *)8);
        say("SETOWN_EX_BADPTR", rc, errno);
    }

    /* Signals to our own children still arrive, by every route. */
    const char *routes[] = { "OWN_KILL", "OWN_TGKILL", "OWN_PIDFD_SIGNAL", "OWN_PIDFD_SIGINFO" };
    for (int i = 0; i < 4; i++) {
        pid_t kid = sleeper();
        int kfd = (int)syscall(SYS_pidfd_open, kid, 0);
        siginfo_t own;
        memset(&own, 0, sizeof own);
        own.si_signo = SIGTERM;
        own.si_code = SI_QUEUE;
        own.si_pid = getpid();
        own.si_uid = getuid();
        rc = i == 0 ? kill(kid, SIGTERM)
           : i == 1 ? syscall(SYS_tgkill, kid, kid, SIGTERM)
           : syscall(SYS_pidfd_send_signal, kfd, SIGTERM, i == 3 ? &own : NULL, 0);
        int e = errno, st = 0;
        if (rc != 0)
            kill(kid, SIGKILL);
        waitpid(kid, &st, 0);
        close(kfd);
        say(routes[i], rc == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? 0 : -1,
            rc == 0 ? EIO : e);
    }

    /* The supervisor still answers, and is still our parent. */
    usleep(100 * 1000);
    rc = prctl(PR_SET_PTRACER_, 0, 0, 0, 0);
    say("ALIVE", rc, errno);
    printf("SUPERVISOR %s\n", getppid() == sup ? "same" : "gone");
    sigset_t pending;
    sigpending(&pending);
    printf("GOT_GROUP_SIGNAL %d\n", sigismember(&pending, SIGUSR2));
    return 0;
}

/* ---- one syscall family through one ABI ---------------------------------- */

enum abi { ABI_X64, ABI_I386, ABI_X32 };
static enum abi abi;
static char *low;              /* MAP_32BIT scratch: strings, iovecs, buffers */

static long int80(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long ret;
    register long r12 asm("r12") = a6;
    /* below the red zone; the 6th argument goes in ebp */
    asm volatile("sub $128, %%rsp\n\tpush %%rbp\n\tmov %%r12, %%rbp\n\t"
                 "int $0x80\n\tpop %%rbp\n\tadd $128, %%rsp"
                 : "=a"(ret)
                 : "a"(nr), "b"(a1), "c"(a2), "d"(a3), "S"(a4), "D"(a5), "r"(r12)
                 : "memory", "r8", "r9", "r10", "r11", "cc");
    ret = (int)ret;
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

struct nrs { long x64, i386, x32; };
static const struct nrs N_PTRACE = { 101, 26, 521 }, N_PRCTL = { 157, 172, 157 },
    N_VMREAD = { 310, 347, 539 }, N_VMWRITE = { 311, 348, 540 },
    N_GETFD = { 438, 438, 438 }, N_LINK = { 86, 9, 86 }, N_LINKAT = { 265, 303, 265 },
    N_URING_SETUP = { 425, 425, 425 }, N_URING_ENTER = { 426, 426, 426 },
    N_URING_REGISTER = { 427, 427, 427 }, N_KILL = { 62, 37, 62 };


static long sys6(struct nrs n, long a1, long a2, long a3, long a4, long a5, long a6)
{
    switch (abi) {
    case ABI_I386:
        return int80(n.i386, a1, a2, a3, a4, a5, a6);
    case ABI_X32:
        return syscall(n.x32 | X32, a1, a2, a3, a4, a5, a6);
    default:
        return syscall(n.x64, a1, a2, a3, a4, a5, a6);
    }
}

static char *low_str(const char *s)
{
    static size_t used;
    char *p = low + used;
    size_t n = strlen(s) + 1;
    memcpy(p, s, n);
    used += n;
    return p;
}

/* An iovec array of one entry, in the ABI's layout, in low memory. */
static long low_iov(void *base, size_t len, size_t slot)
{
    char *at = low + 2048 + slot * 16;
    if (abi == ABI_I386) {
        uint32_t v[2] = { (uint32_t)(uintptr_t)base, (uint32_t)len };
        memcpy(at, v, sizeof v);
    } else {
        struct iovec v = { base, len };
        memcpy(at, &v, sizeof v);
    }
    return (long)(uintptr_t)at;
}

/* Path families: OP PATH, the path in low memory; -1: no such call on that ABI. */
static const struct { const char *op; struct nrs n; } PATH_OPS[] = {
    { "open", { 2, 5, 2 } },            /* path, O_RDONLY */
    { "openat", { 257, 295, 257 } },    /* AT_FDCWD, path, O_RDONLY */
    { "openat2", { 437, 437, 437 } },   /* AT_FDCWD, path, {O_RDONLY}, 24 */
    { "creat", { 85, 8, 85 } },         /* path, 0600 */
    { "stat", { 4, 106, 4 } },
    { "lstat", { 6, 107, 6 } },
    { "stat64", { -1, 195, -1 } },
    { "lstat64", { -1, 196, -1 } },
    { "fstatat", { 262, 300, 262 } },   /* newfstatat, fstatat64 on i386 */
    { "statx", { 332, 383, 332 } },     /* AT_FDCWD, path, 0, STATX_BASIC_STATS */
    { "access", { 21, 33, 21 } },       /* path, R_OK */
    { "faccessat", { 269, 307, 269 } },
    { "faccessat2", { 439, 439, 439 } },
};

static long path_op(const char *op, const char *path)
{
    for (size_t i = 0; i < sizeof PATH_OPS / sizeof PATH_OPS[0]; i++) {
        if (strcmp(op, PATH_OPS[i].op))
            continue;
        struct nrs n = PATH_OPS[i].n;
        long nr = abi == ABI_I386 ? n.i386 : abi == ABI_X32 ? n.x32 : n.x64;
        if (nr < 0) {
            errno = ENOSYS;
            return -1;
        }
        long p = (long)(uintptr_t)low_str(path), buf = (long)(uintptr_t)(low + 4096);
        memset(low + 4096, 0, 512);
        if (!strcmp(op, "open"))
            return sys6(n, p, O_RDONLY, 0, 0, 0, 0);
        if (!strcmp(op, "openat") )
            return sys6(n, AT_FDCWD, p, O_RDONLY, 0, 0, 0);
        if (!strcmp(op, "openat2"))         /* struct open_how: flags, mode, resolve */
            return sys6(n, AT_FDCWD, p, buf, 24, 0, 0);
        if (!strcmp(op, "creat"))
            return sys6(n, p, 0600, 0, 0, 0, 0);
        if (!strcmp(op, "fstatat"))
            return sys6(n, AT_FDCWD, p, buf, 0, 0, 0);
        if (!strcmp(op, "statx"))
            return sys6(n, AT_FDCWD, p, 0, 0x7ff, buf, 0);
        if (!strcmp(op, "access"))
            return sys6(n, p, R_OK, 0, 0, 0, 0);
        if (!strcmp(op, "faccessat") || !strcmp(op, "faccessat2"))
            return sys6(n, AT_FDCWD, p, R_OK, 0, 0, 0);
        return sys6(n, p, buf, 0, 0, 0, 0);   /* the stat family */
    }
    errno = EINVAL;
    return -2;
}

static int cmd_abi(int argc, char **argv)
{
    const char *a = argv[0], *op = argv[1];
    abi = !strcmp(a, "i386") ? ABI_I386 : !strcmp(a, "x32") ? ABI_X32 : ABI_X64;
    low = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
               -1, 0);
    if (low == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "%s:%s", op, a);
    long rc;
    pid_t child = 0;
    char *buf = low + 4096;
    strcpy(buf, "low-memory");
    if (!strcmp(op, "attach") || !strcmp(op, "seize")) {
        child = sleeper();
        rc = sys6(N_PTRACE, !strcmp(op, "attach") ? PTRACE_ATTACH : PTRACE_SEIZE, child,
                  0, 0, 0, 0);
        say(name, rc, errno);      /* a traced child is killed below, like any other */
    } else if (!strcmp(op, "traceme")) {
        pid_t pid = fork();
        if (pid == 0) {
            rc = sys6(N_PTRACE, PTRACE_TRACEME, 0, 0, 0, 0, 0);
            say(name, rc, errno);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
    } else if (!strcmp(op, "ptracer") || !strcmp(op, "ptracer_hi")) {
        long option = PR_SET_PTRACER_;
        if (!strcmp(op, "ptracer_hi") && abi != ABI_I386)
            option |= 1L << 32;        /* the kernel reads an int */
        rc = sys6(N_PRCTL, option, getppid(), 0, 0, 0, 0);
        say(name, rc, errno);
    } else if (!strcmp(op, "vmread") || !strcmp(op, "vmwrite")) {
        child = sleeper();
        long lv = low_iov(buf + 64, 8, 0), rv = low_iov(buf, 8, 1);
        rc = sys6(!strcmp(op, "vmread") ? N_VMREAD : N_VMWRITE, child, lv, 1, rv, 1, 0);
        say(name, rc, errno);
    } else if (!strcmp(op, "getfd")) {
        child = sleeper();
        int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        rc = sys6(N_GETFD, pidfd, 1, 0, 0, 0, 0);
        say(name, rc, errno);
    } else if (!strcmp(op, "link") || !strcmp(op, "linkat")) {
        if (argc < 4)
            return 2;
        long src = (long)(uintptr_t)low_str(argv[2]), dst = (long)(uintptr_t)low_str(argv[3]);
        rc = !strcmp(op, "link") ? sys6(N_LINK, src, dst, 0, 0, 0, 0)
                                 : sys6(N_LINKAT, AT_FDCWD, src, AT_FDCWD, dst, 0, 0);
        say(name, rc, errno);
    } else if (argc >= 3 && path_op(op, argv[2]) != -2) {
        rc = path_op(op, argv[2]);
        say(name, rc >= 0 ? 0 : -1, errno);
    } else if (!strcmp(op, "kill")) {       /* SIGKILL to the parent: the supervisor */
        rc = sys6(N_KILL, getppid(), SIGKILL, 0, 0, 0, 0);
        say(name, rc, errno);
    } else if (!strcmp(op, "uring_setup")) {
        memset(buf, 0, 120);       /* struct io_uring_params */
        rc = sys6(N_URING_SETUP, 1, (long)(uintptr_t)buf, 0, 0, 0, 0);
        say(name, rc, errno);
    } else if (!strcmp(op, "uring_enter")) {
        long fd = argc > 2 ? atol(argv[2]) : -1;
        rc = sys6(N_URING_ENTER, fd, 0, 0, 0, 0, 0);
        say(name, rc, errno);
    } else if (!strcmp(op, "uring_register")) {
        long fd = argc > 2 ? atol(argv[2]) : -1;
        rc = sys6(N_URING_REGISTER, fd, 0 /* REGISTER_BUFFERS */, 0, 0, 0, 0);
        say(name, rc, errno);
    } else {
        fprintf(stderr, "unknown op %s\n", op);
        return 2;
    }
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 0;
}

/* ---- fail closed ----------------------------------------------------------- */

static int cmd_failclosed(const char *file, int pending)
{
    pid_t main_pid = getpid();
    pid_t sibling = sleeper();      /* a target for ptrace, dies with us */
    int opened[2];
    if (pipe(opened) < 0)
        return 2;
    pid_t pid = fork();
    if (pid == 0) {
        /* The descendant: no PDEATHSIG; it outlives main and the supervisor. */
        long rc;
        char go[4096];
        int pending_err = -1;
        char src[4096], dst[4096];
        snprintf(src, sizeof src, "%s.src", file);
        snprintf(dst, sizeof dst, "%s.link", file);
        /* Opened while the supervisor lives: with ptrace's /proc/PID/mem
         * check, every open is hooked, and would fail closed afterwards. */
        FILE *out = fopen(file, "w");
        if (!out)
            _exit(2);
        close(open(src, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        close(opened[0]);
        close(opened[1]);           /* READY only once these are open */
        snprintf(go, sizeof go, "%s.go", file);
        if (pending) {
            /* a hooked call made while the supervisor is stopped: it waits,
             * and is answered when the supervisor dies */
            while (access(go, F_OK) != 0)
                usleep(10 * 1000);
            rc = prctl(PR_SET_PTRACER_, 0, 0, 0, 0);
            pending_err = rc < 0 ? errno : 0;
        }
        while (getppid() == main_pid)
            usleep(10 * 1000);
        usleep(200 * 1000);
        if (pending)
            fprintf(out, "PENDING %s\n", pending_err ? strerrorname_np(pending_err) : "0");
        errno = 0;
        rc = prctl(PR_SET_PTRACER_, 0, 0, 0, 0);
        fprintf(out, "PRCTL %s\n", rc < 0 ? strerrorname_np(errno) : "0");
        rc = ptrace(PTRACE_ATTACH, sibling, 0, 0);
        fprintf(out, "ATTACH %s\n", rc < 0 ? strerrorname_np(errno) : "0");
        rc = link(src, dst);
        fprintf(out, "LINK %s\n", rc < 0 ? strerrorname_np(errno) : "0");
        rc = linkat(AT_FDCWD, src, AT_FDCWD, dst, 0);
        fprintf(out, "LINKAT %s\n", rc < 0 ? strerrorname_np(errno) : "0");
        fprintf(out, "GETPID %s\n", getpid() > 0 ? "0" : "?");
        fprintf(out, "DONE\n");
        fclose(out);
        _exit(0);
    }
    char eof;
    close(opened[1]);
    while (read(opened[0], &eof, 1) < 0 && errno == EINTR)
        ;
    close(opened[0]);
    printf("READY %d %d\n", main_pid, pid);
    fflush(stdout);
    for (;;)
        pause();
}

/* ---- a program with its own seccomp filter ------------------------------- */

static int own_filter(int with_errno)
{
    struct sock_filter allow[] = {
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_filter uname_errno[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = with_errno
        ? (struct sock_fprog){ 4, uname_errno } : (struct sock_fprog){ 1, allow };
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int cmd_ownfilter(const char *mode)
{
    long rc = own_filter(!strcmp(mode, "errno"));
    say("OWN_FILTER", rc, errno);
    struct utsname u;
    rc = uname(&u);
    say("UNAME", rc, errno);
    rc = prctl(PR_SET_PTRACER_, getppid(), 0, 0, 0);
    say("PTRACER", rc, errno);
    pid_t child = sleeper();
    rc = ptrace(PTRACE_ATTACH, child, 0, 0);
    say("ATTACH_CHILD", rc, errno);
    rc = ptrace(PTRACE_ATTACH, getppid(), 0, 0);
    say("ATTACH_PARENT", rc, errno);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

static int cmd_listener(void)
{
    struct sock_filter notify[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF) };
    struct sock_fprog prog = { 1, notify };
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      &prog);
    say("NEW_LISTENER", rc, errno);
    return 0;
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
    (void)sig;
    handled = 1;
}

static int cmd_traceme_raise(void)
{
    long rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
    say("TRACEME", rc, errno);
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);             /* a signal-delivery stop, reported to the tracer */
    printf("HANDLED %d\n", (int)handled);
    return 3;
}

/* N live processes each holding a PR_SET_PTRACER declaration at once: the
 * supervisor keeps two pidfds per declaration. */
static int cmd_declare(int n)
{
    int p[2];
    if (pipe(p) < 0)
        return 2;
    pid_t *kids = calloc((size_t)n, sizeof(pid_t));
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(p[0]);
            char b = prctl(PR_SET_PTRACER_, getppid(), 0, 0, 0) == 0 ? 'o' : 'x';
            if (write(p[1], &b, 1) != 1)
                _exit(2);
            for (;;)
                pause();
        }
    }
    close(p[1]);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char b = 0;
        if (read(p[0], &b, 1) != 1 || b != 'o')
            bad++;
    }
    long rc = prctl(PR_SET_PTRACER_, getppid(), 0, 0, 0);
    printf("DECLARED %d\nBAD %d\n", n, bad);
    say("AFTER", rc, errno);
    for (int i = 0; i < n; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    return 0;
}

static int cmd_uring_hold(char **argv)
{
    char params[120];
    memset(params, 0, sizeof params);
    long fd = syscall(425, 1, params);
    if (fd < 0) {
        perror("io_uring_setup");
        return 2;
    }
    fcntl((int)fd, F_SETFD, 0);    /* rings are close-on-exec */
    char num[24];
    snprintf(num, sizeof num, "%ld", fd);
    setenv("RING_FD", num, 1);
    execvp(argv[0], argv);
    perror("execvp");
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(30);
    if (argc >= 2 && !strcmp(argv[1], "shield"))
        return cmd_shield(argc >= 3 && !strcmp(argv[2], "sigio"));
    if (argc >= 4 && !strcmp(argv[1], "abi"))
        return cmd_abi(argc - 2, argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "failclosed"))
        return cmd_failclosed(argv[2], argc >= 4 && !strcmp(argv[3], "pending"));
    if (argc >= 3 && !strcmp(argv[1], "ownfilter"))
        return cmd_ownfilter(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "listener"))
        return cmd_listener();
    if (argc >= 3 && !strcmp(argv[1], "declare"))
        return cmd_declare(atoi(argv[2]));
    if (argc >= 2 && !strcmp(argv[1], "traceme-raise"))
        return cmd_traceme_raise();
    if (argc >= 3 && !strcmp(argv[1], "uring-hold"))
        return cmd_uring_hold(argv + 2);
    fprintf(stderr, "usage: see the comment at the top of hostile_probe.c\n");
    return 2;
}
