/* procs_probe: the routes to another process that are not a plain open of
 * /proc/PID/mem, each tried and reported, for tests/test_escape_procs.py.
 *
 *   procs_probe victim               print "pid N", then wait; on SIGUSR1 print
 *                                    "victim intact" (or "victim CHANGED") and exit
 *   procs_probe attack PID ATTACK..  each ATTACK against process PID
 *   procs_probe siblings ATTACK..    fork a victim V and an actor A (A is not V's
 *                                    ancestor), the attacks from A against V, then
 *                                    V's report
 *   procs_probe parent ATTACK..      against its parent (under yama-run: the supervisor)
 *   procs_probe front ATTACK..       against its parent's parent (yama-run's front)
 *
 * Every line is "NAME RESULT": LEAK (the victim's memory was read), WROTE (and
 * written), ok (the call succeeded on the target), or the errno name of the
 * refusal. Victims and actors are forks of one image: the victim's marker sits
 * at the same address in each.
 *
 * Attacks:
 *   scm-dir-mem, scm-dir-fd, scm-opath-mem, scm-tree-mem
 *       a helper B in a user namespace of its own (root there) opens /proc/PID
 *       (a directory) or /proc/PID/mem (O_PATH) and passes it over SCM_RIGHTS;
 *       the actor opens "mem" or "fd/0" relative to the directory, or
 *       /proc/self/fd/N of the O_PATH handle; or B, in a mount namespace of
 *       its own too, clones its /proc (open_tree) and passes that mount: the
 *       actor opens "PID/mem" relative to it. Each B's own failure is named
 *       "B:ERRNO".
 *   ns-cgroup ns-ipc ns-mnt ns-net ns-pid ns-time ns-user ns-uts
 *       ioctl(pidfd, PIDFD_GET_*_NAMESPACE) (Linux 6.11)
 *   setns-net setns-uts setns-ipc setns-cgroup setns-user setns-mnt
 *       setns(pidfd, CLONE_NEW*): join the target's namespace
 *   pidfd-info   ioctl(pidfd, PIDFD_GET_INFO): ok with the target's tgid
 *   tree-mem, tree-fd
 *       in a child in user + mount namespaces of its own: open_tree(/proc,
 *       OPEN_TREE_CLONE), then "PID/mem" or "PID/fd/0" opened relative to it
 *   moved-mem    the same clone moved over that child's /proc (move_mount),
 *                then /proc/PID/mem by name
 *   fsmount-proc, fsmount-proc-subset
 *       fsopen("proc") (with subset=pid, hidepid=2), create, fsmount, then
 *       "PID/mem" relative to the new mount
 *   link-fd link-cwd link-exe link-ns
 *       readlink of /proc/PID/fd/0, cwd, exe, ns/net (the kernel: PTRACE_MODE_READ)
 *   link-at      readlinkat(an O_PATH handle of /proc/PID, "fd/0")
 *   link-opath   readlinkat(an O_PATH|O_NOFOLLOW handle of /proc/PID/fd/0, "")
 *   link-i386    i386's readlink (int $0x80) of /proc/PID/fd/0
 *   path-chdir, path-stat, path-access, path-symlink
 *       through /proc/PID/root: chdir into it (then stat "."), stat of
 *       /proc/PID/root/, access(/proc/PID/cwd/., F_OK), a symlink made as
 *       /proc/PID/root/tmp/NAME (removed again)
 *   race-chdir, race-opath
 *       a thread rewrites the path between a harmless one and one through
 *       PID's links while the program calls chdir (/tmp or /proc/PID/root)
 *       or opens O_PATH (/etc/hostname or /proc/PID/exe), for up to 2 s:
 *       ok when the kernel followed PID's link (then "." is "/", or the file
 *       opened is this probe), else "held"
 *   read-syscall read-stack read-personality read-sched
 *       open and read the entry
 *   write-timerslack write-oom write-clear-refs write-coredump-filter
 *   write-attr-current write-sched write-comm write-autogroup write-setgroups
 *   write-uid-map
 *       open the entry for writing and write a harmless value
 *   setns-child-userns, setns-child-userns-threaded
 *       (PID unused) setns(pidfd, CLONE_NEWUSER) into the user namespace of a
 *       child of its own made with unshare -U, from a fork of this process;
 *       the second, with one more thread running, joins the child's UTS
 *       namespace instead (root only: a process with threads may not join a
 *       user namespace)
 *   setns-thread-table
 *       the leader holds, as descriptor N, a pidfd of a child of its own (in
 *       a network namespace of its own); a thread unshares its descriptor
 *       table, puts a pidfd of PID under the same number and calls
 *       setns(N, CLONE_NEWNET): ok when it joined PID's network namespace
 *   dir-nondumpable
 *       /proc/PID opened while PID is dumpable, then PID made non-dumpable
 *       (SIGUSR2 to a victim), then "environ" and "fd/0" opened relative to
 *       the directory: "ENVIRON/FD" (ok or the errno of each); last, as the
 *       victim stays non-dumpable
 *   reparented-syscall
 *       (PID unused) a grandchild's /proc/G/syscall opened and read while G
 *       is a descendant; G's parent exits (G is reparented, no longer a
 *       descendant); the same descriptor read again; then a fresh open:
 *       "FIRST/AGAIN/FRESH" (ok or the errno of each)
 *   kcmp-vm        kcmp(self, PID, KCMP_VM): ok (0, 1 or 2) or the errno
 *   robust-list    get_robust_list(PID)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TAG 0x50726f6300000000ULL       /* "Proc" + pid */

