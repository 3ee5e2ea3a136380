/* ptrace_probe: perform ptrace-family operations and print what a user sees.
 *
 * Every result is one line written with a single write(2):
 *     OP RESULT            e.g. "ATTACH 0", "SEIZE EPERM", "VMREAD 0"
 *     OP:LABEL RESULT      in the multi-process scenarios ("ATTACH:actor 0")
 * RESULT is 0 on success or the symbolic errno. Other lines give facts the
 * tests check (PID role N, ORPHAN_PPID N, ...).
 *
 * Build it -no-pie, so that the global `magic` sits at the same address in
 * every process started from this binary (forked or separately executed).
 *
 * Usage:
 *   ptrace_probe wait
 *       print "READY pid", then sleep until killed (a target started by the test)
 *   ptrace_probe wait-any
 *       the same, having declared PR_SET_PTRACER_ANY ("READY pid result")
 *   ptrace_probe run [-T] REL OPS
 *       REL: self | selfthread | child | grandchild | thread | parent | sibling |
 *            orphan | pid=N
 *       OPS: comma-separated attach,seize,vmread,vmwrite,getfd,procmem,environ
 *       -T: the actor performs the operations from a second (non-leader) thread
 *   ptrace_probe traceme [-u UID]
 *       a child calls PTRACE_TRACEME (after dropping to UID with -u)
 *   ptrace_probe ptracer [-t] [-o OPS] [-u ACTOR_UID] [-U TARGET_UID] STEP...
 *       three children: target A, actor B, other C (B and C are A's siblings).
 *       A calls prctl(PR_SET_PTRACER, x) once per STEP (actor = B's pid,
 *       other = C's pid, any = PR_SET_PTRACER_ANY, clear = 0, bogus = a pid
 *       that does not exist), from a short-lived second thread with -t; then
 *       B and afterwards C try OPS (default attach) on A. -u / -U (as root):
 *       B and C, or A, drop to that uid first.
 *   ptrace_probe tracer-thread
 *       C has a second thread T; A declares T. C's main thread attaches A while
 *       T lives, then again after T has exited.
 *   ptrace_probe reuse -u UID
 *       (needs root for clone3 set_tid; the children drop to UID) A declares C;
 *       C attaches; C exits and is reaped; a new process N gets C's pid back
 *       (clone3 set_tid) and attaches A.
 *   ptrace_probe tracee-vm
 *       A declares B; B seizes A; A clears its declaration; B (still A's
 *       tracer) reads A's memory; B detaches and reads again.
 *   ptrace_probe tracee-exec leader|thread [fail]
 *       A declares actor B, from its leader or from a second thread T; then
 *       the same thread execs this probe ("sleeper"), keeping A's pid (with
 *       "fail", the execve fails instead: ENOENT, and A lives on as it was).
 *       B attaches A afterwards.
 *   ptrace_probe tracer-exec thread|leader
 *       C has a second thread T. A declares T's tid (thread) or C's pid
 *       (leader). T execs this probe as "execd-attach A": the new image,
 *       C's leader now under C's pid, attaches A.
 *   ptrace_probe execd-attach PID
 *       attach PID once and report as ATTACH:after-exec (then exit).
 *   ptrace_probe sleeper
 *       sleep until killed (what tracee-exec execs).
 * OPS also: perf (perf_event_open of a software event on the target),
 * perfsig (the same with attr.sigtrap: ATTACH mode), kcmp (KCMP_VM: READ mode).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kcmp.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#define PTRACER_ANY ((unsigned long)-1)
#define PROBE_FD 100
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#define MAGIC 0x59616d6150726f62ULL   /* "YamaProb" */
#define LIFETIME 30                    /* seconds any process of ours may live */

volatile uint64_t magic = MAGIC;
volatile uint64_t scratch;
static const char fd_content[] = "yama-probe-fd\n";

/* ---- output ------------------------------------------------------------- */

static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    ssize_t unused = write(1, buf, (size_t)n);
    (void)unused;
}

static const char *errname(int e)
{
    static __thread char buf[16];
    const char *name = strerrorname_np(e);
    if (name)
        return name;
    snprintf(buf, sizeof(buf), "E%d", e);
    return buf;
}

static void die(const char *what)
{
    say("ERROR %s %s", what, errname(errno));
    _exit(2);
}

/* ---- small process plumbing --------------------------------------------- */

static void put_int(int fd, int v)
{
    if (write(fd, &v, sizeof(v)) != sizeof(v))
        die("pipe write");
}

static int get_int(int fd)
{
    int v;
    ssize_t n;
    do {
        n = read(fd, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);
    if (n != sizeof(v)) {
        errno = n < 0 ? errno : EPIPE;
        die("pipe read");
    }
    return v;
}

static void mkpipe(int p[2])
{
    if (pipe(p) < 0)
        die("pipe");
}

static void name_self(const char *name)
{
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

/* Common set-up of a forked helper process: bounded lifetime, dies with its
 * parent unless it is meant to outlive it. */
static void child_init(const char *name, int pdeathsig)
{
    alarm(LIFETIME);
    if (pdeathsig)
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    name_self(name);
}

static void sleep_forever(void)
{
    for (;;)
        pause();
}

static pid_t fork_or_die(void)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    return pid;
}

/* Returns once the sleeper is set up (named), so that whoever looks at it
 * next sees its final comm. */
static pid_t spawn_sleeper(const char *name, int pdeathsig)
{
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        die("pipe");
    pid_t pid = fork_or_die();
    if (pid == 0) {
        child_init(name, pdeathsig);
        close(ready[0]);
        close(ready[1]);            /* EOF: ready */
        sleep_forever();
    }
    close(ready[1]);
    char byte;
    while (read(ready[0], &byte, 1) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    return pid;
}

static void kill_reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, __WALL);
    }
}

