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
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <stdio.h>

#include "yama.h"

static int seccomp_install(uint32_t flags, const void *bpf, size_t insns)
{
    struct sock_fprog prog = {
        .len = (unsigned short)insns,
        .filter = (struct sock_filter *)bpf,
    };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
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
static int take_listener(pid_t pid, int sock)
{
    int number;
    ssize_t n;
    do {
        n = read(sock, &number, sizeof(number));
    } while (n < 0 && errno == EINTR);
    if (n != sizeof(number))
        return -1;
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

/* The ptrace backend's handshake: one byte once the tracer has attached. */
static int wait_for_tracer(int sock)
{
    char go = 0;
    ssize_t n;
    do {
        n = read(sock, &go, 1);
    } while (n < 0 && errno == EINTR);
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
static void child_fail(int status_fd, int stage, int err)
{
    struct yr_spawn_failure f = { .stage = stage, .err = err };
    ssize_t unused = write(status_fd, &f, sizeof(f));
    (void)unused;
    _exit(stage == YR_STAGE_EXEC && err == ENOENT ? 127 : 126);
}

/* Write a short text to a /proc/self file (async-signal-safe). */
static int write_proc_self(const char *name, const char *text)
{
    int fd = open(name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t len = strlen(text);
    int err = write(fd, text, len) == (ssize_t)len ? 0 : errno;
    close(fd);
    return err;
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

/* A user namespace owned by our euid, our own ids mapped to themselves: the
 * program sees the same ids (others' show as the overflow id, 65534). */
static int enter_userns(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    char map[64];
    if (unshare(CLONE_NEWUSER) < 0)
        return errno;
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
        int err = prctl(PR_SET_DUMPABLE, 1) < 0 ? errno : enter_userns();
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

/* execvp's search, without malloc (we are a forked child of a threaded
 * process): EACCES anywhere wins over a later ENOENT, as in glibc and env(1). */
static int exec_search(const char *file, char *const argv[], char *const envp[],
                       const char *path)
{
    if (strchr(file, '/')) {
        execve(file, argv, envp);
        return errno;
    }
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
            execve(buf, argv, envp);
            last = errno;
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

static void child(const char *file, char *const argv[], char *const envp[],
                  const char *path, const void *bpf, size_t insns,
                  uint32_t flags, int landlock, pid_t parent, int sock, int status_fd)
{
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Python ignores these two for itself; the program expects defaults. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);

    if (flags & YR_SPAWN_USERNS) {
        /* Dumpable: a non-dumpable task's /proc/self/uid_map is its namespace
         * root's (task_dump_owner), which it could not write (the supervisor
         * is non-dumpable once a first program runs: a fallback respawn).
         * Again after: gaining the namespace's capabilities made us
         * non-dumpable, and our memory is our parent namespace's until exec,
         * where the ptrace backend's PTRACE_SEIZE would need CAP_SYS_PTRACE. */
        int err = prctl(PR_SET_DUMPABLE, 1) < 0 ? errno : enter_userns();
        if (!err && prctl(PR_SET_DUMPABLE, 1) < 0)
            err = errno;
        if (err)
            child_fail(status_fd, YR_STAGE_USERNS, err);
    }
    /* After the namespace: gaining its capabilities cleared the death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        child_fail(status_fd, YR_STAGE_SETUP, errno);
    if (getppid() != parent)        /* the supervisor died before we armed it */
        _exit(125);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(status_fd, YR_STAGE_SETUP, errno);
    if (landlock != YR_DOMAIN_NONE) {
        int rc = yr_landlock_shield_self(landlock);
        if (rc < 0)
            child_fail(status_fd, YR_STAGE_SHIELD, -rc);
    }
    int traced = (flags & YR_SPAWN_TRACED) != 0;
    flags &= ~(uint32_t)(YR_SPAWN_TRACED | YR_SPAWN_USERNS);
    if (traced) {
        /* SECCOMP_RET_TRACE: wait until the supervisor is our tracer. */
        if (wait_for_tracer(sock) < 0)
            child_fail(status_fd, YR_STAGE_SETUP, EPERM);
        if (bpf && seccomp_install(flags, bpf, insns) < 0)
            child_fail(status_fd, YR_STAGE_FILTER, errno);
        bpf = NULL;
    }
    if (bpf) {
        int listener = seccomp_install(flags, bpf, insns);
        if (listener < 0)
            child_fail(status_fd, YR_STAGE_FILTER, errno);
        /* The supervisor takes the listener with pidfd_getfd while we wait:
         * write and read are never routed (sendmsg may be). */
        char ack;
        if (write(sock, &listener, sizeof(listener)) != sizeof(listener) ||
            read(sock, &ack, 1) != 1)
            child_fail(status_fd, YR_STAGE_SETUP, EPIPE);
        close(listener);
    }
    close(sock);
    child_fail(status_fd, YR_STAGE_EXEC, exec_search(file, argv, envp, path));
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
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        close(status[0]);
        child(file, argv, envp, path, bpf, insns, flags, landlock, parent, sv[1], status[1]);
    }
    int e = errno;
    close(sv[1]);
    close(status[1]);
    if (pid < 0) {
        close(sv[0]);
        close(status[0]);
        return -e;
    }
    out->pid = pid;
    out->status_fd = status[0];
    if (flags & YR_SPAWN_TRACED) {
        out->listener = sv[0];          /* the go socket: yr_spawn_release */
        return 0;
    }
    out->listener = bpf ? take_listener(pid, sv[0]) : -1;
    close(sv[0]);
    return 0;
}