#define PIDFS_IOCTL_MAGIC 0xFF
#define PIDFD_GET_INFO _IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info_v0)

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6

struct pidfd_info_v0 {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid, spare;
};

volatile uint64_t marker;

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static void say(const char *name, const char *result)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s %s\n", name, result);
    if (write(1, line, (size_t)n) < 0)
        _exit(3);
}

/* fd (closed here) on pid's memory: LEAK if it reads pid's marker, WROTE if
 * it could also overwrite it, else ok or the errno of the read. */
static const char *mem_result(int fd, pid_t pid)
{
    static char buf[64];
    if (fd < 0)
        return errname(errno);
    uint64_t got = 0;
    ssize_t n = pread(fd, &got, sizeof(got), (off_t)(uintptr_t)&marker);
    int e = errno;
    const char *r = "ok";
    if (n == sizeof(got) && got == (TAG | 0xdeadULL)) {
        r = "LEAK";                           /* an earlier attack wrote it */
    } else if (n == sizeof(got) && got == (TAG | (uint64_t)pid)) {
        uint64_t evil = TAG | 0xdeadULL;
        r = pwrite(fd, &evil, sizeof(evil), (off_t)(uintptr_t)&marker) == sizeof(evil)
                ? "WROTE" : "LEAK";
    } else if (n < 0) {
        snprintf(buf, sizeof(buf), "%s", errname(e));
        r = buf;
    }
    close(fd);
    return r;
}

/* fd (closed here): ok when it was opened, else the errno of the open. */
static const char *opened(int fd)
{
    if (fd < 0)
        return errname(errno);
    close(fd);
    return "ok";
}

/* ---- a helper in a user namespace of its own, passing what it opened ------- */

static int become_userns_root(void)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    char map[64];
    if (unshare(CLONE_NEWUSER) < 0)
        return -1;
    int fd = open("/proc/self/setgroups", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "deny", 4) < 0) { /* the gid map then fails: said below */ }
        close(fd);
    }
    snprintf(map, sizeof(map), "0 %u 1", uid);
    fd = open("/proc/self/uid_map", O_WRONLY);
    if (fd < 0 || write(fd, map, strlen(map)) < 0)
        return -1;
    close(fd);
    snprintf(map, sizeof(map), "0 %u 1", gid);
    fd = open("/proc/self/gid_map", O_WRONLY);
    if (fd < 0 || write(fd, map, strlen(map)) < 0)
        return -1;
    close(fd);
    return 0;
}