static int wait_exit(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, __WALL) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* drop_to(uid): become uid with no capabilities. NOCAPS keeps the ids and
 * only clears every capability set (for the root of a user namespace, which
 * may not change its groups). */
#define NOCAPS ((uid_t)-2)

static void drop_to(uid_t uid)
{
    if (uid == NOCAPS) {
        struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };   /* v3 */
        uint32_t data[6] = { 0 };
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
        if (syscall(SYS_capset, &hdr, data) < 0)
            die("capset");
        return;
    }
    if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
        die("drop privileges");
    /* A uid change makes the process non-dumpable; an exec would undo that. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static int pidfd_open_(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

/* ---- the operations ------------------------------------------------------ */

/* After a successful attach or seize: stop the tracee and detach cleanly so
 * that it runs on as before. */
static void stop_and_detach(pid_t target, int seized)
{
    int st;
    if (seized)
        ptrace(PTRACE_INTERRUPT, target, 0, 0);
    for (;;) {
        pid_t w = waitpid(target, &st, __WALL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st))
            return;
        if (WIFSTOPPED(st))
            break;
    }
    int sig = WSTOPSIG(st);
    /* The SIGSTOP of PTRACE_ATTACH and the event stop of PTRACE_INTERRUPT are
     * ours: suppress them. Anything else is handed back. */
    if (sig == SIGSTOP || sig == SIGTRAP || (st >> 16) != 0)
        sig = 0;
    ptrace(PTRACE_DETACH, target, 0, (void *)(long)sig);
}

static const char *res(long rc, int e)
{
    return rc < 0 ? errname(e) : "0";
}

static const char *op_attach(pid_t target, int seize)
{
    long rc = seize ? ptrace(PTRACE_SEIZE, target, 0, 0) : ptrace(PTRACE_ATTACH, target, 0, 0);
    int e = errno;
    if (rc == 0)
        stop_and_detach(target, seize);
    return res(rc, e);
}

/* The pid argument of ptrace(2) is a long that the kernel truncates to a
 * pid_t: only the low 32 bits name the target. */
static const char *op_attach_hi(pid_t target)
{
    long pid = (long)(uint32_t)target | (1L << 32);
    long rc = syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0L, 0L);
    int e = errno;
    if (rc == 0)
        stop_and_detach(target, 0);
    return res(rc, e);
}

/* ptrace through the i386 ABI (int $0x80, syscall 26) from this 64-bit
 * program. hi: what goes above bit 31 of the request, pid, addr and data
 * registers (HI_*): the i386 entry uses the low 32 bits, while seccomp
 * reports all 64; a supervisor that judged the raw values saw a SEIZE with
 * addr 1<<32 (the kernel's EIO, it thought) and let it through. */
enum { HI_NONE, HI_ALL, HI_ADDR };

static const char *op_attach32(pid_t target, int seize, int hi)
{
    long rc;
    long request = (seize ? PTRACE_SEIZE : PTRACE_ATTACH) | (hi == HI_ALL ? 1L << 32 : 0);
    long pid = (long)(uint32_t)target | (hi == HI_ALL ? 1L << 40 : 0);
    long addr = hi != HI_NONE ? 1L << 32 : 0, data = hi == HI_ALL ? 1L << 33 : 0;
    __asm__ volatile("int $0x80"
                     : "=a"(rc)
                     : "0"(26L), "b"(request), "c"(pid), "d"(addr), "S"(data)
                     : "memory", "r8", "r9", "r10", "r11");
    int e = rc < 0 && rc > -4096 ? (int)-rc : 0;
    if (rc == 0)
        stop_and_detach(target, seize);
    errno = e;
    return res(e ? -1 : 0, e);
}

static const char *op_vmread(pid_t target)
{
    uint64_t got = 0;
    struct iovec local = { &got, sizeof(got) };
    struct iovec remote = { (void *)&magic, sizeof(got) };
    ssize_t n = process_vm_readv(target, &local, 1, &remote, 1, 0);
    if (n < 0)
        return errname(errno);
    if (n != sizeof(got))
        return "SHORT";
    return got == MAGIC ? "0" : "MISMATCH";
}

static const char *op_vmwrite(pid_t target)
{
    uint64_t value = 0x5772697465ULL;
    struct iovec local = { &value, sizeof(value) };
    struct iovec remote = { (void *)&scratch, sizeof(value) };
    ssize_t n = process_vm_writev(target, &local, 1, &remote, 1, 0);
    if (n < 0)
        return errname(errno);
    return n == sizeof(value) ? "0" : "SHORT";
}

