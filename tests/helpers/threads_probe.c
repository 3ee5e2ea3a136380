/* threads_probe: yama-run's own threads and helper processes, named by their
 * thread ids, for tests/test_escape_threads.py.
 *
 *   threads_probe tids ATTACK...
 *       find every thread of the parent (under yama-run: the supervisor) but
 *       its leader: pidfd_open(X, PIDFD_THREAD) and PIDFD_GET_INFO for each
 *       number between the parent's pid and the last one the kernel gave
 *       (neither is a call yama-run routes); print "threads N", then each
 *       ATTACK against every one of them: "ATTACK ok" when it reached any,
 *       else the errno of the refusal ("ATTACK -" with no thread found).
 *   threads_probe race SECONDS MAKER... -- ROUTE...
 *       MAKERs, each in a thread of its own, make calls that yama-run serves
 *       with a short-lived thread (getfd: pidfd_getfd of a child's
 *       descriptor; perf: perf_event_open on a child; madvise:
 *       process_madvise of a child; async: O_ASYNC on a pipe) or a helper
 *       process (uidmap: open /proc/self/uid_map); meanwhile this thread
 *       watches the numbers just given (/proc/loadavg's last pid) and aims
 *       each ROUTE at every task there that is the parent's thread or a
 *       child of the parent but us: "race-ROUTE REACHED/TRIED ERRNO:N" (the
 *       tries that found the task still there, and how many were refused
 *       with the first errno met), "seen N" (tasks of the parent's found),
 *       "made N" (calls the makers made).
 *   threads_probe sibling-thread ATTACK...
 *       fork a victim V with a second thread T, and an actor A that is not
 *       V's ancestor; A aims each ATTACK at T by its thread id:
 *       "ATTACK ok" or the errno.
 *
 * Attacks by thread id (sig 0 where a signal is sent: permission only;
 * writes only opened, never written):
 *   attach seize vmread vmwrite getfd pidfd-signal pidfd-signal-thread
 *   pidfd-signal-pgrp
 *   kill tkill tgkill sigqueue tgsigqueue prlimit setpriority ioprio affinity
 *   setparam setscheduler setattr move-pages migrate-pages madvise kcmp robust ns
 *   setns perf perf-sigtrap setown-tid
 *   proc-mem proc-environ proc-fd proc-task-mem proc-task-environ
 *   proc-task-fd proc-opath-fd proc-fddir proc-syscall proc-stack
 *   proc-chdir-cwd stat-fd access-cwd link-fd link-cwd link-exe link-root link-ns
 *   link-task-fd
 *   write-oom write-task-oom write-timerslack
 *   write-sched write-comm write-clear-refs */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1UL << 2)
#endif
#ifndef PIDFD_SIGNAL_THREAD
#define PIDFD_SIGNAL_THREAD (1UL << 0)
#endif
#define PIDFD_GET_INFO_ _IOWR(0xFF, 11, struct pidfd_info_)
#define PIDFD_GET_NET_NAMESPACE_ _IO(0xFF, 4)
#define PIDFD_INFO_PID_ 1
#define KCMP_VM_ 1

struct pidfd_info_ {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
    uint32_t coredump_mask, pad;
};

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static void say(const char *name, const char *result)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s\n", name, result);
    if (write(1, line, (size_t)n) != n)
        _exit(3);
}

static int task_info(int pidfd, struct pidfd_info_ *info)
{
    memset(info, 0, sizeof *info);
    info->mask = PIDFD_INFO_PID_;
    return ioctl(pidfd, PIDFD_GET_INFO_, info);
}

static pid_t last_pid(void)
{
    char buf[128];
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ' ');
    return p ? atoi(p + 1) : -1;
}

static int pid_max(void)
{
    char buf[32] = "";
    int fd = open("/proc/sys/kernel/pid_max", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, buf, sizeof buf - 1) < 0)
            buf[0] = '\0';
        close(fd);
    }
    return atoi(buf) > 0 ? atoi(buf) : 32768;
}

/* ---- one attack on one task (tgid's thread tid) ------------------------------- */

static long rc_of(long rc) { return rc < 0 ? -errno : 0; }