static void send_fd(int sock, int fd, int err)
{
    char byte = (char)err;
    struct iovec iov = { &byte, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(sock, &msg, 0) < 0)
        _exit(4);
}

/* The fd B opened, or -1 with errno B's error. */
static int recv_fd(int sock)
{
    char byte = 0;
    struct iovec iov = { &byte, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof(u.buf) };
    if (recvmsg(sock, &msg, 0) <= 0) {
        errno = EPROTO;
        return -1;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) {
        errno = byte;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* B, in a user namespace of its own, opens path with flags and passes it;
 * flags -1: in a mount namespace of its own too, a clone of its /proc
 * (open_tree), a mount the caller's walk never saw. */
static int from_userns_helper(const char *path, int flags, char *b_err, size_t len)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t b = fork();
    if (b == 0) {
        close(sv[0]);
        if (become_userns_root() < 0) {
            send_fd(sv[1], -1, errno);
            _exit(0);
        }
        int fd;
        if (flags == -1)
            fd = unshare(CLONE_NEWNS) < 0 ? -1
                 : (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | O_CLOEXEC);
        else
            fd = open(path, flags | O_CLOEXEC);
        send_fd(sv[1], fd, fd < 0 ? errno : 0);
        _exit(0);
    }
    close(sv[1]);
    int fd = recv_fd(sv[0]);
    int e = errno;
    close(sv[0]);
    waitpid(b, NULL, 0);
    if (fd < 0)
        snprintf(b_err, len, "B:%s", errname(e));
    return fd;
}

static void scm_attack(pid_t pid, const char *what)
{
    char path[64], b_err[32], rel[64];
    int opath = strcmp(what, "scm-opath-mem") == 0;
    int tree = strcmp(what, "scm-tree-mem") == 0;
    snprintf(path, sizeof(path), opath ? "/proc/%d/mem" : tree ? "/proc" : "/proc/%d", (int)pid);
    int fd = from_userns_helper(path, opath ? O_PATH : tree ? -1 : O_RDONLY | O_DIRECTORY,
                                b_err, sizeof(b_err));
    if (fd < 0) {
        say(what, b_err);
        return;
    }
    if (opath) {
        snprintf(rel, sizeof(rel), "/proc/self/fd/%d", fd);
        say(what, mem_result(open(rel, O_RDWR), pid));
    } else if (tree) {
        snprintf(rel, sizeof(rel), "%d/mem", (int)pid);
        say(what, mem_result(openat(fd, rel, O_RDWR), pid));
    } else if (strcmp(what, "scm-dir-mem") == 0) {
        say(what, mem_result(openat(fd, "mem", O_RDWR), pid));
    } else {
        say(what, opened(openat(fd, "fd/0", O_RDONLY)));
    }
    close(fd);
}

/* ---- pidfds: namespaces and setns ------------------------------------------ */

static const struct { const char *name; int nr; int flag; } namespaces[] = {
    { "cgroup", 1, CLONE_NEWCGROUP }, { "ipc", 2, CLONE_NEWIPC }, { "mnt", 3, CLONE_NEWNS },
    { "net", 4, CLONE_NEWNET }, { "pid", 5, CLONE_NEWPID }, { "time", 7, CLONE_NEWTIME },
    { "user", 9, CLONE_NEWUSER }, { "uts", 10, CLONE_NEWUTS },
};

static void pidfd_attack(pid_t pid, const char *what)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        say(what, errname(errno));
        return;
    }
    if (strcmp(what, "pidfd-info") == 0) {
        struct pidfd_info_v0 info = { .mask = 1 };     /* PIDFD_INFO_PID */
        char r[32];
        if (ioctl(pidfd, PIDFD_GET_INFO, &info) < 0)
            snprintf(r, sizeof(r), "%s", errname(errno));
        else
            snprintf(r, sizeof(r), info.tgid == (uint32_t)pid ? "ok" : "other");
        say(what, r);
    }
    for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
        if (strncmp(what, "ns-", 3) == 0 && strcmp(what + 3, namespaces[i].name) == 0) {
            /* a process that joins a namespace of its own stays here: a fork */
            say(what, opened(ioctl(pidfd, _IO(PIDFS_IOCTL_MAGIC, namespaces[i].nr), 0)));
        } else if (strncmp(what, "setns-", 6) == 0 && strcmp(what + 6, namespaces[i].name) == 0) {
            pid_t c = fork();
            if (c == 0)
                _exit(setns(pidfd, namespaces[i].flag) < 0 ? errno : 0);
            int st = 0;
            waitpid(c, &st, 0);
            say(what, WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok"
                      : WIFEXITED(st) ? errname(WEXITSTATUS(st)) : "crashed");
        }
    }
    close(pidfd);
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* A child in user and UTS namespaces of its own (so the caller owns them),
 * joined by pidfd from a fork. */