static const char *op_getfd(pid_t target, int is_thread)
{
    static __thread char buf[48];
    int pidfd = pidfd_open_(target, is_thread ? PIDFD_THREAD : 0);
    if (pidfd < 0) {
        snprintf(buf, sizeof(buf), "pidfd_open:%s", errname(errno));
        return buf;
    }
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, PROBE_FD, 0);
    int e = errno;
    close(pidfd);
    if (fd < 0)
        return errname(e);
    char got[sizeof(fd_content)] = { 0 };
    ssize_t n = pread(fd, got, sizeof(fd_content) - 1, 0);
    int cloexec = fcntl(fd, F_GETFD);
    close(fd);
    if (n != (ssize_t)sizeof(fd_content) - 1 || memcmp(got, fd_content, (size_t)n) != 0)
        return "UNUSABLE";
    /* pidfd_getfd(2): the new descriptor has close-on-exec set. */
    return cloexec >= 0 && (cloexec & FD_CLOEXEC) ? "0" : "NO_CLOEXEC";
}

static const char *op_procmem(pid_t target)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)target);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errname(errno);
    uint64_t got = 0;
    ssize_t n = pread(fd, &got, sizeof(got), (off_t)(uintptr_t)&magic);
    int e = errno;
    close(fd);
    if (n < 0)
        return errname(e);
    return n == sizeof(got) && got == MAGIC ? "0" : "MISMATCH";
}

/* A software event on target; with sigtrap (remove_on_exec, as the kernel
 * requires) perf_check_permission asks ptrace in ATTACH mode. */
static const char *op_perf(pid_t target, int sigtrap)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = 1000000000ULL;    /* a second of the target's CPU: it sleeps */
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    attr.sigtrap = (unsigned)sigtrap;
    attr.remove_on_exec = (unsigned)sigtrap;
    long fd = syscall(SYS_perf_event_open, &attr, target, -1, -1, PERF_FLAG_FD_CLOEXEC);
    int e = errno;
    if (fd < 0)
        return errname(e);
    int flags = fcntl((int)fd, F_GETFD);
    struct perf_event_attr back;
    (void)back;
    close((int)fd);
    return flags >= 0 && (flags & FD_CLOEXEC) ? "0" : "NO_CLOEXEC";
}

static const char *op_kcmp(pid_t target)
{
    long rc = syscall(SYS_kcmp, getpid(), target, KCMP_VM, 0, 0);
    return rc < 0 ? errname(errno) : "0";
}

static const char *op_environ(pid_t target)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)target);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errname(errno);
    ssize_t n = read(fd, buf, sizeof(buf));
    int e = errno;
    close(fd);
    return n < 0 ? errname(e) : "0";
}

/* Perform each operation of the comma-separated list on target. */
static void do_ops(const char *ops, pid_t target, int is_thread, const char *label)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", ops);
    char *save = NULL;
    for (char *op = strtok_r(copy, ",", &save); op; op = strtok_r(NULL, ",", &save)) {
        const char *r;
        char upper[32];
        size_t i;
        for (i = 0; op[i] && i < sizeof(upper) - 1; i++)
            upper[i] = (char)(op[i] >= 'a' && op[i] <= 'z' ? op[i] - 32 : op[i]);
        upper[i] = '\0';
        if (!strcmp(op, "attach"))
            r = op_attach(target, 0);
        else if (!strcmp(op, "seize"))
            r = op_attach(target, 1);
        else if (!strcmp(op, "attachhi"))
            r = op_attach_hi(target);
        else if (!strcmp(op, "attach32"))
            r = op_attach32(target, 0, HI_NONE);
        else if (!strcmp(op, "seize32"))
            r = op_attach32(target, 1, HI_NONE);
        else if (!strcmp(op, "attach32hi"))
            r = op_attach32(target, 0, HI_ALL);
        else if (!strcmp(op, "seize32hi"))
            r = op_attach32(target, 1, HI_ALL);
        else if (!strcmp(op, "seize32addr"))          /* junk in addr's upper half only */
            r = op_attach32(target, 1, HI_ADDR);
        else if (!strcmp(op, "vmread"))
            r = op_vmread(target);
        else if (!strcmp(op, "vmwrite"))
            r = op_vmwrite(target);
        else if (!strcmp(op, "getfd"))
            r = op_getfd(target, is_thread);
        else if (!strcmp(op, "procmem"))
            r = op_procmem(target);
        else if (!strcmp(op, "environ"))
            r = op_environ(target);
        else if (!strcmp(op, "perf"))
            r = op_perf(target, 0);
        else if (!strcmp(op, "perfsig"))
            r = op_perf(target, 1);
        else if (!strcmp(op, "kcmp"))
            r = op_kcmp(target);
        else
            r = "UNKNOWN_OP";
        if (label)
            say("%s:%s %s", upper, label, r);
        else
            say("%s %s", upper, r);
    }
}

/* -T: the same, from a second thread of the actor. */
struct ops_job {
    const char *ops;
    pid_t target;
    int is_thread;
    const char *label;
};

static void *ops_thread(void *arg)
{
    struct ops_job *job = arg;
    say("ACTOR_TID %d", (int)gettid_());
    do_ops(job->ops, job->target, job->is_thread, job->label);
    return NULL;
}

