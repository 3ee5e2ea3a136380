/* Facts about tasks. /proc reads cost 9-16 us each on this kind of machine,
 * so the common questions are answered with cheaper syscalls first. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "engine.h"
#include "pidfd.h"
#include "yama.h"

/* Does thread tid belong to process tgid? tgkill with signal 0 matches the
 * pair before it checks permission, so EPERM also means yes. */
static int thread_in_group(pid_t tgid, pid_t tid)
{
    if (syscall(SYS_tgkill, tgid, tid, 0) == 0)
        return 1;
    return errno == EPERM;
}

static ssize_t read_proc(pid_t pid, const char *file, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    return yr_read_text(path, buf, size);
}

/* pid's group, session and controlling terminal (fields 5-7 of its stat):
 * -ESRCH when it is gone (ENOENT, ESRCH), another -errno when /proc could
 * not tell (EMFILE: out of descriptors; EIO: a line not understood), which a
 * walk must never take for "gone". */
int yr_stat_ids(pid_t pid, struct yr_stat_ids *out)
{
    static const int fields[] = { 5, 6, 7 };
    char buf[1024];
    long long v[3];
    if (read_proc(pid, "stat", buf, sizeof(buf)) < 0)
        return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
    if (yr_stat_fields(buf, fields, 3, v) < 0)
        return -EIO;
    out->pgrp = (pid_t)v[0];
    out->session = (pid_t)v[1];
    out->tty = (int)v[2];
    return 0;
}