/* A child in namespaces of its own (unshare(flags)), waiting to be killed;
 * -1 (reaped) if it could not make them. */
static pid_t child_in_namespaces(int flags)
{
    int ready[2];
    if (pipe(ready) < 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char b = unshare(flags) < 0 ? 'x' : 'y';
        if (write(ready[1], &b, 1) < 0)
            _exit(3);
        for (;;)
            pause();
    }
    char b = 0;
    ssize_t n = read(ready[0], &b, 1);
    close(ready[0]);
    close(ready[1]);
    if (n != 1 || b != 'y') {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return -1;
    }
    return child;
}

/* The joiner's answer (its exit status: 0 or an errno), then the child whose
 * namespaces it joined is ended. */
static void say_joined(const char *what, pid_t joiner, pid_t child)
{
    int st = 0;
    waitpid(joiner, &st, 0);
    say(what, WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok"
              : WIFEXITED(st) ? errname(WEXITSTATUS(st)) : "crashed");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void setns_child(const char *what)
{
    pid_t child = child_in_namespaces(CLONE_NEWUSER | CLONE_NEWUTS);
    if (child < 0) {
        say(what, "setup");
        return;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    pid_t joiner = fork();
    if (joiner == 0) {
        pthread_t t;
        int threaded = strstr(what, "threaded") != NULL;
        if (threaded && pthread_create(&t, NULL, idle, NULL) != 0)
            _exit(EAGAIN);
        /* a process with threads may not join a user namespace: its UTS one */
        _exit(setns(pidfd, threaded ? CLONE_NEWUTS : CLONE_NEWUSER) < 0 ? errno : 0);
    }
    say_joined(what, joiner, child);
    close(pidfd);
}

/* ---- another view of /proc --------------------------------------------------- */

/* In a child in user and mount namespaces of its own: the result line. */
static void mount_attack(pid_t pid, const char *what)
{
    int sv[2];
    if (pipe(sv) < 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        char rel[64], line[128];
        const char *r;
        close(sv[0]);
        if (become_userns_root() < 0 || unshare(CLONE_NEWNS) < 0) {
            snprintf(line, sizeof(line), "setup:%s", errname(errno));
            r = line;
        } else if (strncmp(what, "fsmount", 7) == 0) {
            int fs = (int)syscall(SYS_fsopen, "proc", 0);
            int subset = strcmp(what, "fsmount-proc-subset") == 0;
            if (fs >= 0 && subset) {
                syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "subset", "pid", 0);
                syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "hidepid", "2", 0);
            }
            int mnt = -1;
            if (fs >= 0 && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
                mnt = (int)syscall(SYS_fsmount, fs, 0, 0);
            if (mnt < 0) {
                snprintf(line, sizeof(line), "%s", errname(errno));
                r = line;
            } else {
                snprintf(rel, sizeof(rel), "%d/mem", (int)pid);
                r = mem_result(openat(mnt, rel, O_RDWR), pid);
            }
        } else {
            int tree = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc", OPEN_TREE_CLONE);
            if (tree < 0) {
                snprintf(line, sizeof(line), "open_tree:%s", errname(errno));
                r = line;
            } else if (strcmp(what, "tree-mem") == 0) {
                snprintf(rel, sizeof(rel), "%d/mem", (int)pid);
                r = mem_result(openat(tree, rel, O_RDWR), pid);
            } else if (strcmp(what, "tree-fd") == 0) {
                snprintf(rel, sizeof(rel), "%d/fd/0", (int)pid);
                r = opened(openat(tree, rel, O_RDONLY));
            } else if (syscall(SYS_move_mount, tree, "", AT_FDCWD, "/proc",
                               MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                snprintf(line, sizeof(line), "move_mount:%s", errname(errno));
                r = line;
            } else {
                snprintf(rel, sizeof(rel), "/proc/%d/mem", (int)pid);
                r = mem_result(open(rel, O_RDWR), pid);
            }
        }
        if (write(sv[1], r, strlen(r)) < 0)
            _exit(3);
        _exit(0);
    }
    close(sv[1]);
    char got[128] = "";
    ssize_t n = read(sv[0], got, sizeof(got) - 1);
    got[n > 0 ? n : 0] = '\0';
    close(sv[0]);
    waitpid(c, NULL, 0);
    say(what, got);
}

/* ---- entries that act on a process --------------------------------------- */

static const struct { const char *attack, *entry, *value; } writes[] = {
    { "write-timerslack", "timerslack_ns", "50000" }, { "write-oom", "oom_score_adj", "500" },
    { "write-clear-refs", "clear_refs", "1" }, { "write-coredump-filter", "coredump_filter", "0x33" },
    { "write-attr-current", "attr/current", "unconfined" }, { "write-sched", "sched", "0" },
    { "write-comm", "comm", "evil" }, { "write-autogroup", "autogroup", "5" },
    { "write-setgroups", "setgroups", "deny" }, { "write-uid-map", "uid_map", "0 1001 1" },
};

static void entry_attack(pid_t pid, const char *what)
{
    char path[64];
    if (strncmp(what, "read-", 5) == 0) {
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what + 5);
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            say(what, errname(errno));
            return;
        }
        char b[256];
        ssize_t n = read(fd, b, sizeof(b));
        say(what, n < 0 ? errname(errno) : "ok");
        close(fd);
        return;
    }
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        if (strcmp(what, writes[i].attack) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, writes[i].entry);
        int fd = open(path, O_WRONLY);
        if (fd < 0) {
            say(what, errname(errno));
            return;
        }
        /* autogroup's nice is rate-limited machine-wide: EAGAIN within 100 ms of
         * anyone's last write (this run's or the native control's), before the
         * kernel looks at the target; wait the limit out for the real answer */
        ssize_t n;
        for (int tries = 0; tries < 20; tries++) {
            n = write(fd, writes[i].value, strlen(writes[i].value));
            if (n >= 0 || errno != EAGAIN)
                break;
            usleep(120 * 1000);
        }
        say(what, n < 0 ? errname(errno) : "ok");
        close(fd);
        return;
    }
    say(what, "unknown");
}