static long open_rc(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

static long link_rc(const char *path)
{
    char buf[512];
    return readlink(path, buf, sizeof buf) < 0 ? -errno : 0;
}

static long perf_rc(pid_t tid, int sigtrap)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_DUMMY;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    if (sigtrap) {
        attr.sigtrap = 1;
        attr.remove_on_exec = 1;
    }
    int fd = (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* setns into the target's UTS namespace, in a child (a process with threads
 * may not join some): the child's errno as its exit status. */
static long setns_rc(int pidfd)
{
    pid_t kid = fork();
    if (kid == 0)
        _exit(setns(pidfd, CLONE_NEWUTS) == 0 ? 0 : errno);
    int st = 0;
    if (kid < 0 || waitpid(kid, &st, 0) < 0 || !WIFEXITED(st))
        return -EIO;
    return -WEXITSTATUS(st);
}

static long attack_one(const char *what, pid_t tgid, pid_t tid)
{
    char path[128];
    char buf[16];
    struct iovec local = { buf, sizeof buf }, remote = { (void *)0x1000, sizeof buf };
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();

    if (!strcmp(what, "attach"))
        return rc_of(ptrace(PTRACE_ATTACH, tid, 0, 0));
    if (!strcmp(what, "seize"))
        return rc_of(ptrace(PTRACE_SEIZE, tid, 0, 0));
    if (!strcmp(what, "vmread") || !strcmp(what, "vmwrite")) {
        /* an address never mapped: EFAULT only once the access was allowed */
        long rc = what[2] == 'r' ? process_vm_readv(tid, &local, 1, &remote, 1, 0)
                                 : process_vm_writev(tid, &local, 1, &remote, 1, 0);
        return rc < 0 && errno != EFAULT ? -errno : 0;
    }
    if (!strcmp(what, "kill"))
        return rc_of(kill(tid, 0));
    if (!strcmp(what, "tkill"))
        return rc_of(syscall(SYS_tkill, tid, 0));
    if (!strcmp(what, "tgkill"))
        return rc_of(syscall(SYS_tgkill, tgid, tid, 0));
    if (!strcmp(what, "sigqueue"))
        return rc_of(syscall(SYS_rt_sigqueueinfo, tid, 0, &si));
    if (!strcmp(what, "tgsigqueue"))
        return rc_of(syscall(SYS_rt_tgsigqueueinfo, tgid, tid, 0, &si));
    if (!strcmp(what, "prlimit")) {
        struct rlimit r = { RLIM_INFINITY, RLIM_INFINITY };   /* RTTIME: unlimited already */
        return rc_of(syscall(SYS_prlimit64, tid, RLIMIT_RTTIME, &r, NULL));
    }
    if (!strcmp(what, "setpriority")) {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, (id_t)tid);
        if (nice == -1 && errno)
            return -errno;
        return rc_of(setpriority(PRIO_PROCESS, (id_t)tid, nice));
    }
    if (!strcmp(what, "ioprio")) {
        long prio = syscall(SYS_ioprio_get, 1, tid);
        if (prio < 0)
            return -errno;
        return rc_of(syscall(SYS_ioprio_set, 1, tid, prio));
    }
    if (!strcmp(what, "affinity")) {
        cpu_set_t set;
        if (sched_getaffinity(tid, sizeof set, &set) < 0)
            return -errno;
        return rc_of(sched_setaffinity(tid, sizeof set, &set));
    }
    if (!strcmp(what, "setparam") || !strcmp(what, "setscheduler")) {
        struct sched_param p;
        int policy = sched_getscheduler(tid);
        if (policy < 0 || sched_getparam(tid, &p) < 0)
            return -errno;
        return what[3] == 'p' ? rc_of(sched_setparam(tid, &p))
                              : rc_of(sched_setscheduler(tid, policy, &p));
    }
    if (!strcmp(what, "setattr")) {
        uint32_t attr[14];                       /* struct sched_attr, version 1 (56 bytes) */
        memset(attr, 0, sizeof attr);
        if (syscall(SYS_sched_getattr, tid, attr, sizeof attr, 0) < 0)
            return -errno;
        attr[0] = sizeof attr;
        return rc_of(syscall(SYS_sched_setattr, tid, attr, 0));
    }
    if (!strcmp(what, "move-pages"))
        return rc_of(syscall(SYS_move_pages, tid, 0, NULL, NULL, NULL, 0));
    if (!strcmp(what, "migrate-pages")) {
        unsigned long nodes = 1;
        return rc_of(syscall(SYS_migrate_pages, tid, 8 * sizeof nodes, &nodes, &nodes));
    }
    if (!strcmp(what, "kcmp"))
        return rc_of(syscall(SYS_kcmp, getpid(), tid, KCMP_VM_, 0, 0));
    if (!strcmp(what, "robust")) {
        void *head;
        size_t len;
        return rc_of(syscall(SYS_get_robust_list, tid, &head, &len));
    }
    if (!strcmp(what, "perf"))
        return perf_rc(tid, 0);
    if (!strcmp(what, "perf-sigtrap"))
        return perf_rc(tid, 1);
    if (!strcmp(what, "setown-tid")) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return -errno;
        struct f_owner_ex owner = { F_OWNER_TID, tid };
        long rc = rc_of(fcntl(p[0], F_SETOWN_EX, &owner));
        close(p[0]);
        close(p[1]);
        return rc;
    }
    if (!strncmp(what, "getfd", 5) || !strncmp(what, "pidfd-", 6) || !strcmp(what, "madvise") ||
        !strcmp(what, "ns") || !strcmp(what, "setns")) {
        int pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
        if (pidfd < 0)
            return -errno;
        long rc;
        if (!strcmp(what, "getfd")) {
            int fd = (int)syscall(SYS_pidfd_getfd, pidfd, 0, 0);
            rc = fd < 0 ? -errno : 0;
            if (fd >= 0)
                close(fd);
        } else if (!strcmp(what, "pidfd-signal")) {
            rc = rc_of(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0));
        } else if (!strcmp(what, "pidfd-signal-thread")) {
            rc = rc_of(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, PIDFD_SIGNAL_THREAD));
        } else if (!strcmp(what, "pidfd-signal-pgrp")) {
            rc = rc_of(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, PIDFD_SIGNAL_PROCESS_GROUP));
        } else if (!strcmp(what, "madvise")) {
            struct iovec none = { NULL, 0 };
            rc = rc_of(syscall(SYS_process_madvise, pidfd, &none, 1, MADV_COLD, 0));
        } else if (!strcmp(what, "ns")) {
            int ns = ioctl(pidfd, PIDFD_GET_NET_NAMESPACE_, 0);
            rc = ns < 0 ? -errno : 0;
            if (ns >= 0)
                close(ns);
        } else {
            rc = setns_rc(pidfd);
        }
        close(pidfd);
        return rc;
    }
    static const struct { const char *name, *fmt; int flags; } procs[] = {
        { "proc-mem", "/proc/%2$d/mem", O_RDONLY },
        { "proc-environ", "/proc/%2$d/environ", O_RDONLY },
        { "proc-fd", "/proc/%2$d/fd/0", O_RDONLY },
        { "proc-task-mem", "/proc/%1$d/task/%2$d/mem", O_RDONLY },
        { "proc-task-environ", "/proc/%1$d/task/%2$d/environ", O_RDONLY },
        { "proc-task-fd", "/proc/%1$d/task/%2$d/fd/0", O_RDONLY },
        { "proc-opath-fd", "/proc/%2$d/fd/0", O_PATH },
        { "proc-fddir", "/proc/%2$d/fd", O_RDONLY | O_DIRECTORY },
        { "proc-syscall", "/proc/%2$d/syscall", O_RDONLY },
        { "proc-stack", "/proc/%2$d/stack", O_RDONLY },
        { "write-oom", "/proc/%2$d/oom_score_adj", O_WRONLY },
        { "write-task-oom", "/proc/%1$d/task/%2$d/oom_score_adj", O_WRONLY },
        { "write-timerslack", "/proc/%2$d/timerslack_ns", O_WRONLY },
        { "write-sched", "/proc/%2$d/sched", O_WRONLY },
        { "write-comm", "/proc/%2$d/comm", O_WRONLY },
        { "write-clear-refs", "/proc/%2$d/clear_refs", O_WRONLY },
    };
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
        if (!strcmp(what, procs[i].name)) {
            snprintf(path, sizeof path, procs[i].fmt, (int)tgid, (int)tid);
            long rc = open_rc(path, procs[i].flags);
            if (rc == 0 && !strcmp(what, "proc-syscall")) {
                /* the kernel checks on read: a read is the reach */
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                char b[128];
                rc = fd >= 0 && read(fd, b, sizeof b) >= 0 ? 0 : -errno;
                if (fd >= 0)
                    close(fd);
            }
            return rc;
        }
    if (!strcmp(what, "stat-fd") || !strcmp(what, "access-cwd")) {
        struct stat st;
        snprintf(path, sizeof path, what[0] == 's' ? "/proc/%d/fd/0" : "/proc/%d/cwd/.",
                 (int)tid);
        return what[0] == 's' ? rc_of(stat(path, &st)) : rc_of(access(path, F_OK));
    }
    if (!strcmp(what, "proc-chdir-cwd")) {
        int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        snprintf(path, sizeof path, "/proc/%d/cwd", (int)tid);
        long rc = rc_of(chdir(path));
        if (here >= 0) {
            if (fchdir(here) < 0)
                rc = -EIO;
            close(here);
        }
        return rc;
    }
    static const struct { const char *name, *fmt; } links[] = {
        { "link-fd", "/proc/%2$d/fd/0" }, { "link-cwd", "/proc/%2$d/cwd" },
        { "link-exe", "/proc/%2$d/exe" }, { "link-task-fd", "/proc/%1$d/task/%2$d/fd/0" },
        { "link-root", "/proc/%2$d/root" }, { "link-ns", "/proc/%2$d/ns/net" },
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (!strcmp(what, links[i].name)) {
            snprintf(path, sizeof path, links[i].fmt, (int)tgid, (int)tid);
            return link_rc(path);
        }
    return -ENOSYS;
}

