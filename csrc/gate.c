/* The /proc guard of walked calls.
 *
 * The supervisor opens for the caller from outside the sandbox's Landlock
 * domain, so the kernel's ptrace-class checks on /proc/PID entries (magic
 * links, mem, environ, fd/...) are made for a task in no domain, with the
 * caller's credentials: a root caller would reach the supervisor's own
 * descriptors. The entries that need those checks are refused here (EACCES,
 * the kernel's answer) when their process is the supervisor, or, while the
 * sandbox is a Landlock domain, any process outside it (not our descendant). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "engine.h"

static int ptrace_entry(const char *name, size_t len)
{
    static const char *const names[] = {
        "environ", "auxv", "mem", "maps", "smaps", "smaps_rollup", "numa_maps", "pagemap",
        "stack", "syscall", "personality", "io", "wchan", "fd", "fdinfo", "map_files",
        "cwd", "root", "exe", "ns", "timers", "timerslack_ns", "patch_state",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

static int inside_sandbox(struct yr_call *c, pid_t pid)
{
    pid_t tgid = yr_tgid_of(pid);
    if (tgid <= 0)
        return 1;                       /* gone: the kernel's own look-up fails */
    if (tgid == getpid())
        return 0;
    if (tgid == yr_caller_tgid(c) || !(yr_walk_config(NULL, NULL) & YR_WALK_LANDLOCK))
        return 1;
    return yr_is_descendant(getpid(), tgid) == 1;
}

static int ptrace_component(const char *path)
{
    for (const char *p = path; *p; ) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len && ptrace_entry(p, len))
            return 1;
        p += len;
    }
    return 0;
}

int yr_on_proc(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/* The same, for an object already stat'ed: a filesystem on a block device
 * is never /proc (procfs has an anonymous device, major 0). */
int yr_on_proc_st(int fd, const struct stat *st)
{
    return major(st->st_dev) == 0 && yr_on_proc(fd);
}

/* 0, or -EACCES for name in dir when it is such an entry of an outsider. */
static int proc_guard(struct yr_call *c, int dir, const char *name)
{
    struct stat ds, st;
    if (!yr_on_proc(dir))
        return 0;
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dir);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0 || fstat(dir, &ds) < 0)
        return -EACCES;
    path[n] = '\0';
    if (!ptrace_entry(name, strlen(name)) && !ptrace_component(path))
        return 0;                                   /* status, cmdline, /proc/sys...: no check */
    /* Where this /proc is mounted: the longest prefix that is its root (inode 1). */
    size_t root = (size_t)n;
    for (;;) {
        char keep = path[root];
        path[root] = '\0';
        int is_root = stat(root ? path : "/", &st) == 0 && st.st_dev == ds.st_dev && st.st_ino == 1;
        path[root] = keep;
        if (is_root)
            break;
        while (root > 0 && path[root - 1] != '/')
            root--;
        if (root == 0)
            return -EACCES;
        root--;
    }
    const char *p = path + root;
    char *end;
    while (*p == '/')
        p++;
    long pid = strtol(p, &end, 10);
    if (end == p || (*end && *end != '/'))
        return 0;                                   /* not below a task directory */
    if (strncmp(end, "/task/", 6) == 0)
        strtol(end + 6, &end, 10);
    const char *entry = *end == '/' ? end + 1 : name;
    if (!ptrace_entry(entry, strcspn(entry, "/")))
        return 0;
    /* Whose numbers? Ours if its "self" is us; no "self" at all: a pid
     * namespace without us, made inside the sandbox, so all of it is inside. */
    char own[32];
    char selfpath[sizeof(path) + 8];
    snprintf(selfpath, sizeof(selfpath), "%.*s/self", (int)root, path);
    ssize_t k = readlink(root ? selfpath : "/self", own, sizeof(own) - 1);
    if (k < 0)
        return errno == ENOENT ? 0 : -EACCES;
    own[k] = '\0';
    if (atoi(own) != getpid())
        return -EACCES;                             /* numbers we cannot read: fail closed */
    return inside_sandbox(c, (pid_t)pid) ? 0 : -EACCES;
}

int yr_gate_link(struct yr_call *c, int dir, const char *name)
{
    return proc_guard(c, dir, name);
}

int yr_gate(struct yr_call *c, int obj, enum yr_access access)
{
    (void)obj;
    (void)access;
    if (c->res.dir < 0)
        return 0;
    return proc_guard(c, c->res.dir, c->res.name);
}