/* ---- the links the kernel reads in PTRACE_MODE_READ ------------------------- */

/* i386's readlink (85) through int $0x80, its path and buffer below 4 GiB:
 * the length read, or -errno. */
static long i386_readlink(const char *path)
{
    char *low = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED)
        return -errno;
    snprintf(low, 4096, "%s", path);
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(85L), "b"(low), "c"(low + 4096), "d"(256L)
                     : "memory", "r8", "r9", "r10", "r11");
    munmap(low, 8192);
    return ret;
}

static void link_attack(pid_t pid, const char *what)
{
    const char *entry = strcmp(what, "link-cwd") == 0 ? "cwd" :
                        strcmp(what, "link-exe") == 0 ? "exe" :
                        strcmp(what, "link-ns") == 0 ? "ns/net" : "fd/0";
    char path[64], buf[256];
    ssize_t n;
    int fd = -1;
    if (strcmp(what, "link-at") == 0 || strcmp(what, "link-opath") == 0) {
        int at = strcmp(what, "link-at") == 0;
        snprintf(path, sizeof(path), at ? "/proc/%d" : "/proc/%d/fd/0", (int)pid);
        fd = open(path, O_PATH | (at ? O_DIRECTORY : O_NOFOLLOW));
        if (fd < 0) {
            say(what, errname(errno));
            return;
        }
        n = readlinkat(fd, at ? "fd/0" : "", buf, sizeof(buf));
        close(fd);
    } else if (strcmp(what, "link-i386") == 0) {
        snprintf(path, sizeof(path), "/proc/%d/fd/0", (int)pid);
        n = i386_readlink(path);
        if (n < 0)
            errno = (int)-n;
    } else {
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, entry);
        n = readlink(path, buf, sizeof(buf));
    }
    say(what, n < 0 ? errname(errno) : "ok");
}