/* ---- tids: every thread of the parent ----------------------------------------- */

static int threads_of(pid_t tgid, pid_t *out, int max)
{
    int n = 0, top = pid_max();
    pid_t last = last_pid();
    for (pid_t x = tgid + 1; n < max; x++) {
        if (x >= top)
            x = 300;                      /* the kernel wraps to 300 */
        if (x == tgid || (last > tgid ? x > last : (x > last && x < tgid)))
            break;
        int fd = (int)syscall(SYS_pidfd_open, x, PIDFD_THREAD);
        if (fd < 0)
            continue;
        struct pidfd_info_ info;
        if (task_info(fd, &info) == 0 && (pid_t)info.tgid == tgid && x != tgid)
            out[n++] = x;
        close(fd);
    }
    return n;
}

static int cmd_tids(int argc, char **argv)
{
    pid_t sup = getppid();
    pid_t tids[256];
    int n = threads_of(sup, tids, 256);
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    say("threads", count);
    for (int i = 0; i < argc; i++) {
        long worst = 1;
        for (int k = 0; k < n; k++) {
            long rc = attack_one(argv[i], sup, tids[k]);
            if (rc == 0 || worst == 1 || (worst < 0 && rc != -ESRCH))
                worst = rc;
            if (rc == 0)
                break;
        }
        say(argv[i], worst == 1 ? "-" : worst == 0 ? "ok" : errname((int)-worst));
    }
    return 0;
}