void yr_comm_of(pid_t tid, char *buf, size_t size)
{
    if (read_proc(tid, "comm", buf, size) <= 0)
        buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

static int task_info(pid_t pid, struct yr_pidfd_info *info);
static pid_t parent_aged(pid_t pid, unsigned long long *age);

/* Thread ids are unique while they live; a cached answer is re-checked with
 * tgkill, so a reused tid can never inherit a stale process. */
#define TGID_CACHE 256
static struct { pid_t tid, tgid; } tgid_cache[TGID_CACHE];

pid_t yr_tgid_of(pid_t tid)
{
    if (tid <= 0) {
        errno = ESRCH;
        return -1;
    }
    if (thread_in_group(tid, tid))
        return tid;                       /* the common case: a process's main thread */
    unsigned slot = (unsigned)tid % TGID_CACHE;
    if (tgid_cache[slot].tid == tid && thread_in_group(tgid_cache[slot].tgid, tid))
        return tgid_cache[slot].tgid;
    struct yr_pidfd_info info;
    if (task_info(tid, &info) < 0 || info.tgid == 0)
        return -1;
    tgid_cache[slot].tid = tid;
    tgid_cache[slot].tgid = (pid_t)info.tgid;
    return (pid_t)info.tgid;
}

/* Kept descriptors per task: a pidfd answers PIDFD_GET_INFO (its tgid and
 * real parent) in one ioctl, where /proc/PID/stat costs a text rendering of
 * some fifty fields; /proc/PID/status (TracerPid, the only place the kernel
 * tells who traces a task) is read again with pread, without an open.
 * Freshness: a pidfd, like a /proc/PID file, is bound to the struct pid it
 * was opened for, never to the number (an execve by another thread hands
 * the leader's to that thread: the same process, led anew). Once that task is
 * reaped, PIDFD_GET_INFO answers ESRCH and a read of the file fails, so a
 * later task with the same number is never answered for through the old
 * descriptor: the entry is dropped and the number opened again. The values
 * (parent, tracer) are never cached, only the descriptor: each answer is
 * the kernel's at the moment of the call, as a fresh read would be. */
#define TASK_CACHE 256
static struct task_fds { pid_t pid; int pidfd, status; } task_cache[TASK_CACHE];
static pthread_mutex_t task_lock = PTHREAD_MUTEX_INITIALIZER;

static void task_drop(struct task_fds *t)
{
    if (t->pidfd > 0)
        close(t->pidfd);
    if (t->status > 0)
        close(t->status);
    t->pid = t->pidfd = t->status = 0;
}

/* The slot of pid, emptied first if it held another number (lock held). */
static struct task_fds *task_slot(pid_t pid)
{
    struct task_fds *t = &task_cache[(unsigned)pid % TASK_CACHE];
    if (t->pid != pid) {
        task_drop(t);
        t->pid = pid;
    }
    return t;
}

static int info_ioctl(int pidfd, struct yr_pidfd_info *info)
{
    memset(info, 0, sizeof(*info));
    info->mask = YR_PIDFD_INFO_PID;
    return ioctl(pidfd, YR_PIDFD_GET_INFO, info);
}

/* A process's age, from a pidfd of it: its pidfs inode number (Linux
 * 6.9+), given to each struct pid when it is allocated, from a 64-bit
 * counter never reused, so a smaller number is an older process (an exec
 * by another thread keeps the process's struct pid). 0: not known (pidfds
 * not on pidfs). */
static unsigned long long pidfd_age(int pidfd)
{
    static int on_pidfs = -1;    /* the same answer from every thread: no lock */
    struct statfs fs;
    struct stat st;
    if (on_pidfs < 0)
        on_pidfs = fstatfs(pidfd, &fs) == 0 && fs.f_type == YR_PIDFS_MAGIC;
    return on_pidfs == 1 && fstat(pidfd, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* PIDFD_GET_INFO of task pid (any thread), or -1 (gone: errno ESRCH); and,
 * if age is not NULL, its process's age (pidfd_age) from the same pidfd
 * the answer came through: both are of one process. */
static int task_info_aged(pid_t pid, struct yr_pidfd_info *info, unsigned long long *age)
{
    if (pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    pthread_mutex_lock(&task_lock);
    struct task_fds *t = task_slot(pid);
    int rc = t->pidfd > 0 ? info_ioctl(t->pidfd, info) : -1;
    if (rc < 0) {
        if (t->pidfd > 0)
            close(t->pidfd);
        t->pidfd = (int)syscall(SYS_pidfd_open, pid, YR_PIDFD_THREAD);
        rc = t->pidfd > 0 ? info_ioctl(t->pidfd, info) : -1;
        if (rc < 0)
            task_drop(t);
    }
    int e = errno;
    if (rc == 0 && age)
        *age = pidfd_age(t->pidfd);
    pthread_mutex_unlock(&task_lock);
    errno = e;
    return rc;
}

static int task_info(pid_t pid, struct yr_pidfd_info *info)
{
    return task_info_aged(pid, info, NULL);
}

/* /proc/PID/status of a task, read through a kept descriptor (lock free:
 * own buffer). */
static ssize_t read_status(pid_t pid, char *buf, size_t size)
{
    pthread_mutex_lock(&task_lock);
    struct task_fds *t = task_slot(pid);
    ssize_t n = t->status > 0 ? pread(t->status, buf, size - 1, 0) : -1;
    if (n <= 0) {
        if (t->status > 0)
            close(t->status);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        t->status = open(path, O_RDONLY | O_CLOEXEC);
        n = t->status > 0 ? pread(t->status, buf, size - 1, 0) : -1;
        if (n <= 0) {
            close(t->status);
            t->status = 0;
            n = -1;
        }
    }
    pthread_mutex_unlock(&task_lock);
    if (n > 0)
        buf[n] = '\0';
    return n;
}

/* The tgid of pid's real parent, 0 for pid 1's (and for a task whose
 * parent is outside our pid namespace, as /proc/PID/stat says). */
pid_t yr_ppid_of(pid_t pid)
{
    unsigned long long age;
    return parent_aged(pid, &age);
}

/* The same, and pid's process's age (pidfd_age; 0: not known). */
static pid_t parent_aged(pid_t pid, unsigned long long *age)
{
    struct yr_pidfd_info info;
    *age = 0;
    if (task_info_aged(pid, &info, age) == 0)
        return (pid_t)info.ppid;
    if (errno == ESRCH)
        return -1;
    /* a kernel without PIDFD_GET_INFO (before 6.13): field 4 of its stat */
    static const int ppid_field[] = { 4 };
    char buf[1024];
    long long ppid;
    if (read_proc(pid, "stat", buf, sizeof(buf)) < 0 ||
        yr_stat_fields(buf, ppid_field, 1, &ppid) < 0)
        return -1;
    return (pid_t)ppid;
}

/* The thread that ptraces pid, 0 if none. */
pid_t yr_tracer_of(pid_t pid)
{
    char buf[4096];
    if (read_status(pid, buf, sizeof(buf)) < 0)
        return -1;
    const char *line = strstr(buf, "\nTracerPid:");
    return line ? (pid_t)strtol(line + 11, NULL, 10) : -1;
}

/* Yama's task_is_descendant: both ends taken to their thread-group leaders,
 * the walk follows real parents. 1 yes, 0 no, -1 the target is gone.
 * It stops at the first process older than the ancestor (pidfd_age): that
 * one is not its descendant, and none of its own ancestors is the ancestor,
 * since each process is younger than its real parent (a child is made
 * after its parent; an orphan is re-parented to a subreaper above it or to
 * its namespace's init, never to a younger process). So a walk from a
 * process outside the sandbox, asked about the supervisor, ends at the
 * first process started before the supervisor, however deep the tree
 * (every open of an outsider's /proc entry asks it, contained: a chain
 * 1,000 deep cost 2.7 ms an open). Races: a number on the way taken over
 * by a new process after its parent was read names a younger process,
 * which never stops the walk early (the walk goes on as before); the
 * ancestor's age is read once, for the process holding its number then. */
int yr_is_descendant(pid_t ancestor_tgid, pid_t tid)
{
    pid_t walker = yr_tgid_of(tid);
    if (walker < 0)
        return -1;
    unsigned long long oldest, age;
    if (parent_aged(ancestor_tgid, &oldest) < 0)
        oldest = 0;
    for (int depth = 0; walker > 0 && depth < 4096; depth++) {
        if (walker == ancestor_tgid)
            return 1;
        if (depth == YR_COSTLY_GENERATIONS)
            yr_pool_built_to_cost_here();    /* a chain built to cost (engine.h) */
        walker = parent_aged(walker, &age);
        if (oldest && age && age < oldest)
            return 0;
    }
    return 0;
}

/* A process and the numbers of its stat. */
struct stat_ids {
    pid_t pid;
    struct yr_stat_ids ids;
};

/* The table all_sessions fills. */
struct session_table {
    struct stat_ids *all;
    size_t n, room;
};

static int add_session(pid_t pid, void *arg)
{
    struct session_table *t = arg;
    if (t->n == t->room) {
        struct stat_ids *more = realloc(t->all, (t->room *= 2) * sizeof(*more));
        if (!more)
            return -ENOMEM;
        t->all = more;
    }
    int rc = yr_stat_ids(pid, &t->all[t->n].ids);
    if (rc == 0)
        t->all[t->n++].pid = pid;
    return rc;
}

/* Every process's session and terminal, read once (a /proc read each):
 * n of them in a table the caller frees, or NULL with errno set. A process
 * whose stat cannot be read (out of descriptors, not understood) fails the
 * walk (yr_proc_walk; passed over, it was once taken for no member of the
 * session, and the caller's O_ASYNC went on: fail open). */
static struct stat_ids *all_sessions(size_t *n)
{
    struct session_table t = { .room = 1024 };
    t.all = malloc(t.room * sizeof(*t.all));
    int rc = t.all ? yr_proc_walk_all(add_session, &t) : -ENOMEM;
    if (rc < 0) {
        free(t.all);
        errno = -rc;
        return NULL;
    }
    *n = t.n;
    return t.all;
}

static int listed(const pid_t *list, size_t k, pid_t pid)
{
    for (size_t i = 0; i < k; i++)
        if (list[i] == pid)
            return 1;
    return 0;
}

/* The sessions tty_nr is the controlling terminal of, in held: one, or two
 * for a moment while it changes hands (TIOCSCTTY's steal); how many. */
static size_t sessions_of_tty(const struct stat_ids *all, size_t n, int tty_nr, pid_t *held)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].ids.tty == tty_nr && !listed(held, k, all[i].ids.session))
            held[k++] = all[i].ids.session;
    return k;
}

/* Not atomic, as a walk of /proc is not: a process that joins a session
 * meanwhile is a new child of a member (a session gains no member from
 * outside it). As snprintf: up to max written, all counted; -errno when
 * /proc could not tell. */
int yr_session_members(int tty_nr, int32_t *pids, int max)
{
    size_t n;
    struct stat_ids *all = all_sessions(&n);
    if (!all)
        return -errno;
    pid_t *held = malloc((n + 1) * sizeof(*held));
    int found = held ? 0 : -ENOMEM;
    size_t k = held ? sessions_of_tty(all, n, tty_nr, held) : 0;
    for (size_t i = 0; i < n && found >= 0; i++)
        if (listed(held, k, all[i].ids.session) && found++ < max)
            pids[found - 1] = all[i].pid;
    free(held);
    free(all);
    return found;
}

/* Is the process numbered pid's real uid uid? 1, 0, or -errno (-ESRCH: gone;
 * another when /proc could not tell, never taken for "no"). Read by path,
 * not through read_status's kept descriptors: a walk of every process
 * would fill their slots. */
static int ruid_is(pid_t pid, uint32_t uid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (yr_read_text(path, buf, sizeof(buf)) < 0)
        return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
    const char *line = strstr(buf, "\nUid:");
    unsigned long ruid;
    return line && sscanf(line + 5, "%lu", &ruid) == 1 ? ruid == uid : -EIO;
}

/* Is pid a member: of group pgrp (> 0), else of real uid uid? As ruid_is. */
static int in_set(pid_t pid, pid_t pgrp, uint32_t uid)
{
    if (pgrp <= 0)
        return ruid_is(pid, uid);
    struct yr_stat_ids ids;
    int rc = yr_stat_ids(pid, &ids);
    return rc < 0 ? rc : ids.pgrp == pgrp;
}

/* What yr_set_members looks for, and what it found. */
struct set_search {
    pid_t pgrp;
    uint32_t uid;
    int32_t *pids;
    int max, found;
};

static int add_member(pid_t pid, void *arg)
{
    struct set_search *q = arg;
    int rc = in_set(pid, q->pgrp, q->uid);
    if (rc > 0 && q->found++ < q->max)
        q->pids[q->found - 1] = (int32_t)pid;
    return rc < 0 ? rc : 0;
}

/* Every process of a group or of a real uid, in one pass over /proc, the
 * GIL let go (guard.py's walk in Python held a receiver 400 ms beside 3,000
 * processes). Not atomic, as the kernel's own loop is not either for these
 * calls' purposes: a process that joins meanwhile may be missed. As
 * snprintf: up to max written, all counted; -errno when a process could
 * not be read (yr_proc_walk: a set that held the supervisor was judged
 * without it). */
int yr_set_members(pid_t pgrp, uint32_t uid, int32_t *pids, int max)
{
    struct set_search q = { .pgrp = pgrp, .uid = uid, .pids = pids, .max = max };
    int rc = yr_proc_walk_all(add_member, &q);
    return rc < 0 ? rc : q.found;
}

/* ---- the walk of /proc ----------------------------------------------------- */

/* Each process entry of /proc, listed from procdir on (its place in the
 * listing is the descriptor's), given to visit, which returns 0 to go on,
 * YR_WALK_STOP to stop after this entry (the next call on procdir goes on
 * after it: /proc places a process's entry by its number, whatever came or
 * went meanwhile), or -errno to fail the walk. -ESRCH, a process gone, is
 * passed over; any other error ends the walk with it: a process /proc could
 * not tell of (out of descriptors, a line not understood) is never taken
 * for one outside the set a walk looks for (each of this walk's callers
 * once did, and judged a set without the supervisor, or a session without
 * a member). Returns 0 at the end of the listing, YR_WALK_STOP, or -errno. */
int yr_proc_walk(int procdir, int (*visit)(pid_t pid, void *arg), void *arg)
{
    char buf[8192] __attribute__((aligned(8)));
    for (;;) {
        ssize_t len = getdents64(procdir, buf, sizeof(buf));
        if (len <= 0)
            return len < 0 ? -errno : 0;
        for (ssize_t at = 0; at < len;) {
            struct dirent64 *d = (struct dirent64 *)(buf + at);
            at += d->d_reclen;
            char *end;
            long pid = strtol(d->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            int rc = visit((pid_t)pid, arg);
            if (rc == -ESRCH || rc == 0)
                continue;
            if (rc < 0)
                return rc;
            return lseek(procdir, d->d_off, SEEK_SET) < 0 ? -errno : YR_WALK_STOP;
        }
    }
}

/* yr_proc_walk over the whole of /proc, from a descriptor of its own. */
int yr_proc_walk_all(int (*visit)(pid_t pid, void *arg), void *arg)
{
    int procdir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procdir < 0)
        return -errno;
    int rc = yr_proc_walk(procdir, visit, arg);
    close(procdir);
    return rc;
}

int yr_caps3(pid_t tid, uint64_t *eff, uint64_t *perm, uint64_t *inh)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, tid };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    *eff = (uint64_t)data[1].effective << 32 | data[0].effective;
    *perm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
    *inh = (uint64_t)data[1].inheritable << 32 | data[0].inheritable;
    return 0;
}