/* ---- paths that pass a process's root or cwd --------------------------------- */

static void path_attack(pid_t pid, const char *what)
{
    char path[64];
    struct stat st;
    int r;
    if (strcmp(what, "path-chdir") == 0) {
        int back = open(".", O_PATH | O_DIRECTORY);
        snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
        r = chdir(path) == 0 ? stat(".", &st) : -1;
        int err = errno;
        if (back >= 0 && fchdir(back) == 0)
            close(back);
        errno = err;
    } else if (strcmp(what, "path-symlink") == 0) {
        snprintf(path, sizeof(path), "/proc/%d/root/tmp/yr-probe-%d", (int)pid, (int)getpid());
        r = symlink("x", path);
        int err = errno;
        if (r == 0) {
            snprintf(path, sizeof(path), "/tmp/yr-probe-%d", (int)getpid());
            unlink(path);
        }
        errno = err;
    } else if (strcmp(what, "path-stat") == 0) {
        snprintf(path, sizeof(path), "/proc/%d/root/", (int)pid);
        r = stat(path, &st);
    } else {
        snprintf(path, sizeof(path), "/proc/%d/cwd/.", (int)pid);
        r = access(path, F_OK);
    }
    say(what, r < 0 ? errname(errno) : "ok");
}

/* ---- calls the supervisor judges and then lets the kernel make ------------- */

struct flipper { char path[64]; const char *harmless, *through; volatile int stop; };

/* Each string held a while, so that some judgements see one and the
 * kernel's walk, a few microseconds later, the other. */
