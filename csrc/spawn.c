/* Start the sandboxed program.
 *
 * The child installs the filter on itself and hands the listener back before
 * it execs: it writes the listener's number on a socketpair and waits for a
 * byte while the supervisor takes the listener with pidfd_getfd. Between
 * installing the filter and that byte it makes no syscall the filter could
 * route (write and read never are; sendmsg is routed with AF_UNIX path
 * protection), or it would wait on a supervisor that does not hold the
 * listener yet. The
 * Landlock shield (harden.c) comes before the filter, so it makes no notified
 * call either.
 *
 * An unprivileged supervisor asks for a user namespace (YR_SPAWN_USERNS): the
 * child makes one, owned by the supervisor's uid, with only its own uid and
 * gid mapped (setgroups denied first, as an unprivileged map requires). The
 * owner of a user namespace holds every capability in it, so the supervisor
 * may read the memory and /proc/PID/{cwd,root,fd} of every sandboxed process,
 * non-dumpable ones included, as it must to serve their calls. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <stdio.h>
#include <pthread.h>
#include <sys/mman.h>

#include "rawsys.h"
#include "yama.h"

/* In the child: the listener, or -errno. */
static long seccomp_install(uint32_t flags, const void *bpf, size_t insns)
{
    struct sock_fprog prog = {
        .len = (unsigned short)insns,
        .filter = (struct sock_filter *)bpf,
    };
    return yr_raw3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* The kernel checks the flags before it reads the program: EFAULT on a NULL
 * program means the flags are known, EINVAL that they are not. */
int yr_filter_flags_supported(uint32_t flags)
{
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
    return rc < 0 && errno == EFAULT;
}

/* The child's listener, by its number there (pidfd_getfd), then the byte
 * it waits for. -1 if the child failed before (its reason is on the status
 * pipe). */
static int take_listener(pid_t pid, int sock, int userns)
{
    int number;
    ssize_t n;
    do {
        n = read(sock, &number, sizeof(number));
    } while (n < 0 && errno == EINTR);
    if (n != sizeof(number))
        return -1;
    if (userns)        /* the child is in it, and waits for our byte below */
        yr_kptrace_sandbox_userns(pid);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, number, 0);
    if (pidfd >= 0)
        close(pidfd);
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        close(fd);
        fd = -1;
    }
    char ack = 1;
    if (fd >= 0 && write(sock, &ack, 1) != 1) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The ptrace backend's child is past its user namespace and waits for the
 * tracer (its byte read here): 1, or 0 if it failed before. */