int yr_caps(pid_t tid, uint64_t *eff, uint64_t *perm)
{
    uint64_t inh;
    return yr_caps3(tid, eff, perm, &inh);
}

int yr_cap_effective(pid_t tid, uint64_t *out)
{
    uint64_t perm;
    return yr_caps(tid, out, &perm);
}

/* Does task tid hold an mm (the kernel's get_task_mm)? 1 yes; 0 no: a
 * zombie, a thread that exited while its process lives on, a kernel thread
 * (/proc/TID/status shows the Vm lines only for a task with one); -1 gone.
 * A task that has none never gains one: only its number can be taken again. */
int yr_task_has_mm(pid_t tid)
{
    char buf[4096];
    if (read_status(tid, buf, sizeof(buf)) < 0)
        return -1;
    return strstr(buf, "\nVmSize:") != NULL;
}

/* A copy of descriptor fd of process tgid's leader, taken into the supervisor. */
static int fetch_leader_fd(pid_t tgid, int fd)
{
    int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
    if (pidfd < 0)
        return -errno;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int e = errno;
    close(pidfd);
    return copy < 0 ? -e : copy;
}

/* A copy of the caller's descriptor fd, from the calling thread's own table,
 * as the kernel reads it (current->files): a thread cloned without
 * CLONE_FILES, or that unshared it, holds another file under the same number
 * than its leader (whose table is empty once it exited). PIDFD_THREAD (6.9+)
 * names that thread's table; without it only a leader's can be read. */