static void act(int from_thread, const char *ops, pid_t target, int is_thread, const char *label)
{
    say("PID actor %d", (int)getpid());
    if (!from_thread) {
        do_ops(ops, target, is_thread, label);
        return;
    }
    struct ops_job job = { ops, target, is_thread, label };
    pthread_t t;
    if (pthread_create(&t, NULL, ops_thread, &job) != 0)
        die("pthread_create");
    pthread_join(t, NULL);
}

/* A thread that reports its tid on a pipe and then sleeps. */
static void *report_tid_and_sleep(void *arg)
{
    int fd = *(int *)arg;
    name_self("yp-thread");
    put_int(fd, (int)gettid_());
    sleep_forever();
    return NULL;
}

/* ---- run REL OPS --------------------------------------------------------- */

static int cmd_run(int argc, char **argv)
{
    int from_thread = 0;
    int i = 0;
    if (i < argc && !strcmp(argv[i], "-T")) {
        from_thread = 1;
        i++;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: run [-T] REL OPS\n");
        return 2;
    }
    const char *rel = argv[i], *ops = argv[i + 1];
    int p[2];

    if (!strcmp(rel, "self")) {
        say("PID target %d", (int)getpid());
        act(from_thread, ops, getpid(), 0, NULL);
    } else if (!strcmp(rel, "selfthread")) {
        mkpipe(p);
        pthread_t t;
        if (pthread_create(&t, NULL, report_tid_and_sleep, &p[1]) != 0)
            die("pthread_create");
        pid_t tid = get_int(p[0]);
        say("PID target %d", (int)tid);
        act(from_thread, ops, tid, 1, NULL);
    } else if (!strcmp(rel, "child")) {
        pid_t c = spawn_sleeper("yp-target", 1);
        say("PID target %d", (int)c);
        act(from_thread, ops, c, 0, NULL);
        kill_reap(c);
    } else if (!strcmp(rel, "grandchild")) {
        mkpipe(p);
        pid_t c = fork_or_die();
        if (c == 0) {
            child_init("yp-middle", 1);
            pid_t g = spawn_sleeper("yp-target", 1);
            put_int(p[1], g);
            sleep_forever();
        }
        pid_t g = get_int(p[0]);
        say("PID target %d", (int)g);
        act(from_thread, ops, g, 0, NULL);
        kill(g, SIGKILL);
        kill_reap(c);
    } else if (!strcmp(rel, "thread")) {
        mkpipe(p);
        pid_t c = fork_or_die();
        if (c == 0) {
            child_init("yp-target", 1);
            pthread_t t;
            if (pthread_create(&t, NULL, report_tid_and_sleep, &p[1]) != 0)
                die("pthread_create");
            sleep_forever();
        }
        pid_t tid = get_int(p[0]);
        say("PID target %d", (int)tid);
        say("TARGET_TGID %d", (int)c);
        act(from_thread, ops, tid, 1, NULL);
        kill_reap(c);
    } else if (!strcmp(rel, "parent")) {
        pid_t me = getpid();
        say("PID target %d", (int)me);
        pid_t b = fork_or_die();
        if (b == 0) {
            child_init("yp-actor", 1);
            act(from_thread, ops, me, 0, NULL);
            _exit(0);
        }
        wait_exit(b);
    } else if (!strcmp(rel, "sibling")) {
        pid_t a = spawn_sleeper("yp-target", 1);
        say("PID target %d", (int)a);
        pid_t b = fork_or_die();
        if (b == 0) {
            child_init("yp-actor", 1);
            act(from_thread, ops, a, 0, NULL);
            _exit(0);
        }
        wait_exit(b);
        kill_reap(a);
    } else if (!strcmp(rel, "orphan")) {
        mkpipe(p);
        pid_t c = fork_or_die();
        if (c == 0) {
            child_init("yp-middle", 1);
            pid_t g = spawn_sleeper("yp-target", 0);   /* must outlive c */
            put_int(p[1], g);
            _exit(0);
        }
        pid_t g = get_int(p[0]);
        wait_exit(c);          /* c is reaped: g has been reparented by now */
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)g);
        FILE *f = fopen(path, "r");
        int ppid = -1;
        if (f && fgets(buf, sizeof(buf), f)) {
            char *q = strrchr(buf, ')');
            char state;
            if (q)
                sscanf(q + 1, " %c %d", &state, &ppid);
        }
        if (f)
            fclose(f);
        say("PID target %d", (int)g);
        say("ORPHAN_PPID %d", ppid);
        act(from_thread, ops, g, 0, NULL);
        kill(g, SIGKILL);      /* not our child: its new parent reaps it */
    } else if (!strcmp(rel, "ppid")) {
        /* our own parent, which under yama-run is the supervisor */
        say("PID target %d", (int)getppid());
        act(from_thread, ops, getppid(), 0, NULL);
    } else if (!strncmp(rel, "pid=", 4)) {
        pid_t t = (pid_t)atoi(rel + 4);
        say("PID target %d", (int)t);
        act(from_thread, ops, t, 0, NULL);
    } else {
        fprintf(stderr, "unknown relation %s\n", rel);
        return 2;
    }
    return 0;
}

/* ---- traceme ------------------------------------------------------------- */