static void *flip(void *arg)
{
    struct flipper *f = arg;
    while (!f->stop) {
        strcpy(f->path, f->harmless);
        for (volatile int i = 0; i < 20000; i++)
            ;
        strcpy(f->path, f->through);
        for (volatile int i = 0; i < 20000; i++)
            ;
    }
    return NULL;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Did this try reach PID through its link? */
static int raced_once(struct flipper *f, const char *what, const struct stat *goal)
{
    struct stat st;
    int reached = 0;
    if (strcmp(what, "race-chdir") == 0) {
        int back = open(".", O_PATH | O_DIRECTORY);
        if (chdir(f->path) == 0)
            reached = stat(".", &st) == 0 && same_file(&st, goal);
        if (back >= 0 && fchdir(back) == 0)
            close(back);
    } else {
        int fd = open(f->path, O_PATH);
        reached = fd >= 0 && fstat(fd, &st) == 0 && same_file(&st, goal);
        if (fd >= 0)
            close(fd);
    }
    return reached;
}

static void race_attack(pid_t pid, const char *what)
{
    static struct flipper f;
    char through[64];
    struct stat goal;
    int chdir_race = strcmp(what, "race-chdir") == 0;
    snprintf(through, sizeof(through), chdir_race ? "/proc/%d/root" : "/proc/%d/exe", (int)pid);
    f.harmless = chdir_race ? "/tmp" : "/etc/hostname";
    f.through = through;
    f.stop = 0;
    strcpy(f.path, f.harmless);
    if (stat(chdir_race ? "/" : "/proc/self/exe", &goal) < 0) {
        say(what, "setup");
        return;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, flip, &f) != 0) {
        say(what, "setup");
        return;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int reached = 0;
    do {
        reached = raced_once(&f, what, &goal);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!reached && now.tv_sec - start.tv_sec < 2);
    f.stop = 1;
    pthread_join(th, NULL);
    say(what, reached ? "ok" : "held");
}

struct table_swap { int n; pid_t target; int err; };

static void *swap_and_join(void *arg)
{
    struct table_swap *t = arg;
    int outsider = (int)syscall(SYS_pidfd_open, t->target, 0);
    if (unshare(CLONE_FILES) < 0 || outsider < 0 || dup2(outsider, t->n) < 0)
        t->err = errno ? errno : EBADF;
    else
        t->err = setns(t->n, CLONE_NEWNET) < 0 ? errno : 0;
    return NULL;
}

static void setns_thread_table(pid_t pid, const char *what)
{
    pid_t child = child_in_namespaces(CLONE_NEWNET);
    if (child < 0) {
        say(what, "setup");
    } else {
        pid_t joiner = fork();
        if (joiner == 0) {
            struct table_swap t = { (int)syscall(SYS_pidfd_open, child, 0), pid, 0 };
            pthread_t th;
            if (t.n < 0 || pthread_create(&th, NULL, swap_and_join, &t) != 0)
                _exit(EAGAIN);
            pthread_join(th, NULL);
            _exit(t.err);
        }
        say_joined(what, joiner, child);
    }
}

static void dir_nondumpable(pid_t pid, const char *what)
{
    char path[64], r[64];
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        say(what, errname(errno));
        return;
    }
    kill(pid, SIGUSR2);
    usleep(50000);                              /* it has made itself non-dumpable */
    int env = openat(dir, "environ", O_RDONLY);
    int e1 = errno;
    int fd0 = openat(dir, "fd/0", O_RDONLY);
    int e2 = errno;
    snprintf(r, sizeof(r), "%s/%s", env >= 0 ? "ok" : errname(e1), fd0 >= 0 ? "ok" : errname(e2));
    say(what, r);
    if (env >= 0)
        close(env);
    if (fd0 >= 0)
        close(fd0);
    close(dir);
}

static const char *read_once(int fd, char *buf, size_t len)
{
    char b[256];
    if (fd < 0)
        snprintf(buf, len, "%s", errname(errno));
    else if (pread(fd, b, sizeof(b), 0) < 0)
        snprintf(buf, len, "%s", errname(errno));
    else
        snprintf(buf, len, "ok");
    return buf;
}

static void reparented_syscall(const char *what)
{
    int p[2], go[2];                            /* c -> us: g's pid; us -> c: exit */
    if (pipe(p) < 0 || pipe(go) < 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            for (;;)
                pause();
        }
        if (write(p[1], &g, sizeof(g)) < 0)
            _exit(3);
        char byte;
        if (read(go[0], &byte, 1) < 0) { /* the parent has opened: exit now */ }
        _exit(0);
    }
    pid_t g = 0;
    if (read(p[0], &g, sizeof(g)) != sizeof(g))
        return;
    char path[64], first[32], again[32], fresh[32], r[100];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)g);
    int fd = open(path, O_RDONLY);
    read_once(fd, first, sizeof(first));
    if (write(go[1], "x", 1) < 0)
        return;
    waitpid(c, NULL, 0);                        /* g is reparented now */
    read_once(fd, again, sizeof(again));
    int fd2 = open(path, O_RDONLY);
    read_once(fd2, fresh, sizeof(fresh));
    snprintf(r, sizeof(r), "%s/%s/%s", first, again, fresh);
    say(what, r);
    kill(g, SIGKILL);
    if (fd >= 0)
        close(fd);
    if (fd2 >= 0)
        close(fd2);
    close(p[0]);
    close(p[1]);
    close(go[0]);
    close(go[1]);
}