int yr_fetch_thread_fd(pid_t tid, pid_t tgid, int fd)
{
    int pidfd = (int)syscall(SYS_pidfd_open, tid, O_EXCL);     /* PIDFD_THREAD */
    if (pidfd < 0 && tid != tgid)
        return -EPERM;      /* no PIDFD_THREAD: the leader's table may hold another file */
    if (pidfd < 0)
        return fetch_leader_fd(tgid, fd);
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int e = errno;
    close(pidfd);
    return copy < 0 ? -e : copy;
}

/* kcmp(2): 0 when the two tasks share the object of the kind asked, 1 or 2
 * when not, -1 when they cannot be compared (gone, or not ours to compare). */
int yr_kcmp(pid_t a, pid_t b, int kind)
{
    long rc = syscall(SYS_kcmp, a, b, kind, 0, 0);
    return rc < 0 ? -1 : (int)rc;
}

#define KCMP_VM 1

/* The pidfs inode of task tid's struct pid, from a pidfd of that very task
 * (PIDFD_THREAD): numbered at allocation from a counter, never reused. 0
 * when it cannot be had (gone, or a kernel before pidfs, 6.9). */
static unsigned long long pid_inode(pid_t tid)
{
    int fd = (int)syscall(SYS_pidfd_open, tid, YR_PIDFD_THREAD);
    if (fd < 0)
        return 0;
    struct stat st;
    struct statfs fs;
    unsigned long long ino = fstatfs(fd, &fs) == 0 && fs.f_type == YR_PIDFS_MAGIC &&
                             fstat(fd, &st) == 0 ? st.st_ino : 0;
    close(fd);
    return ino;
}