static int child_ready(int sock)
{
    char ready = 0;
    ssize_t n;
    do {
        n = read(sock, &ready, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 && ready == 1;
}

/* The ptrace backend's handshake: one byte once the tracer has attached. */
static int wait_for_tracer(int sock)
{
    char go = 0;
    long n;
    do {
        n = yr_raw3(SYS_read, sock, &go, 1);
    } while (n == -EINTR);
    return n == 1 && go == 1 ? 0 : -1;
}

/* The signal the calling thread's process gets when its parent exits (0: none). */
int yr_set_pdeathsig(int sig)
{
    return prctl(PR_SET_PDEATHSIG, sig) < 0 ? -errno : 0;
}

int yr_spawn_release(int go_fd, int go)
{
    char byte = go ? 1 : 0;
    int rc = go && write(go_fd, &byte, 1) != 1 ? -errno : 0;
    close(go_fd);
    return rc;
}

/* Report why the child could not become the program, then die. */
static void child_fail(int status_fd, int stage, long err)
{
    struct yr_spawn_failure f = { .stage = stage, .err = (int32_t)(err < 0 ? -err : err) };
    yr_raw3(SYS_write, status_fd, &f, sizeof(f));
    yr_raw1(SYS_exit_group, stage == YR_STAGE_EXEC && f.err == ENOENT ? 127 : 126);
    __builtin_unreachable();
}

/* Write a short text to a /proc/self file: 0 or an errno. */
static int write_proc_self(const char *name, const char *text)
{
    long fd = yr_raw4(SYS_openat, AT_FDCWD, name, O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return (int)-fd;
    long len = (long)strlen(text);
    long n = yr_raw3(SYS_write, fd, text, len);
    yr_raw1(SYS_close, fd);
    return n == len ? 0 : n < 0 ? (int)-n : EIO;
}

/* "ID ID 1\n": one id mapped to itself (no snprintf: a forked child of a
 * threaded process). */
static void one_to_one(char *out, unsigned id)
{
    char digits[16];
    int n = 0;
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    for (int copy = 0; copy < 2; copy++) {
        for (int i = n - 1; i >= 0; i--)
            *out++ = digits[i];
        *out++ = ' ';
    }
    memcpy(out, "1\n", 3);
}

/* A user namespace owned by our euid (uid, gid: taken before it), our own
 * ids mapped to themselves: the program sees the same ids (others' show as
 * the overflow id, 65534). setgroups is denied first, as an unprivileged map
 * requires. 0 or an errno. */
static int enter_userns(uid_t uid, gid_t gid)
{
    char map[64];
    long rc = yr_raw1(SYS_unshare, CLONE_NEWUSER);
    if (rc < 0)
        return (int)-rc;
    int err = write_proc_self("/proc/self/setgroups", "deny");
    if (err && err != ENOENT)                   /* before Linux 3.19 there is no such file */
        return err;
    one_to_one(map, (unsigned)gid);
    if ((err = write_proc_self("/proc/self/gid_map", map)))
        return err;
    one_to_one(map, (unsigned)uid);
    return write_proc_self("/proc/self/uid_map", map);
}

/* Can we make the sandbox's user namespace? A child tries and says (0, or
 * the errno), so that a kernel or a policy that forbids unprivileged user
 * namespaces is known before the program is started. */
int yr_userns_probe(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return errno;
    pid_t pid = fork();
    if (pid == 0) {
        int err = prctl(PR_SET_DUMPABLE, 1) < 0 ? errno : enter_userns(geteuid(), getegid());
        ssize_t unused = write(p[1], &err, sizeof(err));
        (void)unused;
        _exit(0);
    }
    int err = pid < 0 ? errno : EIO;
    close(p[1]);
    if (pid > 0) {
        if (read(p[0], &err, sizeof(err)) != sizeof(err))
            err = EIO;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    close(p[0]);
    return err;
}

/* What executing the file dirfd/name (mode: its st_mode) would grant a
 * program without no_new_privs: a setuid or setgid (with group-execute) bit,
 * or file capabilities. Under yama-run (no_new_privs) it runs without them. */
uint32_t yr_exec_privilege(int dirfd, const char *name, uint32_t mode)
{
    uint32_t bits = 0;
    if (!S_ISREG(mode))
        return 0;
    if (mode & S_ISUID)
        bits |= YR_EXEC_SETUID;
    if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        bits |= YR_EXEC_SETGID;
    char path[64 + YR_PATH_MAX];
    snprintf(path, sizeof(path), "/proc/self/fd/%d%s%s", dirfd, *name ? "/" : "", name);
    if (getxattr(path, "security.capability", NULL, 0) > 0)
        bits |= YR_EXEC_FCAPS;
    return bits;
}

/* execvp's search, without malloc or errno (we share the supervisor's memory,
 * or are a forked child of a threaded process): EACCES anywhere wins over a
 * later ENOENT, as in glibc and env(1). */
static int exec_search(const char *file, char *const argv[], char *const envp[],
                       const char *path)
{
    if (strchr(file, '/'))
        return (int)-yr_raw3(SYS_execve, file, argv, envp);
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int seen_eacces = 0, last = ENOENT;
    size_t flen = strlen(file);
    char buf[PATH_MAX];
    for (const char *p = path; ; ) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        if (dlen == 0) {            /* an empty entry means the cwd */
            buf[0] = '.';
            dlen = 1;
        } else if (dlen < sizeof(buf)) {
            memcpy(buf, p, dlen);
        }
        if (dlen + 1 + flen < sizeof(buf)) {
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, file, flen + 1);
            last = (int)-yr_raw3(SYS_execve, buf, argv, envp);
            if (last == EACCES)
                seen_eacces = 1;
            else if (last != ENOENT && last != ENOTDIR && last != ESTALE &&
                     last != ENODEV && last != ETIMEDOUT)
                return last;
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return seen_eacces ? EACCES : last;
}

/* What the child is given. In a child that shares our memory, this and every
 * string it points to live in its arena, never on a stack or heap of ours;
 * only bpf is the caller's, read by the child's seccomp() while the caller
 * still waits in yr_spawn_path for the listener. */
struct spawn_job {
    const char *file, *path;
    char *const *argv, *const *envp;
    const void *bpf;
    size_t insns;
    uint32_t flags;
    int32_t landlock;
    pid_t parent;
    uid_t uid;
    gid_t gid;
    int sock, status_fd;
};

struct yr_ksigaction {      /* the kernel's struct sigaction (x86-64, arm64) */
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/* The signals the user's process ignored when it started yama-run (bit N-1
 * for signal N), as the launcher read them before the interpreter ran
 * (csrc/launcher.c): Python ignores SIGPIPE and SIGXFSZ for itself as it
 * starts, so our own dispositions cannot say. Set once, before the first
 * spawn, by the supervisor's only thread (sandbox/entry.py); the children
 * only read it. Unknown under `python3 -m sandbox.cli`. */
static uint64_t caller_ignored;
static int caller_ignored_known;

void yr_spawn_caller_ignored(uint64_t ignored)
{
    caller_ignored = ignored;
    caller_ignored_known = 1;
}

/* Should the program start with sig ignored? As natively: if the caller
 * ignored it (exec keeps SIG_IGN; a handler or the default becomes the
 * default). Not knowing the caller's, every signal ignored here but the two
 * Python ignores for itself. */
static int starts_ignored(int sig, void *ours)
{
    if (caller_ignored_known)
        return (caller_ignored >> (sig - 1)) & 1;
    return ours == SIG_IGN && sig != SIGPIPE && sig != SIGXFSZ;
}

/* Every handler of ours back to the default before any signal is let in:
 * sharing our memory, a handler run here (Python's SIGINT handler trips its
 * flag, writes its wakeup descriptor) would act in the supervisor. Each
 * signal then ignored or default as its caller had it (starts_ignored). */
static void caller_dispositions(void)
{
    struct yr_ksigaction old, dfl = { .handler = SIG_DFL }, ign = { .handler = SIG_IGN };
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (yr_raw4(SYS_rt_sigaction, sig, NULL, &old, sizeof(uint64_t)) < 0)
            continue;
        const struct yr_ksigaction *want = starts_ignored(sig, old.handler) ? &ign : &dfl;
        if (old.handler != want->handler)
            yr_raw4(SYS_rt_sigaction, sig, want, NULL, sizeof(uint64_t));
    }
}

/* The program's process until its exec: only raw system calls (rawsys.h). */
static int child(void *arg)
{
    const struct spawn_job *job = arg;
    int status_fd = job->status_fd, sock = job->sock;
    uint32_t flags = job->flags;
    const void *bpf = job->bpf;
    uint64_t none = 0;

    caller_dispositions();
    yr_raw4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));

    if (flags & YR_SPAWN_USERNS) {      /* (a forked child: may_share_memory) */
        /* Dumpable: a non-dumpable task's /proc/self/uid_map is its namespace
         * root's (task_dump_owner), which it could not write (the supervisor
         * is non-dumpable once a first program runs: a fallback respawn).
         * Again after: gaining the namespace's capabilities made us
         * non-dumpable, and our memory is our parent namespace's until exec,
         * where the ptrace backend's PTRACE_SEIZE would need CAP_SYS_PTRACE. */
        long rc = yr_raw2(SYS_prctl, PR_SET_DUMPABLE, 1);
        int err = rc < 0 ? (int)-rc : enter_userns(job->uid, job->gid);
        if (!err && (rc = yr_raw2(SYS_prctl, PR_SET_DUMPABLE, 1)) < 0)
            err = (int)-rc;
        if (err)
            child_fail(status_fd, YR_STAGE_USERNS, err);
    }
    /* After the namespace: gaining its capabilities cleared the death signal. */
    long rc = yr_raw2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    if (rc < 0)
        child_fail(status_fd, YR_STAGE_SETUP, rc);
    if (yr_raw0(SYS_getppid) != job->parent)    /* the supervisor died before we armed it */
        yr_raw1(SYS_exit_group, 125);
    if ((rc = yr_raw6(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)) < 0)
        child_fail(status_fd, YR_STAGE_SETUP, rc);
    if (job->landlock != YR_DOMAIN_NONE && (rc = yr_landlock_shield_self(job->landlock)) < 0)
        child_fail(status_fd, YR_STAGE_SHIELD, rc);
    int traced = (flags & YR_SPAWN_TRACED) != 0;
    flags &= ~(uint32_t)(YR_SPAWN_TRACED | YR_SPAWN_USERNS);
    if (traced) {
        /* SECCOMP_RET_TRACE: say we are ready (the parent names our user
         * namespace now), then wait until the supervisor is our tracer. */
        char ready = 1;
        if (yr_raw3(SYS_write, sock, &ready, 1) != 1 || wait_for_tracer(sock) < 0)
            child_fail(status_fd, YR_STAGE_SETUP, EPERM);
        if (bpf && (rc = seccomp_install(flags, bpf, job->insns)) < 0)
            child_fail(status_fd, YR_STAGE_FILTER, rc);
        bpf = NULL;
    }
    if (bpf) {
        long listener = seccomp_install(flags, bpf, job->insns);
        if (listener < 0)
            child_fail(status_fd, YR_STAGE_FILTER, listener);
        /* The supervisor takes the listener with pidfd_getfd while we wait:
         * write and read are never routed (sendmsg may be). */
        int number = (int)listener;
        char ack;
        if (yr_raw3(SYS_write, sock, &number, sizeof(number)) != sizeof(number) ||
            yr_raw3(SYS_read, sock, &ack, 1) != 1)
            child_fail(status_fd, YR_STAGE_SETUP, EPIPE);
        yr_raw1(SYS_close, listener);
    }
    yr_raw1(SYS_close, sock);
    child_fail(status_fd, YR_STAGE_EXEC, exec_search(job->file, job->argv, job->envp, job->path));
    return 0;
}

/* -- the child's arena: its stack and a copy of what it execs --------------------------
 *
 * A child cloned with CLONE_VM runs in our memory until its exec, and its
 * exec (a notified call, answered after yr_spawn_path returned) reads the
 * file, argv and envp then: they are copied here, with the job and the
 * child's stack, and the arena stays mapped until the kernel says the child
 * has left our memory (its exec or exit clears `tid`, CLONE_CHILD_CLEARTID).
 * Arenas are reclaimed at the next spawn. A child killed by a core-dumping
 * signal before its exec leaves `tid` set (the kernel keeps it for the
 * dump): its arena stays mapped, one per supervisor at most, never reused. */
#define ARENA_STACK (64 * 1024)

struct arena {
    volatile pid_t tid;         /* the child's; 0 once it left our memory */
    char *base;                 /* the mapping: guard page, stack, this */
    size_t size;
    struct arena *next;
    struct spawn_job job;
    char data[];                /* argv, envp, then their strings */
};

static struct arena *arenas;
static pthread_mutex_t arenas_lock = PTHREAD_MUTEX_INITIALIZER;

static void reclaim_arenas(void)
{
    pthread_mutex_lock(&arenas_lock);
    for (struct arena **a = &arenas; *a; ) {
        struct arena *done = *a;
        if (__atomic_load_n(&done->tid, __ATOMIC_ACQUIRE) == 0) {
            *a = done->next;
            munmap(done->base, done->size);
        } else {
            a = &done->next;
        }
    }
    pthread_mutex_unlock(&arenas_lock);
}

static size_t vector_size(char *const v[], size_t *count)
{
    size_t bytes = 0, n = 0;
    for (; v[n]; n++)
        bytes += strlen(v[n]) + 1;
    *count = n;
    return bytes;
}

static char *copy_string(char **cursor, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = memcpy(*cursor, s, len);
    *cursor += len;
    return copy;
}

static char **copy_vector(char ***slots, char **cursor, char *const v[], size_t n)
{
    char **copy = *slots;
    for (size_t i = 0; i < n; i++)
        copy[i] = copy_string(cursor, v[i]);
    copy[n] = NULL;
    *slots += n + 1;
    return copy;
}

/* A guard page, the stack, then the arena header and data. NULL: no memory. */
static struct arena *arena_new(const struct spawn_job *job)
{
    size_t nargv, nenvp;
    size_t strings = vector_size(job->argv, &nargv) + vector_size(job->envp, &nenvp)
                     + strlen(job->file) + 1 + (job->path ? strlen(job->path) + 1 : 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t need = sizeof(struct arena) + (nargv + nenvp + 2) * sizeof(char *) + strings;
    size_t size = page + ARENA_STACK + ((need + page - 1) & ~(page - 1));
    char *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (mprotect(base, page, PROT_NONE) < 0) {      /* a stack overflow faults */
        munmap(base, size);
        return NULL;
    }
    struct arena *a = (struct arena *)(base + page + ARENA_STACK);
    a->base = base;
    a->size = size;
    a->job = *job;
    char **slots = (char **)a->data;
    char *cursor = (char *)(slots + nargv + nenvp + 2);
    a->job.argv = copy_vector(&slots, &cursor, job->argv, nargv);
    a->job.envp = copy_vector(&slots, &cursor, job->envp, nenvp);
    a->job.file = copy_string(&cursor, job->file);
    a->job.path = job->path ? copy_string(&cursor, job->path) : NULL;
    return a;
}

/* The child in our memory: no page tables copied for it, and none of ours
 * write-protected for copy-on-write, which every page the interpreter then
 * touched paid for as a fault. Only before the sandbox holds any process
 * (the first spawn, or again when that child failed before its filter): the
 * child holds our memory, writable, until its exec. Signals stay blocked in
 * this thread across the clone, so the child starts with all of them blocked
 * (but glibc's own two, whose handlers act only on signals from their own
 * process) until caller_dispositions() is done. Returns the pid, or -errno. */
static pid_t clone_sharing_memory(struct spawn_job *job)
{
    reclaim_arenas();
    struct arena *a = arena_new(job);
    if (!a)
        return -ENOMEM;
    int cflags = CLONE_VM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child, (char *)a, cflags, &a->job, &a->tid, NULL, &a->tid);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        munmap(a->base, a->size);
        return -e;
    }
    pthread_mutex_lock(&arenas_lock);
    a->next = arenas;
    arenas = a;
    pthread_mutex_unlock(&arenas_lock);
    return pid;
}

/* May the child share our memory? Only a supervisor that holds
 * CAP_SYS_PTRACE over its own user namespace (root, which runs the program
 * without a namespace of ours): the supervisor makes itself non-dumpable
 * before it answers the child's exec, and the child, in the same memory, is
 * then non-dumpable too; its exec is walked from its /proc/PID/root and cwd,
 * which only that capability opens then. Anyone else forks (a test attacks
 * this: tests/test_spawn_attacks.py). So does the ptrace backend's child,
 * which is traced, and any child where rawsys.h has no raw calls. */
static int may_share_memory(uint32_t flags)
{
#ifdef YR_HAVE_RAW_SYSCALLS
    uint64_t eff, perm, inh;
    if (flags & (YR_SPAWN_TRACED | YR_SPAWN_USERNS))
        return 0;
    return yr_caps3(0, &eff, &perm, &inh) == 0 && (eff >> CAP_SYS_PTRACE & 1);
#else
    (void)flags;
    return 0;
#endif
}

int yr_spawn_path(const char *file, char *const argv[], char *const envp[],
                  const char *path, const void *bpf, size_t insns,
                  uint32_t flags, int32_t landlock, struct yr_spawn_result *out)
{
    int sv[2], status[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (pipe2(status, O_CLOEXEC) < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return -e;
    }
    struct spawn_job job = {
        .file = file, .path = path, .argv = argv, .envp = envp, .bpf = bpf, .insns = insns,
        .flags = flags, .landlock = landlock, .parent = getpid(), .uid = geteuid(),
        .gid = getegid(), .sock = sv[1], .status_fd = status[1],
    };
    pid_t pid;
    if (may_share_memory(flags)) {
        pid = clone_sharing_memory(&job);
    } else {
        pid = fork();
        if (pid == 0) {
            close(sv[0]);
            close(status[0]);
            child(&job);
        }
        pid = pid < 0 ? -errno : pid;
    }
    /* The child's ends: a shared-memory child holds its own copies (no
     * CLONE_FILES), and the forked one closed ours in its table. */
    close(sv[1]);
    close(status[1]);
    if (pid < 0) {
        close(sv[0]);
        close(status[0]);
        return pid;
    }
    out->pid = pid;
    out->status_fd = status[0];
    if (flags & YR_SPAWN_TRACED) {
        out->listener = sv[0];          /* the go socket: yr_spawn_release */
        if (child_ready(sv[0]) && (flags & YR_SPAWN_USERNS))
            yr_kptrace_sandbox_userns(pid);
        return 0;
    }
    out->listener = bpf ? take_listener(pid, sv[0], flags & YR_SPAWN_USERNS) : -1;
    close(sv[0]);
    return 0;
}