static int cmd_traceme(int argc, char **argv)
{
    long uid = -1;
    if (argc == 2 && !strcmp(argv[0], "-u"))
        uid = atol(argv[1]);
    say("PID parent %d", (int)getpid());
    pid_t c = fork_or_die();
    if (c == 0) {
        child_init("yp-tracee", 1);
        if (uid >= 0)
            drop_to((uid_t)uid);
        long rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
        int e = errno;
        say("TRACEME %s", res(rc, e));
        if (rc == 0) {
            /* Prove the parent really is the tracer: stop and be continued. */
            raise(SIGSTOP);
            say("TRACEME_CONTINUED 0");
        }
        _exit(0);
    }
    int st;
    for (;;) {
        if (waitpid(c, &st, __WALL) < 0)
            die("waitpid");
        if (WIFSTOPPED(st)) {
            say("TRACEE_STOPPED %s", WSTOPSIG(st) == SIGSTOP ? "SIGSTOP" : "other");
            ptrace(PTRACE_CONT, c, 0, 0);
            continue;
        }
        break;
    }
    return 0;
}

/* ---- PR_SET_PTRACER scenarios -------------------------------------------- */

struct waiter {
    pid_t pid;
    int go;        /* write end: the target's pid, then it acts */
    int done;      /* read end: an int when it has acted */
};

/* A sibling actor that waits for the target's pid, tries ops, reports, exits. */
static struct waiter spawn_actor(const char *name, const char *label, const char *ops, long uid)
{
    int go[2], done[2];
    mkpipe(go);
    mkpipe(done);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        if (uid >= 0)
            drop_to((uid_t)uid);
        child_init(name, 1);
        close(go[1]);
        close(done[0]);
        pid_t target = get_int(go[0]);
        do_ops(ops, target, 0, label);
        put_int(done[1], 1);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    return (struct waiter){ pid, go[1], done[0] };
}

struct declare_job {
    int nsteps;
    char **steps;
    pid_t actor, other;
};

static unsigned long step_value(const char *step, pid_t actor, pid_t other)
{
    if (!strcmp(step, "actor"))
        return (unsigned long)actor;
    if (!strcmp(step, "other"))
        return (unsigned long)other;
    if (!strcmp(step, "any"))
        return PTRACER_ANY;
    if (!strcmp(step, "any32"))
        return 0xFFFFFFFFUL;           /* (int)arg2 == -1 also means ANY */
    if (!strcmp(step, "clear"))
        return 0;
    if (!strcmp(step, "bogus"))
        return 0x3FFFFFFF;             /* above any pid_max: no such pid */
    return strtoul(step, NULL, 0);
}

static void *declare(void *arg)
{
    struct declare_job *job = arg;
    for (int i = 0; i < job->nsteps; i++) {
        long rc;
        if (!strcmp(job->steps[i], "actor-hi")) {
            /* prctl's option is an int: the kernel ignores the high bits */
            rc = syscall(SYS_prctl, (1UL << 32) | PR_SET_PTRACER,
                         (unsigned long)job->actor, 0UL, 0UL, 0UL);
        } else {
            unsigned long v = step_value(job->steps[i], job->actor, job->other);
            rc = prctl(PR_SET_PTRACER, v, 0, 0, 0);
        }
        int e = errno;
        say("PRCTL:%s %s", job->steps[i], res(rc, e));
    }
    say("DECLARED_BY %d", (int)gettid_());
    return NULL;
}

static int cmd_ptracer(int argc, char **argv)
{
    int from_thread = 0, i = 0;
    long actor_uid = -1, target_uid = -1;
    const char *ops = "attach";
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "-t")) {
            from_thread = 1;
            i++;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            ops = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "-u") && i + 1 < argc) {
            actor_uid = atol(argv[i + 1]);
            i += 2;
        } else if (!strcmp(argv[i], "-U") && i + 1 < argc) {
            target_uid = atol(argv[i + 1]);
            i += 2;
        } else {
            fprintf(stderr, "usage: ptracer [-t] [-o OPS] [-u ACTOR_UID] [-U TARGET_UID] STEP...\n");
            return 2;
        }
    }
    struct waiter b = spawn_actor("yp-actor", "actor", ops, actor_uid);
    struct waiter c = spawn_actor("yp-other", "other", ops, actor_uid);
    say("PID actor %d", (int)b.pid);
    say("PID other %d", (int)c.pid);
    int ready[2];
    mkpipe(ready);
    pid_t a = fork_or_die();
    if (a == 0) {
        if (target_uid >= 0)
            drop_to((uid_t)target_uid);
        child_init("yp-target", 1);
        struct declare_job job = { argc - i, argv + i, b.pid, c.pid };
        if (from_thread) {
            pthread_t t;
            if (pthread_create(&t, NULL, declare, &job) != 0)
                die("pthread_create");
            pthread_join(t, NULL);      /* the declaring thread is gone now */
        } else {
            declare(&job);
        }
        put_int(ready[1], 1);
        sleep_forever();
    }
    say("PID target %d", (int)a);
    get_int(ready[0]);
    put_int(b.go, a);
    get_int(b.done);
    wait_exit(b.pid);
    put_int(c.go, a);
    get_int(c.done);
    wait_exit(c.pid);
    kill_reap(a);
    return 0;
}

struct thread_ctl {
    int tid_fd;    /* the thread writes its tid here */
    int quit_fd;   /* the thread exits when this has data */
};