/* Does task tid share the caller's mm (clone(CLONE_VM) without CLONE_THREAD,
 * as vfork and posix_spawn make it)? The kernel's mm_access asks no ptrace
 * question of such a task at all ("mm != current->mm"): neither its own
 * rule nor Yama. 1 yes, 0 no or unknown (fail closed: the caller's rule as
 * before). *ino: the pidfs inode of the task compared (yr_still_shares_mm).
 * kcmp names both tasks by number. The caller's is its own: it waits in its
 * call, and a task holds its number until it is reaped. The target's number
 * names the same struct pid before and after the kcmp (its inode, never
 * reused), so it named it throughout: a task that took the number in
 * between, which could share the mm where the one judged does not, is
 * never the one compared. */
int yr_shares_mm(pid_t caller_tid, pid_t tid, unsigned long long *ino)
{
    unsigned long long before = pid_inode(tid);
    int same = before && yr_kcmp(caller_tid, tid, KCMP_VM) == 0;
    *ino = before;
    return same && pid_inode(tid) == before;
}

/* After an open that yr_shares_mm allowed: does the task of inode ino still
 * share the caller's mm? A task that exec'd meanwhile has a new mm, and no
 * task ever comes to share an mm again once it left it (only clone makes a
 * sharer), so yes now and yes before means yes all along, at the open too. */