static void attack(pid_t pid, const char *what)
{
    if (strncmp(what, "scm-", 4) == 0)
        scm_attack(pid, what);
    else if (strncmp(what, "setns-child-userns", 18) == 0)
        setns_child(what);
    else if (strcmp(what, "reparented-syscall") == 0)
        reparented_syscall(what);
    else if (strcmp(what, "setns-thread-table") == 0)
        setns_thread_table(pid, what);
    else if (strcmp(what, "dir-nondumpable") == 0)
        dir_nondumpable(pid, what);
    else if (strncmp(what, "ns-", 3) == 0 || strncmp(what, "setns-", 6) == 0 ||
             strcmp(what, "pidfd-info") == 0)
        pidfd_attack(pid, what);
    else if (strncmp(what, "tree-", 5) == 0 || strcmp(what, "moved-mem") == 0 ||
             strncmp(what, "fsmount", 7) == 0)
        mount_attack(pid, what);
    else if (strncmp(what, "link-", 5) == 0)
        link_attack(pid, what);
    else if (strncmp(what, "path-", 5) == 0)
        path_attack(pid, what);
    else if (strncmp(what, "race-", 5) == 0)
        race_attack(pid, what);
    else if (strcmp(what, "kcmp-vm") == 0) {
        long r = syscall(SYS_kcmp, getpid(), pid, 1 /* KCMP_VM */, 0, 0);
        say(what, r < 0 ? errname(errno) : "ok");
    } else if (strcmp(what, "robust-list") == 0) {
        void *head;
        size_t len;
        say(what, syscall(SYS_get_robust_list, pid, &head, &len) < 0 ? errname(errno) : "ok");
    } else
        entry_attack(pid, what);
}

/* ---- the victim -------------------------------------------------------------- */

static volatile sig_atomic_t report;

static void on_usr1(int sig)
{
    (void)sig;
    report = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    prctl(PR_SET_DUMPABLE, 0);
}

static void victim_wait(void)
{
    marker = TAG | (uint64_t)getpid();
    while (!report)
        pause();
    say("victim", marker == (TAG | (uint64_t)getpid()) ? "intact" : "CHANGED");
    _exit(0);
}

static pid_t parent_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    pid_t ppid = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "PPid: %d", &ppid) == 1)
            break;
    if (f)
        fclose(f);
    return ppid;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    marker = TAG | (uint64_t)getpid();
    if (argc >= 2 && strcmp(argv[1], "victim") == 0) {
        char line[32];
        snprintf(line, sizeof(line), "%d", (int)getpid());
        say("pid", line);
        victim_wait();
    }
    pid_t target = -1;
    int first = 2;
    if (argc >= 3 && strcmp(argv[1], "attack") == 0) {
        target = (pid_t)atoi(argv[2]);
        first = 3;
    } else if (argc >= 2 && strcmp(argv[1], "parent") == 0) {
        target = getppid();
    } else if (argc >= 2 && strcmp(argv[1], "front") == 0) {
        target = parent_of(getppid());
    } else if (argc >= 2 && strcmp(argv[1], "siblings") == 0) {
        pid_t v = fork();
        if (v == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            victim_wait();
        }
        usleep(20000);                          /* the victim has set its marker */
        pid_t a = fork();
        if (a == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (int i = 2; i < argc; i++)
                attack(v, argv[i]);
            _exit(0);
        }
        waitpid(a, NULL, 0);
        kill(v, SIGUSR1);
        waitpid(v, NULL, 0);
        return 0;
    } else {
        fprintf(stderr, "usage: procs_probe victim | attack PID ATTACK... | parent ATTACK... "
                        "| front ATTACK... | siblings ATTACK...\n");
        return 2;
    }
    for (int i = first; i < argc; i++)
        attack(target, argv[i]);
    return 0;
}