static void *tracer_thread(void *arg)
{
    struct thread_ctl *ctl = arg;
    put_int(ctl->tid_fd, (int)gettid_());
    get_int(ctl->quit_fd);
    return NULL;
}

static int cmd_tracer_thread(void)
{
    int tidp[2], quit[2], go[2], ready[2];
    mkpipe(tidp);
    mkpipe(quit);
    mkpipe(go);
    mkpipe(ready);
    pid_t c = fork_or_die();
    if (c == 0) {
        child_init("yp-actor", 1);
        struct thread_ctl ctl = { tidp[1], quit[0] };
        pthread_t t;
        if (pthread_create(&t, NULL, tracer_thread, &ctl) != 0)
            die("pthread_create");
        pid_t target = get_int(go[0]);
        do_ops("attach", target, 0, "thread-alive");
        put_int(quit[1], 1);
        pthread_join(t, NULL);
        do_ops("attach", target, 0, "thread-exited");
        _exit(0);
    }
    pid_t tid = get_int(tidp[0]);
    say("PID actor %d", (int)c);
    say("TRACER_TID %d", (int)tid);
    pid_t a = fork_or_die();
    if (a == 0) {
        child_init("yp-target", 1);
        long rc = prctl(PR_SET_PTRACER, (unsigned long)tid, 0, 0, 0);
        int e = errno;
        say("PRCTL:thread %s", res(rc, e));
        put_int(ready[1], 1);
        sleep_forever();
    }
    say("PID target %d", (int)a);
    get_int(ready[0]);
    put_int(go[1], a);
    wait_exit(c);
    kill_reap(a);
    return 0;
}

static pid_t clone_with_pid(pid_t want)
{
    pid_t tids[1] = { want };
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.exit_signal = SIGCHLD;
    args.set_tid = (uint64_t)(uintptr_t)tids;
    args.set_tid_size = 1;
    return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static int cmd_reuse(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "-u")) {
        fprintf(stderr, "usage: reuse -u UID\n");
        return 2;
    }
    uid_t uid = (uid_t)atol(argv[1]);
    int go[2], quit[2], ready[2];
    mkpipe(go);
    mkpipe(quit);
    mkpipe(ready);
    pid_t c = fork_or_die();
    if (c == 0) {
        drop_to(uid);              /* before child_init: a uid change clears PDEATHSIG */
        child_init("yp-declared", 1);
        pid_t target = get_int(go[0]);
        do_ops("attach", target, 0, "declared");
        get_int(quit[0]);
        _exit(0);
    }
    say("PID declared %d", (int)c);
    pid_t a = fork_or_die();
    if (a == 0) {
        drop_to(uid);
        child_init("yp-target", 1);
        long rc = prctl(PR_SET_PTRACER, (unsigned long)c, 0, 0, 0);
        int e = errno;
        say("PRCTL:declared %s", res(rc, e));
        put_int(ready[1], 1);
        sleep_forever();
    }
    say("PID target %d", (int)a);
    get_int(ready[0]);
    put_int(go[1], a);
    put_int(quit[1], 1);
    wait_exit(c);                     /* c is gone and reaped: its pid is free */
    pid_t n = clone_with_pid(c);
    if (n < 0) {
        say("REUSE %s", errname(errno));
        kill_reap(a);
        return 0;
    }
    if (n == 0) {
        drop_to(uid);
        child_init("yp-reused", 1);
        say("PID reused %d", (int)getpid());
        do_ops("attach", a, 0, "reused");
        _exit(0);
    }
    say("REUSE 0");
    wait_exit(n);
    kill_reap(a);
    return 0;
}

static int cmd_tracee_vm(void)
{
    int go[2], clear[2], cleared[2], ready[2];
    mkpipe(go);
    mkpipe(clear);
    mkpipe(cleared);
    mkpipe(ready);
    pid_t b = fork_or_die();
    if (b == 0) {
        child_init("yp-actor", 1);
        pid_t a = get_int(go[0]);
        long rc = ptrace(PTRACE_SEIZE, a, 0, 0);
        int e = errno;
        say("SEIZE %s", res(rc, e));
        put_int(clear[1], 1);
        get_int(cleared[0]);
        say("VMREAD:traced %s", op_vmread(a));
        if (rc == 0)
            stop_and_detach(a, 1);
        say("VMREAD:detached %s", op_vmread(a));
        _exit(0);
    }
    say("PID actor %d", (int)b);
    pid_t a = fork_or_die();
    if (a == 0) {
        child_init("yp-target", 1);
        long rc = prctl(PR_SET_PTRACER, (unsigned long)b, 0, 0, 0);
        int e = errno;
        say("PRCTL:actor %s", res(rc, e));
        put_int(ready[1], 1);
        get_int(clear[0]);
        rc = prctl(PR_SET_PTRACER, 0UL, 0, 0, 0);
        e = errno;
        say("PRCTL:clear %s", res(rc, e));
        put_int(cleared[1], 1);
        sleep_forever();
    }
    say("PID target %d", (int)a);
    get_int(ready[0]);
    put_int(go[1], a);
    wait_exit(b);
    kill_reap(a);
    return 0;
}

/* ---- exec and PR_SET_PTRACER lifetimes ----------------------------------- */

static char self_exe[4096];