int yr_still_shares_mm(pid_t caller_tid, pid_t tid, unsigned long long ino)
{
    unsigned long long now;
    return ino && yr_shares_mm(caller_tid, tid, &now) && now == ino;
}

/* The caller's descriptor fd, opened again as an O_PATH file of ours, through
 * pidfd_getfd. For when /proc/TID/fd/ cannot be searched: a non-dumpable
 * task's /proc entries belong to the root of its user namespace
 * (task_dump_owner), which the sandbox's namespace does not map, so only
 * CAP_SYS_PTRACE over the task (which its owner has) reaches its files. */
int yr_caller_fd_reopen(pid_t tid, pid_t tgid, int fd, int flags)
{
    int pidfd = (int)syscall(SYS_pidfd_open, tid, O_EXCL);     /* PIDFD_THREAD, 6.9+ */
    if (pidfd < 0)
        pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
    if (pidfd < 0)
        return -errno;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int e = errno;
    close(pidfd);
    if (copy < 0)
        return -e;
    char name[32];
    snprintf(name, sizeof(name), "/proc/self/fd/%d", copy);
    int out = open(name, flags | O_PATH | O_CLOEXEC);
    e = errno;
    close(copy);
    return out < 0 ? -e : out;
}

int yr_set_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* ---- pids as the caller means them -------------------------------------------
 *
 * A caller in a pid namespace of its own names tasks by their numbers there.
 * NS_GET_PID_FROM_PIDNS (Linux 6.11) asks the kernel for the task that number
 * names in the caller's namespace (find_task_by_pid_ns) and gives its number
 * in ours: one ioctl, whatever the number of tasks. Older kernels have no
 * such question: a caller of another namespace is then refused (-ENOSYS), never
 * answered by a scan of every task. */
#define YR_NS_GET_PID_FROM_PIDNS 0x8004b706      /* _IOR(0xb7, 0x6, int) */

static struct stat own_pidns;
static int pidns_known, pidns_ioctl = -1;
static pthread_mutex_t pidns_lock = PTHREAD_MUTEX_INITIALIZER;

static int pidns_setup(void)
{
    pthread_mutex_lock(&pidns_lock);
    if (!pidns_known) {
        int fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &own_pidns) == 0) {
            /* Does the kernel know the question? Asked about ourselves. */
            long got = ioctl(fd, YR_NS_GET_PID_FROM_PIDNS, (unsigned long)getpid());
            pidns_ioctl = got == getpid();
            pidns_known = 1;
        }
        if (fd >= 0)
            close(fd);
    }
    pthread_mutex_unlock(&pidns_lock);
    return pidns_known ? 0 : -1;
}

pid_t yr_pid_from_caller(pid_t caller_tid, pid_t pid)
{
    if (pid <= 0)
        return 0;
    if (pidns_setup() < 0)
        return -ENOSYS;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)caller_tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;                           /* the caller is gone */
    struct stat st;
    pid_t ours;
    if (fstat(fd, &st) < 0) {
        ours = 0;
    } else if (st.st_ino == own_pidns.st_ino && st.st_dev == own_pidns.st_dev) {
        ours = pid;                         /* our namespace: our numbers */
    } else if (!pidns_ioctl) {
        ours = -ENOSYS;
    } else {
        long got = ioctl(fd, YR_NS_GET_PID_FROM_PIDNS, (unsigned long)pid);
        ours = got > 0 ? (pid_t)got : 0;    /* ESRCH (ENOTTY on some 6.1x): none */
    }
    close(fd);
    return ours;
}

/* ---- exec by a non-leader thread -------------------------------------------------
 *
 * Yama ties a PR_SET_PTRACER relation to task_structs; exec by a non-leader
 * thread T frees the old leader (de_thread) and T takes the process's pid.
 * Pidfds follow pids, not tasks, so the supervisor notes each such execve
 * here, while T still waits on it (nothing has happened yet), with what tells
 * later whether it succeeded: a pidfd of T's own tid (released when the old
 * leader, which takes that tid, is freed -- or when T itself ends), a pidfd of
 * the process, and the old mm pinned through /proc/T/mem (it reads EOF once
 * the exec has replaced it) with its layout. Python takes the notes from its
 * own thread (yr_exec_take, woken through an eventfd); the queue is bounded,
 * and a note that cannot be taken whole is kept as "lost", which Python
 * treats as a successful exec (relations dropped: fail closed). */
