/* Facts about tasks. /proc reads cost 9-16 us each on this kind of machine,
 * so the common questions are answered with cheaper syscalls first. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

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
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

static long status_field(pid_t pid, const char *key)
{
    char buf[4096];
    if (read_proc(pid, "status", buf, sizeof(buf)) < 0)
        return -1;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line; ) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            return strtol(line + klen + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    errno = ENOENT;
    return -1;
}

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
    long tgid = status_field(tid, "Tgid");
    if (tgid <= 0)
        return -1;
    tgid_cache[slot].tid = tid;
    tgid_cache[slot].tgid = (pid_t)tgid;
    return (pid_t)tgid;
}

/* /proc/PID/stat descriptors, kept open: a pread on one costs about half of
 * an open+read+close. A descriptor stays bound to the task it was opened for
 * (its struct pid), so once that task is gone every read fails and a later
 * task with the same number is never read through it: a failed read drops
 * the entry and the file is opened again by number. */
#define STAT_CACHE 256
static struct { pid_t pid; int fd; } stat_cache[STAT_CACHE];
static pthread_mutex_t stat_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t read_stat_locked(pid_t pid, char *buf, size_t size)
{
    unsigned slot = (unsigned)pid % STAT_CACHE;
    if (stat_cache[slot].pid == pid && stat_cache[slot].fd > 0) {
        ssize_t n = pread(stat_cache[slot].fd, buf, size - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            return n;
        }
        close(stat_cache[slot].fd);
        stat_cache[slot].pid = stat_cache[slot].fd = 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, size - 1, 0);
    if (n <= 0) {
        close(fd);
        return -1;
    }
    buf[n] = '\0';
    if (stat_cache[slot].fd > 0)
        close(stat_cache[slot].fd);
    stat_cache[slot].pid = pid;
    stat_cache[slot].fd = fd;
    return n;
}

static ssize_t read_stat(pid_t pid, char *buf, size_t size)
{
    pthread_mutex_lock(&stat_lock);
    ssize_t n = read_stat_locked(pid, buf, size);
    pthread_mutex_unlock(&stat_lock);
    return n;
}

/* The tgid of pid's real parent (field 4 of /proc/PID/stat), 0 for pid 1's. */
pid_t yr_ppid_of(pid_t pid)
{
    char buf[1024];
    if (read_stat(pid, buf, sizeof(buf)) < 0)
        return -1;
    char *p = strrchr(buf, ')');  /* comm may itself hold ')' */
    int ppid;
    char state;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2) {
        errno = EINVAL;
        return -1;
    }
    return ppid;
}

/* The thread that ptraces pid, 0 if none. */
pid_t yr_tracer_of(pid_t pid)
{
    return (pid_t)status_field(pid, "TracerPid");
}

/* Yama's task_is_descendant: both ends taken to their thread-group leaders,
 * the walk follows real parents. 1 yes, 0 no, -1 the target is gone. */
int yr_is_descendant(pid_t ancestor_tgid, pid_t tid)
{
    pid_t walker = yr_tgid_of(tid);
    if (walker < 0)
        return -1;
    for (int depth = 0; walker > 0 && depth < 4096; depth++) {
        if (walker == ancestor_tgid)
            return 1;
        walker = yr_ppid_of(walker);
    }
    return 0;
}

int yr_caps(pid_t tid, uint64_t *eff, uint64_t *perm)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, tid };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    *eff = (uint64_t)data[1].effective << 32 | data[0].effective;
    *perm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
    return 0;
}

int yr_cap_effective(pid_t tid, uint64_t *out)
{
    uint64_t perm;
    return yr_caps(tid, out, &perm);
}

/* A copy of the caller's descriptor fd, taken into the supervisor. */
int yr_fetch_fd(pid_t tgid, int fd)
{
    int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
    if (pidfd < 0)
        return -errno;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int e = errno;
    close(pidfd);
    return copy < 0 ? -e : copy;
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