struct exec_job {
    int by_thread;
    pid_t actor;
    int fail_first;
    int ready_fd;
};

static void declare_and_exec(struct exec_job *job)
{
    long rc = prctl(PR_SET_PTRACER, (unsigned long)job->actor, 0, 0, 0);
    int e = errno;
    say("PRCTL:actor %s", res(rc, e));
    say("DECLARED_BY %d", (int)gettid_());
    if (job->fail_first) {            /* an exec that fails frees nothing */
        execl("/nonexistent/yama-probe", "x", (char *)NULL);
        say("EXEC:fail %s", errname(errno));
        put_int(job->ready_fd, 1);
        sleep_forever();
    }
    put_int(job->ready_fd, 1);
    execl(self_exe, "ptrace_probe", "sleeper", (char *)NULL);
    die("exec");
}

static void *declare_exec_thread(void *arg)
{
    declare_and_exec(arg);
    return NULL;
}

static int cmd_tracee_exec(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: tracee-exec leader|thread [fail]\n");
        return 2;
    }
    int by_thread = !strcmp(argv[0], "thread");
    int fail_first = argc > 1 && !strcmp(argv[1], "fail");
    struct waiter b = spawn_actor("yp-actor", "actor", "attach", -1);
    say("PID actor %d", (int)b.pid);
    int ready[2];
    mkpipe(ready);
    pid_t a = fork_or_die();
    if (a == 0) {
        child_init("yp-target", 1);
        struct exec_job job = { by_thread, b.pid, fail_first, ready[1] };
        if (by_thread) {
            pthread_t t;
            if (pthread_create(&t, NULL, declare_exec_thread, &job) != 0)
                die("pthread_create");
            pthread_join(t, NULL);          /* never returns: the exec kills us */
            _exit(3);
        }
        declare_and_exec(&job);
    }
    say("PID target %d", (int)a);
    get_int(ready[0]);
    /* wait until the exec has happened: A's comm becomes the sleeper's */
    for (int i = 0; i < 500 && !fail_first; i++) {
        char path[64], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)a);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
            fclose(f);
        }
        if (!strncmp(comm, "yp-sleeper", 10))
            break;
        usleep(10000);
    }
    put_int(b.go, a);
    get_int(b.done);
    wait_exit(b.pid);
    kill_reap(a);
    return 0;
}

struct tracer_exec_job {
    int go_fd;           /* A's pid arrives here, then T execs */
    int tid_fd;
};

static void *tracer_exec_thread(void *arg)
{
    struct tracer_exec_job *job = arg;
    put_int(job->tid_fd, (int)gettid_());
    pid_t target = get_int(job->go_fd);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)target);
    execl(self_exe, "ptrace_probe", "execd-attach", pid, (char *)NULL);
    die("exec");
    return NULL;
}

static int cmd_tracer_exec(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: tracer-exec thread|leader\n");
        return 2;
    }
    int name_thread = !strcmp(argv[0], "thread");
    int tidp[2], go[2], ready[2];
    mkpipe(tidp);
    mkpipe(go);
    mkpipe(ready);
    pid_t c = fork_or_die();
    if (c == 0) {
        child_init("yp-actor", 1);
        struct tracer_exec_job job = { go[0], tidp[1] };
        pthread_t t;
        if (pthread_create(&t, NULL, tracer_exec_thread, &job) != 0)
            die("pthread_create");
        sleep_forever();
    }
    pid_t tid = get_int(tidp[0]);
    say("PID actor %d", (int)c);
    say("TRACER_TID %d", (int)tid);
    pid_t a = fork_or_die();
    if (a == 0) {
        child_init("yp-target", 1);
        long rc = prctl(PR_SET_PTRACER, (unsigned long)(name_thread ? tid : c), 0, 0, 0);
        int e = errno;
        say("PRCTL:%s %s", name_thread ? "thread" : "leader", res(rc, e));
        put_int(ready[1], 1);
        sleep_forever();
    }
    say("PID target %d", (int)a);
    get_int(ready[0]);
    put_int(go[1], a);
    wait_exit(c);
    kill_reap(a);
    return 0;
}

static int cmd_execd_attach(int argc, char **argv)
{
    if (argc != 1)
        return 2;
    name_self("yp-execd");
    say("EXECD_PID %d", (int)getpid());
    do_ops("attach", (pid_t)atoi(argv[0]), 0, "after-exec");
    return 0;
}

/* pidns-alias -u UID: run as root as pid 1 of a new pid namespace (unshare
 * --pid --fork) whose /proc is still the outer one. Actor B (dropped to UID)
 * has a child D. A sibling A of B is created with, as its pid in this
 * namespace, the number that D has in the outer namespace. B then attaches
 * "its child" by its namespace pid (must work at scope 1) and the pid that,
 * in this namespace, is its sibling A (must be EPERM at scope 1). A second
 * sibling A2 gets, in this namespace, the number that B itself has outside;
 * B reads and writes "that pid" (A2 here, B itself for a supervisor that
 * mistakes the namespace: must be EPERM at scope 1).
 * With -u nocaps the ids are kept and only the capabilities dropped: for an
 * unprivileged user inside `unshare --user --map-root-user --pid --fork`. */
static pid_t outer_pid_of_self(void)
{
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return (pid_t)atoi(buf);
}