/* ---- race: the short-lived threads and helper processes ------------------------- */

static atomic_int stop;
static atomic_long made;

static pid_t idle_child(void)
{
    pid_t me = getpid(), kid = fork();
    if (kid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != me)
            _exit(0);
        for (;;)
            pause();
    }
    return kid;
}

static void *maker(void *arg)
{
    const char *kind = arg;
    pid_t kid = idle_child();
    int pidfd = (int)syscall(SYS_pidfd_open, kid, 0);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return NULL;
    while (!atomic_load(&stop)) {
        if (!strcmp(kind, "getfd")) {
            int fd = (int)syscall(SYS_pidfd_getfd, pidfd, 0, 0);
            if (fd >= 0)
                close(fd);
        } else if (!strcmp(kind, "perf")) {
            perf_rc(kid, 0);
        } else if (!strcmp(kind, "madvise")) {
            struct iovec none = { NULL, 0 };
            syscall(SYS_process_madvise, pidfd, &none, 1, MADV_COLD, 0);
        } else if (!strcmp(kind, "async")) {
            fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
            fcntl(p[0], F_SETFL, O_NONBLOCK);
        } else if (!strcmp(kind, "uidmap")) {
            int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                close(fd);
        }
        atomic_fetch_add(&made, 1);
    }
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmd_race(int argc, char **argv)
{
    pid_t sup = getppid(), me = getpid();
    double seconds = atof(argv[0]);
    int i = 1;
    pthread_t makers[16];
    int nmakers = 0;
    for (; i < argc && strcmp(argv[i], "--"); i++)
        if (nmakers < 16 && pthread_create(&makers[nmakers], NULL, maker, argv[i]) == 0)
            nmakers++;
    char **routes = argv + i + 1;
    int nroutes = argc - i - 1;
    if (nroutes < 0)
        nroutes = 0;
    long reached[64] = { 0 }, tried[64] = { 0 }, refused[64] = { 0 };
    int first_err[64] = { 0 };
    long seen = 0, helpers = 0;
    int top = pid_max();
    double end = now() + seconds;
    while (now() < end) {
        pid_t last = last_pid();
        for (pid_t x = last; x <= last + 3; x++) {
            pid_t t = x >= top ? x - top + 300 : x;
            if (t <= 0 || t == me || t == sup)
                continue;
            int fd = (int)syscall(SYS_pidfd_open, t, PIDFD_THREAD);
            if (fd < 0)
                continue;
            struct pidfd_info_ info;
            int ours = task_info(fd, &info) == 0 &&
                       ((pid_t)info.tgid == sup || ((pid_t)info.ppid == sup &&
                                                    (pid_t)info.tgid != me));
            close(fd);
            if (!ours)
                continue;
            seen++;
            pid_t tgid = (pid_t)info.tgid;
            if (tgid != sup)
                helpers++;
            for (int r = 0; r < nroutes && r < 64; r++) {
                long rc = attack_one(routes[r], tgid, t);
                if (rc == -ESRCH || rc == -ENOENT)
                    continue;              /* gone before the attack: not a try */
                tried[r]++;
                if (rc == 0)
                    reached[r]++;
                else if (!first_err[r])
                    first_err[r] = (int)-rc;
                if (rc < 0 && (int)-rc == first_err[r])
                    refused[r]++;
            }
        }
    }
    atomic_store(&stop, 1);
    for (int k = 0; k < nmakers; k++)
        pthread_join(makers[k], NULL);
    char line[64], name[96];
    snprintf(line, sizeof line, "%ld", seen);
    say("seen", line);
    snprintf(line, sizeof line, "%ld", helpers);
    say("helpers", line);
    snprintf(line, sizeof line, "%ld", atomic_load(&made));
    say("made", line);
    for (int r = 0; r < nroutes && r < 64; r++) {
        snprintf(name, sizeof name, "race-%s", routes[r]);
        snprintf(line, sizeof line, "%ld/%ld %s:%ld", reached[r], tried[r],
                 first_err[r] ? errname(first_err[r]) : "-", refused[r]);
        say(name, line);
    }
    return 0;
}

/* ---- a sibling's second thread --------------------------------------------------- */

static void *idle_thread(void *arg)
{
    int *tid_out = arg;
    *tid_out = (int)gettid();
    for (;;)
        pause();
    return NULL;
}

static int cmd_sibling_thread(int argc, char **argv)
{
    int ready[2], go[2];
    if (pipe(ready) < 0 || pipe(go) < 0)
        return 2;
    pid_t victim = fork();
    if (victim == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        static int tid;
        pthread_t t;
        pthread_create(&t, NULL, idle_thread, &tid);
        while (!__atomic_load_n(&tid, __ATOMIC_SEQ_CST))
            usleep(1000);
        if (write(ready[1], &tid, sizeof tid) != sizeof tid)
            _exit(1);
        for (;;)
            pause();
    }
    int tid = 0;
    if (read(ready[0], &tid, sizeof tid) != sizeof tid)
        return 2;
    pid_t actor = fork();
    if (actor == 0) {
        for (int i = 0; i < argc; i++) {
            long rc = attack_one(argv[i], victim, tid);
            say(argv[i], rc == 0 ? "ok" : errname((int)-rc));
        }
        _exit(0);
    }
    waitpid(actor, NULL, 0);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "tids"))
        return cmd_tids(argc - 2, argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "race"))
        return cmd_race(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "sibling-thread"))
        return cmd_sibling_thread(argc - 2, argv + 2);
    fprintf(stderr, "usage: threads_probe tids|race|sibling-thread ...\n");
    return 2;
}