#define EXEC_QUEUE 64
static struct yr_exec_note exec_queue[EXEC_QUEUE];
static int exec_head, exec_count, exec_lost, exec_watching, exec_efd = -1;
static pthread_mutex_t exec_lock = PTHREAD_MUTEX_INITIALIZER;

void yr_exec_watch(int on)
{
    pthread_mutex_lock(&exec_lock);
    if (on && exec_efd < 0)
        exec_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    exec_watching = on && exec_efd >= 0;
    pthread_mutex_unlock(&exec_lock);
}

int yr_exec_eventfd(void)
{
    return exec_efd;
}

/* Fields 26-28 and 45-51 of /proc/PID/stat: where the mm's code, stack, data,
 * heap, arguments and environment lie. An exec draws them anew (randomised). */
int yr_mm_layout(pid_t pid, uint64_t out[YR_MM_LAYOUT])
{
    static const int fields[YR_MM_LAYOUT] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
    char buf[2048];
    long long v[YR_MM_LAYOUT];
    memset(out, 0, YR_MM_LAYOUT * sizeof(out[0]));
    if (read_proc(pid, "stat", buf, sizeof(buf)) < 0 ||
        yr_stat_fields(buf, fields, YR_MM_LAYOUT, v) < 0)
        return -1;
    for (int k = 0; k < YR_MM_LAYOUT; k++)
        out[k] = (uint64_t)v[k];
    return 0;
}

static void drop_pins(struct yr_exec_note *n)
{
    if (n->thread_fd >= 0)
        close(n->thread_fd);
    if (n->process_fd >= 0)
        close(n->process_fd);
    if (n->mm_fd >= 0)
        close(n->mm_fd);
    n->thread_fd = n->process_fd = n->mm_fd = -1;
    n->lost = 1;
}

static void take_pins(struct yr_exec_note *n)
{
    char path[64];
    n->thread_fd = (int)syscall(SYS_pidfd_open, n->tid, O_EXCL /* PIDFD_THREAD */);
    n->process_fd = (int)syscall(SYS_pidfd_open, n->tgid, 0);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)n->tid);
    n->mm_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (n->thread_fd < 0 || n->process_fd < 0 || n->mm_fd < 0 ||
        yr_mm_layout(n->tid, n->layout) < 0)
        drop_pins(n);          /* cannot be told later: kept as lost */
}

/* From the notification loop, for every routed call: 1 when it was an
 * execve or execveat by a non-leader thread while Python watches (noted). */
int yr_exec_note(struct yr_event *ev)
{
    if (!exec_watching || (ev->sys != YR_SYS_EXECVE && ev->sys != YR_SYS_EXECVEAT))
        return 0;
    pid_t tgid = yr_tgid_of(ev->tid);
    if (tgid <= 0 || tgid == ev->tid)
        return 0;                        /* gone, or the leader: its exec frees no task */
    struct yr_exec_note n = { .tid = ev->tid, .tgid = tgid };
    take_pins(&n);
    pthread_mutex_lock(&exec_lock);
    if (exec_count == EXEC_QUEUE) {      /* Python is behind: this one is lost */
        drop_pins(&n);
        exec_lost = 1;
    } else {
        exec_queue[(exec_head + exec_count) % EXEC_QUEUE] = n;
        exec_count++;
    }
    pthread_mutex_unlock(&exec_lock);
    uint64_t one = 1;
    ssize_t unused = write(exec_efd, &one, sizeof(one));
    (void)unused;
    return 1;
}

/* 1: a note was taken (its descriptors are now the caller's); 0: none left.
 * A note with lost set and tid 0 stands for notes dropped on overflow: whose
 * they were is unknown. */
int yr_exec_take(struct yr_exec_note *out)
{
    pthread_mutex_lock(&exec_lock);
    int got = exec_count > 0 || exec_lost;
    if (exec_lost && !exec_count) {
        *out = (struct yr_exec_note){ .thread_fd = -1, .process_fd = -1, .mm_fd = -1, .lost = 1 };
        exec_lost = 0;
    } else if (got) {
        *out = exec_queue[exec_head];
        exec_head = (exec_head + 1) % EXEC_QUEUE;
        exec_count--;
    } else {
        uint64_t drained;
        ssize_t unused = read(exec_efd, &drained, sizeof(drained));
        (void)unused;
    }
    pthread_mutex_unlock(&exec_lock);
    return got;
}