static int cmd_pidns_alias(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "-u")) {
        fprintf(stderr, "usage: pidns-alias -u UID|nocaps\n");
        return 2;
    }
    uid_t uid = strcmp(argv[1], "nocaps") ? (uid_t)atol(argv[1]) : NOCAPS;
    say("NS_PID %d", (int)getpid());
    int info[2], go[2], done[2];
    mkpipe(info);
    mkpipe(go);
    mkpipe(done);
    pid_t b = fork_or_die();
    if (b == 0) {
        drop_to(uid);
        child_init("yp-actor", 1);
        int dp[2];
        mkpipe(dp);
        pid_t d = fork_or_die();
        if (d == 0) {
            child_init("yp-child", 1);
            put_int(dp[1], outer_pid_of_self());
            sleep_forever();
        }
        put_int(info[1], d);                 /* D's pid here */
        put_int(info[1], get_int(dp[0]));    /* D's pid outside */
        put_int(info[1], outer_pid_of_self());   /* B's own pid outside */
        pid_t alias = get_int(go[0]);
        pid_t self_alias = get_int(go[0]);
        do_ops("attach", d, 0, "own-child");
        do_ops("attach", alias, 0, "alias");
        do_ops("vmread,vmwrite,attach", self_alias, 0, "self-alias");
        put_int(done[1], 1);
        kill_reap(d);
        _exit(0);
    }
    pid_t d_here = get_int(info[0]);
    pid_t d_outer = get_int(info[0]);
    pid_t b_outer = get_int(info[0]);
    say("CHILD_PIDS %d %d", (int)d_here, (int)d_outer);
    say("ACTOR_PIDS %d %d", (int)b, (int)b_outer);
    pid_t a = -1, a2 = -1;
    for (int k = 0; k < 2; k++) {
        pid_t want = k == 0 ? d_outer : b_outer;
        pid_t got = clone_with_pid(want);
        if (got < 0) {
            say("ALIAS %s", errname(errno));
            kill_reap(a);
            kill_reap(b);
            return 0;
        }
        if (got == 0) {
            drop_to(uid);
            child_init("yp-target", 1);
            put_int(info[1], 1);             /* ready: ids and caps dropped */
            sleep_forever();
        }
        get_int(info[0]);
        if (k == 0)
            a = got;
        else
            a2 = got;
    }
    say("ALIAS 0");
    say("PID target %d", (int)a);
    say("PID target2 %d", (int)a2);
    put_int(go[1], a);
    put_int(go[1], a2);
    get_int(done[0]);
    wait_exit(b);
    kill_reap(a);
    kill_reap(a2);
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void setup_probe_fd(void)
{
    int fd = memfd_create("yama-probe", MFD_CLOEXEC);
    if (fd < 0)
        die("memfd_create");
    if (write(fd, fd_content, sizeof(fd_content) - 1) != (ssize_t)sizeof(fd_content) - 1)
        die("memfd write");
    if (dup2(fd, PROBE_FD) < 0)
        die("dup2");
    close(fd);
}

/* The lifetime alarm must end the process even when it is the init of a pid
 * namespace, which ignores signals it has no handler for. */
static void on_alarm(int sig)
{
    (void)sig;
    _exit(124);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ptrace_probe wait|run|traceme|ptracer|tracer-thread|reuse|tracee-vm ...\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);      /* inherited by every fork */
    alarm(LIFETIME);
    signal(SIGPIPE, SIG_IGN);
    setup_probe_fd();
    const char *cmd = argv[1];
    if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0)
        die("readlink /proc/self/exe");
    if (!strcmp(cmd, "sleeper")) {
        name_self("yp-sleeper");
        sleep_forever();
    }
    if (!strcmp(cmd, "wait-any")) {     /* a target that declared PR_SET_PTRACER_ANY */
        alarm(600);
        name_self("yp-outsider");
        long rc = prctl(PR_SET_PTRACER, PTRACER_ANY, 0, 0, 0);
        int e = errno;
        say("READY %d %s", (int)getpid(), res(rc, e));
        sleep_forever();
    }
    if (!strcmp(cmd, "wait")) {
        alarm(600);            /* the test kills it; this only bounds a leak */
        name_self("yp-outsider");
        say("READY %d", (int)getpid());
        sleep_forever();
    }
    name_self("yp-probe");
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "traceme"))
        return cmd_traceme(argc - 2, argv + 2);
    if (!strcmp(cmd, "ptracer"))
        return cmd_ptracer(argc - 2, argv + 2);
    if (!strcmp(cmd, "tracer-thread"))
        return cmd_tracer_thread();
    if (!strcmp(cmd, "reuse"))
        return cmd_reuse(argc - 2, argv + 2);
    if (!strcmp(cmd, "tracee-vm"))
        return cmd_tracee_vm();
    if (!strcmp(cmd, "pidns-alias"))
        return cmd_pidns_alias(argc - 2, argv + 2);
    if (!strcmp(cmd, "tracee-exec"))
        return cmd_tracee_exec(argc - 2, argv + 2);
    if (!strcmp(cmd, "tracer-exec"))
        return cmd_tracer_exec(argc - 2, argv + 2);
    if (!strcmp(cmd, "execd-attach"))
        return cmd_execd_attach(argc - 2, argv + 2);
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
