/* The gate: one function judges every object the supervisor opens or acts
 * on for a caller, before it does, whatever route led there (a walked path,
 * a dirfd, a magic link met on the way or at the end, an O_PATH fd opened
 * again through /proc/self/fd, linkat's source, AT_EMPTY_PATH).
 *
 * The object is identified from the O_PATH fd the supervisor holds, never
 * from the caller's string: is it on procfs, and which entry of which
 * process? Its name is read back from the kernel (our /proc/self/fd link)
 * and proved: the same inode must be found under that name (looked up
 * without following any link) in our /proc, or in the procfs at the
 * caller's /proc, whose pid numbers are then ours or proved to be those of
 * the caller's own pid namespace (`unshare -pf --mount-proc`), and mapped
 * to ours. An object on procfs that cannot be proved so is refused for
 * anything the kernel would check, and so is an entry of a process the
 * gate cannot tell, beyond what it allows of any process (fail closed,
 * told as the gate's denial: yr_gate_refuse_unproved).
 *
 * The supervisor acts from outside the sandbox's Landlock domain, and with
 * more authority than its callers (root, or an unprivileged supervisor that
 * owns the user namespace the sandbox runs in), so the kernel's own
 * ptrace-class checks, made on its opens, are not the caller's. Here, for an
 * entry of another process:
 *
 *   - the supervisor and the other protected yama-run processes: every
 *     ptrace-class entry is refused (EACCES), and so is every open for
 *     writing of any of their entries (oom_score_adj, comm, attr/, ...: they
 *     act on it);
 *   - while the sandbox is contained, a process outside it: the same, but
 *     for what the kernel never checks against the process (a stat, an
 *     O_PATH open that stops at the entry: judge_outside), and each refusal
 *     told as the contain module's;
 *   - a process inside: the kernel's core rule for the caller (kptrace.c)
 *     where the kernel checks on open or on following a magic link, and,
 *     for the entries the kernel checks in PTRACE_MODE_ATTACH, the chain
 *     (hook ptrace_access_check), as Yama would be asked.
 *
 * A cgroup file opened for writing acts on processes too, with no check of
 * the writer against them: placed against yama-run's cgroups, and told to
 * Python (cgroup files, below). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "engine.h"


/* ---- which entries the kernel checks, and how (fs/proc/base.c) ---------- */

enum entry_class {
    E_PLAIN,        /* no ptrace check: status, stat, cmdline, comm, oom_score_adj... */
    E_SENSITIVE,    /* no check worth the chain inside, but out of an outsider's reach */
    E_READ_OPEN,    /* PTRACE_MODE_READ_FSCREDS on open (mm_access, fdinfo): EACCES */
    E_READ_LINK,    /* PTRACE_MODE_READ_FSCREDS on following the magic link: EACCES */
    E_ATTACH_OPEN,  /* PTRACE_MODE_ATTACH_FSCREDS on open (mem): EACCES */
    E_ATTACH_READ,  /* PTRACE_MODE_ATTACH_FSCREDS on read (lock_trace): EPERM */
};

static const struct { const char *name; enum entry_class class; } entries[] = {
    { "mem", E_ATTACH_OPEN },
    { "stack", E_ATTACH_READ }, { "syscall", E_ATTACH_READ }, { "personality", E_ATTACH_READ },
    { "environ", E_READ_OPEN }, { "auxv", E_READ_OPEN }, { "maps", E_READ_OPEN },
    { "smaps", E_READ_OPEN }, { "smaps_rollup", E_READ_OPEN }, { "numa_maps", E_READ_OPEN },
    { "pagemap", E_READ_OPEN }, { "fdinfo", E_READ_OPEN }, { "timers", E_READ_OPEN },
    { "fd", E_READ_LINK }, { "map_files", E_READ_LINK }, { "cwd", E_READ_LINK },
    { "root", E_READ_LINK }, { "exe", E_READ_LINK }, { "ns", E_READ_LINK },
    /* checked by the kernel on read with the reader's own credentials, or
     * not at all: no decision of ours inside, but never an outsider's */
    { "io", E_SENSITIVE }, { "wchan", E_SENSITIVE },
    { "timerslack_ns", E_SENSITIVE }, { "patch_state", E_SENSITIVE },
};

static enum entry_class class_of(const char *entry)
{
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (strcmp(entry, entries[i].name) == 0)
            return entries[i].class;
    return E_PLAIN;
}

/* A process's own links that the kernel follows for it without asking
 * anything (proc_fd_access_allowed: the same thread group): the resolver
 * may follow these as ourselves (resolve.c, follow_magic). Not map_files:
 * the kernel wants CAP_CHECKPOINT_RESTORE for them even of the process
 * itself, so they are followed as the caller, whose capabilities decide. */
static int own_link_unasked(const char *entry)
{
    static const char *const names[] = { "fd", "cwd", "root", "exe", "ns" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(entry, names[i]) == 0)
            return 1;
    return 0;
}

/* ---- protected processes ---------------------------------------------------- */

#define MAX_PROTECTED 16
static pid_t protected_pids[MAX_PROTECTED];
static int protected_pins[MAX_PROTECTED];   /* a pidfd of each, taken while it lived */
static int nprotected;

/* Python declares the yama-run processes other than the supervisor itself
 * (which is always protected), before serving. Each is pinned: the front
 * ends with the main program (unless --wait) while we serve what it left
 * behind, and its number, free once its parent reaps it, may be taken by
 * any process, which was refused as the front's (a review: a program's own
 * child's signals EPERM, its /proc entries EACCES). */
int yr_gate_protect(pid_t pid)
{
    for (int i = 0; i < nprotected; i++)
        if (protected_pids[i] == pid)
            return 0;
    if (nprotected >= MAX_PROTECTED)
        return -ENOSPC;
    int pin = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pin < 0)
        return errno == ESRCH ? 0 : -errno;    /* gone already: nothing to protect */
    protected_pins[nprotected] = pin;
    protected_pids[nprotected++] = pid;
    return 0;
}

/* Is protected_pids[i] alive (not reaped: its number not free)? */
static int protected_alive(int i)
{
    return yr_pidfd_alive(protected_pins[i]);
}

int yr_gate_is_protected(pid_t tgid)
{
    if (tgid == getpid() || yr_is_helper(tgid))
        return 1;
    for (int i = 0; i < nprotected; i++)
        if (protected_pids[i] == tgid)
            return protected_alive(i);
    return 0;
}

/* ---- what the object is ---------------------------------------------------------- */

struct proc_obj {
    int pid_entry;          /* an entry of a process (or its directory) */
    int by_opener;          /* judged on the opener's own credentials (judged_on_opener) */
    pid_t tid;              /* the task named (a thread's, below task/) */
    pid_t tgid;             /* its process */
    char entry[32];         /* the first name below the task directory ("" for it) */
    int numbers_unknown;    /* of a procfs whose pid numbers name no task we can tell */
    int fd;                 /* the object held (its owner read as yr_owner reads it) */
};

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

/* Our /proc, opened on the first look at a procfs object. Receivers judge
 * calls concurrently (csrc/pool.c), so two first looks could race: each
 * would open /proc and one descriptor leak, or one receiver could see
 * own_proc set before own_proc_dev (stores a compiler or CPU may reorder)
 * and fail to recognise our own /proc. pthread_once runs the set-up in one
 * thread and makes every other wait for it and see both values; a set-up
 * that failed is not retried: every procfs object then fails closed. */
static int own_proc = -1;
static dev_t own_proc_dev;
static pthread_once_t own_proc_once = PTHREAD_ONCE_INIT;

static void own_proc_open(void)
{
    int fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !yr_on_proc(fd) || st.st_ino != 1) {
        yr_close(fd);
        return;
    }
    own_proc_dev = st.st_dev;
    own_proc = fd;
}

static int own_proc_setup(void)
{
    pthread_once(&own_proc_once, own_proc_open);
    return own_proc >= 0 ? 0 : -EACCES;
}

/* Is st (an object's) on our own /proc (or a bind mount of it)? */
int yr_on_own_proc(const struct stat *st)
{
    return major(st->st_dev) == 0 && own_proc_setup() == 0 && st->st_dev == own_proc_dev;
}

/* Does rel, looked up below the procfs root `root` without following any
 * link, lead to the very inode st? */
static int proves(int root, const char *rel, const struct stat *st)
{
    const uint64_t res = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV;
    int fd = yr_openat2(root, *rel ? rel : ".", O_PATH | O_NOFOLLOW, res);
    if (fd == -EACCES) {
        /* A directory the caller may not search as itself (its own fd
         * directory, non-dumpable: yr_lookup): this look-up only says what
         * the object held is, and what it finds is closed here. */
        yr_fs_pause();
        fd = yr_openat2(root, *rel ? rel : ".", O_PATH | O_NOFOLLOW, res);
        yr_fs_resume();
    }
    struct stat found;
    int same = fd >= 0 && fstat(fd, &found) == 0 && found.st_ino == st->st_ino &&
               found.st_dev == st->st_dev;
    yr_close(fd);
    return same;
}

/* The part of name (the object's path as the kernel gives it) that names
 * it below the procfs root `root`: the longest suffix that proves, or NULL. */
static const char *proven_suffix(int root, const char *name, const struct stat *st)
{
    for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/'))
        if (proves(root, p + 1, st))
            return p + 1;
    return proves(root, "", st) ? "" : NULL;     /* the root itself */
}

/* Whose pid numbers does the procfs root `root` show? 1: ours. */
static int numbers_ours(int root)
{
    char own[32];
    ssize_t k = readlinkat(root, "self", own, sizeof(own) - 1);
    if (k <= 0)
        return 0;
    own[k] = '\0';
    return atoi(own) == getpid();
}

/* The last number of a "KEY:\tN\tN..." line of a status file, and how many
 * it has; 0 if none. */
static int last_number(const char *buf, const char *key, pid_t *last)
{
    const char *line = strstr(buf, key);
    if (!line || (line != buf && line[-1] != '\n'))
        return 0;
    int count = 0;
    char *end;
    for (const char *p = line + strlen(key);; p = end) {
        long n = strtol(p, &end, 10);
        if (end == p)
            break;
        *last = (pid_t)n;
        count++;
    }
    return count;
}

/* The numbers the caller's process and thread have in its own pid
 * namespace (the innermost of its NStgid and NSpid in our /proc): 0 or -1. */
static int callers_numbers(struct yr_call *c, pid_t *tgid, pid_t *tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)c->ev.tid);
    if (yr_read_text(path, buf, sizeof(buf)) <= 0)
        return -1;
    return last_number(buf, "NStgid:", tgid) > 0 && last_number(buf, "NSpid:", tid) > 0 ? 0 : -1;
}

/* Does the procfs at root show the caller's own pid namespace, P? A procfs
 * shows the pid namespace it was mounted in, which nothing tells directly;
 * it is proved here by the caller's process: its number n in P, looked up
 * in root, must be a task of P (its ns/pid is the caller's) whose status
 * there gives one number only, so the instance's namespace is at P's
 * level. A task is shown only in its own namespace and that namespace's
 * ancestors, so the instance's namespace is P itself, and n there names
 * the caller's process. Both are read through the one directory held,
 * which stays bound to the task it was looked up for (a number reused
 * after that task ends gets a directory of its own): no other task can
 * answer the second question. A task never changes its pid namespace. Read
 * as ourselves (ns/pid is a ptrace-class link; these are facts, not the
 * caller's opens). 1: proved, its numbers there in *tgid and *tid. */
static int shows_callers_pidns(struct yr_call *c, int root, pid_t *tgid, pid_t *tid)
{
    char name[16], buf[4096];
    struct stat theirs, callers;
    pid_t shown = 0;
    int proved = 0;
    yr_fs_pause();
    if (callers_numbers(c, tgid, tid) == 0) {
        snprintf(name, sizeof(name), "%d", (int)*tgid);
        int dir = yr_openat2(root, name, O_PATH | O_DIRECTORY | O_NOFOLLOW,
                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)c->ev.tid);
        int ns = dir >= 0 ? openat(dir, "ns/pid", O_RDONLY | O_CLOEXEC) : -1;
        int status = dir >= 0 ? openat(dir, "status", O_RDONLY | O_CLOEXEC) : -1;
        ssize_t n = status >= 0 ? read(status, buf, sizeof(buf) - 1) : -1;
        if (n > 0) {
            buf[n] = '\0';
            proved = ns >= 0 && fstat(ns, &theirs) == 0 && stat(path, &callers) == 0 &&
                     theirs.st_ino == callers.st_ino && theirs.st_dev == callers.st_dev &&
                     last_number(buf, "NStgid:", &shown) == 1 && shown == *tgid;
        }
        yr_close(status);
        yr_close(ns);
        yr_close(dir);
    }
    yr_fs_resume();
    return proved;
}

/* The /proc the caller sees at its "/proc", when it is another procfs than
 * ours: -1 if none. */
static int callers_proc(struct yr_call *c, dev_t dev)
{
    if (yr_open_root(c) < 0)
        return -1;
    int fd = yr_openat2(c->res.root, "proc", O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != dev || st.st_ino != 1 || !yr_on_proc(fd))) {
        close(fd);
        fd = -1;
    }
    return fd < 0 ? -1 : fd;
}

/* Parse "PID[/task/TID][/ENTRY...]" into o; its numbers as rel gives them
 * (the procfs's own), tgid not yet known. */
static void parse_entry(const char *rel, struct proc_obj *o)
{
    char *end;
    memset(o, 0, sizeof(*o));
    if (*rel < '0' || *rel > '9')
        return;                                  /* not below a task directory */
    long pid = strtol(rel, &end, 10);
    if (*end && *end != '/')
        return;
    o->pid_entry = 1;
    o->tid = (pid_t)pid;
    if (strncmp(end, "/task/", 6) == 0 && end[6] >= '0' && end[6] <= '9') {
        o->tid = (pid_t)strtol(end + 6, &end, 10);
        if (*end && *end != '/') {
            o->pid_entry = 0;
            return;
        }
    }
    const char *e = *end == '/' ? end + 1 : end;
    size_t len = strcspn(e, "/");
    snprintf(o->entry, sizeof(o->entry), "%.*s", (int)(len < sizeof(o->entry) ? len : 0), e);
}

/* Files the kernel judges on their opener's own credentials, which a thread
 * of ours acting for a caller does not wholly take (it keeps euid 0 and our
 * keyrings): opened by a helper that is the caller (helper.c). A process's
 * id-map entries (their writes: file->f_cred); outside the processes, the
 * sysctl tree (sysctl_perm: euid and egid) and /proc/keys and key-users (what
 * the opener's keyrings possess). rel: the path below /proc. */
static int judged_on_opener(const struct proc_obj *o, const char *rel)
{
    static const char *const entries[] = { "uid_map", "gid_map", "projid_map", "setgroups",
                                           "timens_offsets" };
    static const char *const others[] = { "sys", "keys", "key-users" };
    const char *const *names = o->pid_entry ? entries : others;
    size_t n = o->pid_entry ? sizeof(entries) / sizeof(entries[0])
                            : sizeof(others) / sizeof(others[0]);
    const char *name = o->pid_entry ? o->entry : rel;
    size_t len = o->pid_entry ? strlen(name) : strcspn(rel, "/");
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && strncmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

/* Whose numbers the procfs an object is on shows. */
enum numbering { NUM_OURS, NUM_CALLERS, NUM_UNKNOWN };

/* o's task numbers, given in the procfs's numbering, as ours: its tgid
 * found (<= 0: gone), or o->numbers_unknown. */
static void place_numbers(struct yr_call *c, struct proc_obj *o, enum numbering numbering)
{
    if (!o->pid_entry)
        return;
    if (numbering == NUM_CALLERS) {
        yr_fs_pause();                           /* the caller's ns/pid: ours to read */
        pid_t ours = yr_pid_from_caller(c->ev.tid, o->tid);
        yr_fs_resume();
        if (ours < 0)
            numbering = NUM_UNKNOWN;             /* a kernel that cannot say (-ENOSYS) */
        o->tid = ours > 0 ? ours : 0;
    }
    if (numbering == NUM_UNKNOWN) {
        o->numbers_unknown = 1;
        o->tid = o->tgid = 0;
        return;
    }
    o->tgid = o->tid > 0 ? yr_tgid_of(o->tid) : 0;
}

/* 0: o says what fd is (not a process's entry: o->pid_entry 0); -EACCES:
 * a procfs object that cannot be proved. A procfs of another pid namespace
 * (`unshare -pf --mount-proc`, bwrap --proc), at the caller's /proc: its
 * names prove what the object is in it, and its numbers are mapped to ours
 * when it shows the caller's own pid namespace (shows_callers_pidns);
 * otherwise which process an entry is of is unknown (numbers_unknown). */
static int identify(struct yr_call *c, int fd, const struct stat *st, struct proc_obj *o)
{
    char name[YR_PATH_MAX], link[16];
    memset(o, 0, sizeof(*o));
    o->fd = fd;
    snprintf(link, sizeof(link), "%d", fd);
    ssize_t n = readlinkat(yr_own_fd_dir(), link, name, sizeof(name) - 1);
    if (n <= 0 || own_proc_setup() < 0)
        return -EACCES;
    name[n] = '\0';
    const char *rel = NULL;
    enum numbering numbering = NUM_OURS;
    if (st->st_dev == own_proc_dev) {
        rel = proven_suffix(own_proc, name, st);
    } else {
        int root = callers_proc(c, st->st_dev);
        pid_t tgid, tid;
        if (root >= 0) {
            rel = proven_suffix(root, name, st);
            numbering = numbers_ours(root) ? NUM_OURS
                        : shows_callers_pidns(c, root, &tgid, &tid) ? NUM_CALLERS : NUM_UNKNOWN;
        }
        yr_close(root);
    }
    if (!rel)
        return -EACCES;                          /* fail closed */
    parse_entry(rel, o);
    place_numbers(c, o, numbering);
    o->by_opener = judged_on_opener(o, rel);
    return 0;
}

/* For the walk (resolve.c): what /proc/self and /proc/thread-self name for
 * the caller in the procfs whose root is dir: its process's and thread's
 * numbers there. 0, or -EACCES where they cannot be known (a procfs of
 * another pid namespace than ours or the caller's), refused and told. */
int yr_gate_self_numbers(struct yr_call *c, int dir, pid_t *tgid, pid_t *tid)
{
    if (numbers_ours(dir)) {
        *tgid = yr_caller_tgid(c);
        *tid = c->ev.tid;
        return 0;
    }
    if (shows_callers_pidns(c, dir, tgid, tid))
        return 0;
    return yr_gate_refuse_unproved(c);
}

/* ---- the judgement ---------------------------------------------------------------- */

static int inside(struct yr_call *c, pid_t tgid)
{
    if (yr_gate_is_protected(tgid))
        return 0;
    if (!(yr_walk_config(NULL, NULL) & YR_WALK_LANDLOCK) || tgid == yr_caller_tgid(c))
        return 1;
    return yr_is_descendant(getpid(), tgid) == 1;
}

static int kernel_checks(enum entry_class class, enum yr_access access)
{
    switch (class) {
    case E_READ_OPEN:
    case E_ATTACH_OPEN:
        return access == ACC_READ || access == ACC_WRITE || access == ACC_EXEC;
    case E_READ_LINK:
        return access == ACC_FOLLOW;
    case E_ATTACH_READ:
        return access == ACC_READ || access == ACC_WRITE;
    default:
        return 0;
    }
}

/* The kernel's core rule for the caller on tid, from facts we read in
 * /proc (status, ns/user): read as ourselves, since reading them is itself
 * a ptrace check that the caller's ids without our capabilities fail for a
 * caller in a user namespace of its own (its ns/user: EACCES, and the rule
 * would see the caller as gone). The facts are about the caller and the
 * target; the decision is the caller's. */
static int kernel_allows(struct yr_call *c, pid_t tid, int mode)
{
    yr_fs_pause();
    int ok = yr_kernel_ptrace_allows(c->ev.tid, tid, mode);
    yr_fs_resume();
    return ok;
}

static int mode_refuses(const struct yr_call *c, const struct proc_obj *o, const struct stat *st,
                        enum yr_access access);

/* /proc/PID/mem of a task that shares the caller's mm (clone(CLONE_VM)
 * without CLONE_THREAD: vfork, posix_spawn): proc_mem_open's mm_access asks
 * no ptrace question of it, Yama's included, so the chain is not asked.
 * The open acts on the held object (its struct pid), not on a number; the
 * task may exec between this kcmp and the open and be opened with its new
 * mm, which the kernel would judge: so it is compared again once opened
 * (yr_gate_recheck, yr_still_shares_mm). */
static int mem_of_a_sharer(struct yr_call *c, const struct proc_obj *o)
{
    unsigned long long ino;
    if (strcmp(o->entry, "mem") != 0 || !yr_shares_mm(c->ev.tid, o->tid, &ino))
        return 0;
    c->mm_recheck = o->tid;
    c->mm_ino = ino;
    return 1;
}

/* A process inside the sandbox: what the kernel would ask for the caller.
 * The entry's mode bits first: the open's permission check comes before
 * the ptrace check made on open and before the one made on read (a
 * non-dumpable task's syscall and personality are root's, 0400: EACCES,
 * never Yama's EPERM). */
static int judge_inside(struct yr_call *c, const struct proc_obj *o, const struct stat *st,
                        enum entry_class class, enum yr_access access)
{
    if (!kernel_checks(class, access))
        return 0;
    if (mode_refuses(c, o, st, access))
        return -EACCES;
    int attach = class == E_ATTACH_OPEN || class == E_ATTACH_READ;
    int errnum = class == E_ATTACH_READ ? EPERM : EACCES;
    if (class != E_ATTACH_READ) {                /* on read the kernel asks the reader */
        int ok = kernel_allows(c, o->tid, YR_PTRACE_FSCREDS |
                                         (attach ? YR_PTRACE_ATTACH : YR_PTRACE_READ));
        if (ok <= 0)
            return ok == -ESRCH ? -ENOENT : -errnum;
        c->recheck = o->tid;                     /* again once opened (open.c) */
        c->recheck_exact = ok == 1;
    }
    if (!attach || !(yr_walk_config(NULL, NULL) & YR_WALK_PROC_MEM) || mem_of_a_sharer(c, o))
        return 0;
    /* stack: the kernel asks for CAP_SYS_ADMIN (of the opener, which acts as
     * the caller) before it asks Yama: without it the read fails by itself. */
    if (strcmp(o->entry, "stack") == 0 && !(c->id.caps >> CAP_SYS_ADMIN & 1))
        return 0;
    struct yr_walk *pub = &c->pub;               /* Yama's part: the chain decides */
    pub->target_tid = o->tid;
    pub->target_tgid = o->tgid;
    pub->deny_errno = errnum;
    snprintf(pub->entry, sizeof(pub->entry), "%s", o->entry);
    return yr_hook(c, YR_HOOK_PROC_ACCESS, RESUME_ACT);
}

/* ---- cgroup files -------------------------------------------------------------- */

/* A cgroup file written acts on every process of its cgroup and of the
 * cgroups below it, and the kernel asks nothing of the writer about them:
 * cgroup.kill (SIGKILL, no signal permission), cgroup.freeze, the limits
 * (memory.max: the OOM killer; pids.max, cpu.max), cgroup.procs and
 * cgroup.threads (the pid written is moved). A user's delegated subtree
 * (systemd's user@UID.service) is writable by every process of that uid,
 * and Landlock's scopes do not see any of it. For a cgroup file opened for
 * writing the gate finds, from the objects it holds (YR_CG_*):
 *   - whether its cgroup holds a yama-run process or is an ancestor of one's;
 *   - whether it is cgroup.procs or cgroup.threads: the pid is known only at
 *     write(), which is not routed, and the supervisor written into a cgroup
 *     of the program's own could then be frozen there;
 *   - whether either could not be established (cgroup v1, whose hierarchies
 *     are not matched here, among them): fail closed.
 * Python says the refusal (YR_HOOK_CGROUP_WRITE): any of these, in every
 * mode; any cgroup write at all while contained (the contain module: a
 * cgroup may hold processes outside). Nothing else is asked about. */

#define CG_DEPTH 64          /* ancestors compared at most; deeper: not established */
#define CG_FILE_MAX 65536    /* /proc/PID/cgroup read at most */

struct cg_chain {
    int n;
    ino_t ino[CG_DEPTH];
};

/* dir and its ancestors, up to the root of the mount it is on (".." would
 * cross a mount there: EXDEV), by cgroup id. cgroup v2 is one hierarchy:
 * the kernfs node ids (st_ino) are the cgroup ids, the same through every
 * mount of it (a mount in another cgroup namespace has a superblock, and an
 * st_dev, of its own), and a cgroup never moves to another parent (v2
 * refuses rename), so the chain of held directories is the cgroup's own.
 * 0, or -1 (deeper than CG_DEPTH, or a look-up failed). dir is kept. */
static int cg_ancestors(int dir, struct cg_chain *ch)
{
    struct stat st;
    int cur = dir, rc = -1;
    ch->n = 0;
    while (fstat(cur, &st) == 0 && ch->n < CG_DEPTH) {
        if (ch->n > 0 && st.st_ino == ch->ino[ch->n - 1]) {
            rc = 0;                              /* our own root: ".." stays */
            break;
        }
        ch->ino[ch->n++] = st.st_ino;
        int up = yr_openat2(cur, "..", O_PATH | O_DIRECTORY, RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS);
        if (cur != dir)
            close(cur);
        cur = dir;
        if (up == -EXDEV)
            return 0;                            /* the mount's root */
        if (up < 0)
            return -1;
        cur = up;
    }
    if (cur != dir)
        close(cur);
    return rc;
}

static int cg_in(const struct cg_chain *ch, ino_t ino)
{
    for (int i = 0; i < ch->n; i++)
        if (ch->ino[i] == ino)
            return 1;
    return 0;
}

/* Does name in dir lead to the cgroup v2 file held (st), with no link
 * followed and no mount crossed? Then dir is its cgroup: a file
 * bind-mounted elsewhere, or over another cgroup's file, proves nothing. */
static int cg_child(int dir, const char *name, const struct stat *st)
{
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    int fd = yr_openat2(dir, name, O_PATH | O_NOFOLLOW,
                        RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH);
    struct stat found;
    struct statfs sf;
    int same = fd >= 0 && fstat(fd, &found) == 0 && found.st_ino == st->st_ino &&
               fstatfs(fd, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
    yr_close(fd);
    return same;
}

/* The cgroup directory of the cgroup file held as obj (a new fd), and the
 * file's name in it: the walk's held parent, if it proves; else the
 * directory our /proc/self/fd link names, if it proves (a file reached
 * through a magic link or a descriptor). -1: neither. */
static int cg_dir_of(struct yr_call *c, int obj, const struct stat *st, char *name, size_t size)
{
    struct yr_res *r = &c->res;
    if (r->dir >= 0 && cg_child(r->dir, r->name, st)) {
        snprintf(name, size, "%s", r->name);
        return fcntl(r->dir, F_DUPFD_CLOEXEC, 0);
    }
    char path[YR_PATH_MAX], link[16];
    snprintf(link, sizeof(link), "%d", obj);
    ssize_t n = readlinkat(yr_own_fd_dir(), link, path, sizeof(path) - 1);
    if (n <= 0 || path[0] != '/')
        return -1;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    snprintf(name, size, "%s", slash + 1);
    *slash = '\0';
    int dir = yr_openat2(AT_FDCWD, *path ? path : "/", O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    if (dir >= 0 && !cg_child(dir, name, st)) {
        close(dir);
        dir = -1;
    }
    return dir < 0 ? -1 : dir;
}

/* Our mount of cgroup v2 at our cgroup namespace's root (mountinfo shows a
 * cgroup mount's root relative to the reader's namespace: "/"), where the
 * paths of /proc/PID/cgroup are looked up. Set up once, as own_proc. */
static int cg_mount = -1;
static pthread_once_t cg_mount_once = PTHREAD_ONCE_INIT;

static void cg_unescape(char *s)             /* mountinfo's \ooo */
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

static void cg_mount_open(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[2 * YR_PATH_MAX], root[YR_PATH_MAX], point[YR_PATH_MAX];
    while (f && fgets(line, sizeof(line), f)) {
        if (!strstr(line, " - cgroup2 ") ||
            sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2 || strcmp(root, "/"))
            continue;
        cg_unescape(point);
        int fd = open(point, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct statfs sf;
        if (fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
            cg_mount = fd;
            break;
        }
        yr_close(fd);
    }
    if (f)
        fclose(f);
}

/* Is tid listed in the cgroup.threads of dir: a member of that cgroup? */
static int cg_holds(int dir, pid_t tid)
{
    int fd = openat(dir, "cgroup.threads", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[4096];
    long cur = 0;
    int digits = 0, found = 0;
    ssize_t n;
    while (!found && (n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = cur * 10 + (buf[i] - '0');
                digits++;
            } else {
                if (digits && cur == tid)
                    found = 1;
                cur = digits = 0;
            }
        }
    }
    close(fd);
    return found || (digits && cur == tid);
}

/* The cgroup (v2) of our process pid, held: the path of its "0::" line in
 * /proc/PID/cgroup (relative to our cgroup namespace's root), looked up
 * below our mount of that root, then proved by its cgroup.threads listing
 * pid (the thread /proc/PID/cgroup speaks of). A process moves only by a
 * write to cgroup.procs or cgroup.threads (refused from inside, above), so
 * the program cannot move it between the read and the proof; a name swapped
 * meanwhile (cgroup v2 has no rename; an rmdir and a mkdir) fails the
 * proof. -ESRCH: gone; -EACCES: not established. */
static int cg_of(pid_t pid)
{
    char rel[32], buf[CG_FILE_MAX];
    snprintf(rel, sizeof(rel), "%d/cgroup", (int)pid);
    int fd = openat(own_proc, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? -ESRCH : -EACCES;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    char *line = strncmp(buf, "0::", 3) == 0 ? buf : strstr(buf, "\n0::");
    if (!line)
        return -EACCES;
    char *path = line + (line == buf ? 3 : 4);
    path[strcspn(path, "\n")] = '\0';
    if (path[0] != '/' || strncmp(path, "/..", 3) == 0)  /* outside our namespace */
        return -EACCES;
    while (*path == '/')
        path++;
    pthread_once(&cg_mount_once, cg_mount_open);
    if (cg_mount < 0)
        return -EACCES;
    int dir = yr_openat2(cg_mount, *path ? path : ".", O_PATH | O_DIRECTORY,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
    if (dir >= 0 && !cg_holds(dir, pid)) {
        close(dir);
        dir = -EACCES;
    }
    return dir < 0 ? -EACCES : dir;
}

/* of_file: the file's cgroup and its ancestors. YR_CG_YAMA if it is the
 * cgroup of a protected process or an ancestor of one's; YR_CG_UNKNOWN
 * if that cannot be told: a protected cgroup not established, or no cgroup
 * shared by both chains (the file's mount stops below a place our chain of
 * that process reaches, or ours stops below the file's cgroup). */
static uint32_t cg_reaches_yama(const struct cg_chain *of_file)
{
    pid_t pids[MAX_PROTECTED + 1];
    int n = 0;
    pids[n++] = getpid();
    for (int i = 0; i < nprotected; i++)
        if (protected_alive(i))
            pids[n++] = protected_pids[i];
    uint32_t facts = 0;
    for (int i = 0; i < n; i++) {
        struct cg_chain of_yama;
        int dir = cg_of(pids[i]);
        if (dir == -ESRCH)
            continue;                            /* gone: nothing of it to reach */
        int ok = dir >= 0 && cg_ancestors(dir, &of_yama) == 0;
        yr_close(dir);
        if (!ok)
            return YR_CG_UNKNOWN;
        if (cg_in(&of_yama, of_file->ino[0]))
            return YR_CG_YAMA;
        int shared = 0;
        for (int j = 0; j < of_file->n && !shared; j++)
            shared = cg_in(&of_yama, of_file->ino[j]);
        if (!shared)
            facts |= YR_CG_UNKNOWN;
    }
    return facts;
}

static uint32_t cg_facts(struct yr_call *c, int obj, const struct stat *st, long fs_type)
{
    char name[NAME_MAX + 1];
    if (fs_type != CGROUP2_SUPER_MAGIC || own_proc_setup() < 0)
        return YR_CG_UNKNOWN;
    int dir = cg_dir_of(c, obj, st, name, sizeof(name));
    if (dir < 0)
        return YR_CG_UNKNOWN;
    uint32_t facts = strcmp(name, "cgroup.procs") == 0 || strcmp(name, "cgroup.threads") == 0
                     ? YR_CG_MOVES : 0;
    struct cg_chain of_file;
    facts |= cg_ancestors(dir, &of_file) == 0 ? cg_reaches_yama(&of_file) : YR_CG_UNKNOWN;
    close(dir);
    return facts;
}

/* A cgroup file (v2 or v1) about to be written. The facts are ours to find
 * (our /proc, our mount, directories the caller may not search). */
static int judge_cgroup(struct yr_call *c, int obj, const struct stat *st, long fs_type)
{
    yr_fs_pause();
    uint32_t facts = cg_facts(c, obj, st, fs_type);
    yr_fs_resume();
    if (!facts && !(yr_walk_config(NULL, NULL) & YR_WALK_LANDLOCK))
        return 0;
    c->pub.facts = facts;
    return yr_hook(c, YR_HOOK_CGROUP_WRITE, RESUME_ACT);
}

/* A binfmt_misc file about to be written. A rule written to `register`
 * names an interpreter that the kernel opens itself, by that path, at every
 * exec of a file the rule matches (or once, at the write, with the F flag),
 * following links where fs.protected_symlinks would judge them, and with
 * no call of the program's for yama-run to walk: a program may mount an
 * instance of its own in a user namespace (Linux 6.7+). Python says the
 * refusal (YR_HOOK_BINFMT_WRITE: the symlinks module, while it protects).
 * Every file of it is judged, not `register` alone: the others (`status`,
 * a rule's file) are a handful of administrative switches, and which one
 * is `register` would have to be told by an inode number the kernel could
 * change. */
static int judge_binfmt(struct yr_call *c, const struct stat *st, enum yr_access access)
{
    if (access != ACC_WRITE || !S_ISREG(st->st_mode))
        return 0;
    return yr_hook(c, YR_HOOK_BINFMT_WRITE, RESUME_ACT);
}

/* Refusals made and not yet recorded by Python. Counted before the call is
 * answered (the answer follows the gate's return), so a program that exits
 * on seeing its EACCES is reaped with its refusal counted: its status then
 * waits for the record (lifetime), which the front's exit would otherwise
 * outrun, the supervisor still loading or its receiver not yet in Python. */
static atomic_int unrecorded;

/* A refusal of the gate's, kept for Python to record (yr_ctx_gate_refusal)
 * as a module's denial is: the caller and its call. */
static struct yr_gate_refusal *refusal_start(struct yr_call *c)
{
    struct yr_gate_refusal *r = &c->ctx->refusal;
    if (!r->pending)                /* one slot, one record due */
        atomic_fetch_add(&unrecorded, 1);
    memset(r, 0, sizeof(*r));
    r->pending = 1;
    r->tid = c->ev.tid;
    r->tgid = yr_caller_tgid(c);
    snprintf(r->path, sizeof(r->path), "%s", c->path);
    r->sys = c->ev.sys;
    yr_comm_of(r->tid, r->comm, sizeof(r->comm));
    return r;
}

/* A refusal of the gate's own, where the kernel would check what the
 * object is and the gate cannot tell it: EACCES. */
int yr_gate_refuse_unproved(struct yr_call *c)
{
    struct yr_gate_refusal *r = refusal_start(c);
    snprintf(r->reason, sizeof(r->reason), "a /proc of another pid namespace: which process "
             "its entries are of cannot be told (fail closed)");
    return -EACCES;
}

void yr_refuse_unreachable(struct yr_call *c)
{
    if (c->ctx->refusal.pending || !yr_call_still_waits(c))
        return;
    struct yr_gate_refusal *r = refusal_start(c);
    r->path[0] = '\0';             /* it could not be read, or not all of it */
    r->unreachable = 1;
}

static const char *verb_of(const struct yr_call *c, enum yr_access access)
{
    switch (access) {
    case ACC_FOLLOW:
        return c->ev.sys == YR_SYS_READLINK || c->ev.sys == YR_SYS_READLINKAT ? "readlink"
                                                                             : "follow";
    case ACC_WRITE: return "open for writing";
    case ACC_EXEC:  return "exec";
    case ACC_LINK:  return "link";
    default:        return "open";
    }
}

/* Would the kernel refuse the caller this open on the entry's mode bits
 * alone? Then the refusal is the kernel's as much as containment's, and is
 * not told: Chromium writes its zygote's oom_score_adj through a /proc
 * that is not its pid namespace's, init's there (0644 root), at each start. */
static int mode_refuses(const struct yr_call *c, const struct proc_obj *o, const struct stat *st,
                        enum yr_access access)
{
    unsigned int want = access == ACC_WRITE ? 2 : access == ACC_READ ? 4 : 0;
    if (!want || (c->id.caps >> CAP_DAC_OVERRIDE & 1) ||
        (want == 4 && (c->id.caps >> CAP_DAC_READ_SEARCH & 1)))
        return 0;
    return !yr_mode_allows(&c->id, o->fd, st, want);
}

/* The contain module's refusal, told by the gate: an entry of a process
 * outside the contained sandbox. EACCES. */
static int refuse_outside(struct yr_call *c, const struct proc_obj *o, const struct stat *st,
                          enum entry_class class, enum yr_access access)
{
    if (mode_refuses(c, o, st, access))
        return -EACCES;
    struct yr_gate_refusal *r = refusal_start(c);
    r->target_tid = o->tid;
    r->target_tgid = o->tgid;
    r->attach = class == E_ATTACH_OPEN || class == E_ATTACH_READ;
    snprintf(r->operation, sizeof(r->operation), "%s /proc/PID/%s", verb_of(c, access),
             *o->entry ? o->entry : ".");
    return -EACCES;
}

/* A process outside the contained sandbox. Its entries' metadata is let
 * through: a stat, access(F_OK), an O_PATH open that stops at the entry
 * (a magic link not followed), as natively, where the kernel makes no
 * ptrace-class check on them, and as under Landlock's ptrace rule,
 * containment's own backstop. What the kernel checks against the process
 * (following a magic link, opening an entry to read or list it) is refused,
 * and so is any write (oom_score_adj, comm, attr/...: it acts on it).
 * An O_PATH fd let through here and opened again (/proc/self/fd/N, or a
 * walk from it as a dirfd) is judged again on the same object, for what
 * that call does to it: the reopen cannot pass for a stat. */
static int judge_outside(struct yr_call *c, const struct proc_obj *o, const struct stat *st,
                         enum entry_class class, enum yr_access access)
{
    if (access == ACC_STAT || access == ACC_PATH)
        return 0;
    if (class == E_PLAIN && access != ACC_WRITE)
        return 0;
    return refuse_outside(c, o, st, class, access);
}

struct yr_gate_refusal *yr_ctx_gate_refusal(struct yr_ctx *ctx)
{
    return &ctx->refusal;
}

void yr_gate_refusal_recorded(struct yr_ctx *ctx)
{
    if (ctx->refusal.pending) {
        ctx->refusal.pending = 0;
        atomic_fetch_sub(&unrecorded, 1);
    }
}

int yr_gate_unrecorded(void)
{
    return atomic_load(&unrecorded);
}

int yr_gate(struct yr_call *c, int obj, enum yr_access access)
{
    struct stat st;
    if (fstat(obj, &st) < 0)
        return -errno;
    return yr_gate_held(c, obj, &st, access);
}

/* The same, on an object whose stat was taken from obj itself (an fd's
 * stat cannot change what the fd is: its inode and device are fixed). */
int yr_gate_held(struct yr_call *c, int obj, const struct stat *held, enum yr_access access)
{
    c->own_entry = 0;
    /* One fstatfs tells procfs, cgroupfs and binfmt_misc (anonymous
     * devices, major 0); a filesystem on a block device is none of them:
     * no syscall for it. */
    struct statfs sf;
    if (major(held->st_dev) != 0 || fstatfs(obj, &sf) < 0)
        return 0;
    if (sf.f_type == CGROUP2_SUPER_MAGIC || sf.f_type == CGROUP_SUPER_MAGIC)
        return access == ACC_WRITE && S_ISREG(held->st_mode)
               ? judge_cgroup(c, obj, held, (long)sf.f_type) : 0;
    if (sf.f_type == BINFMTFS_MAGIC)
        return judge_binfmt(c, held, access);
    if (sf.f_type != PROC_SUPER_MAGIC)
        return 0;
    struct proc_obj o;
    int err = identify(c, obj, held, &o);
    int kernel_would_check = access == ACC_READ || access == ACC_WRITE || access == ACC_EXEC ||
                             access == ACC_FOLLOW;
    if (err < 0)
        return kernel_would_check ? yr_gate_refuse_unproved(c) : 0;  /* a stat is harmless */
    c->opener_matters = o.by_opener;
    if (o.numbers_unknown)
        /* Whose entry it is cannot be told: what the gate allows of any
         * process, inside or out, and nothing more. */
        return kernel_would_check && (class_of(o.entry) != E_PLAIN || access == ACC_WRITE)
               ? yr_gate_refuse_unproved(c) : 0;
    if (!o.pid_entry || o.tgid <= 0)
        return 0;                                /* /proc/sys..., or gone: the kernel says */
    if (o.tgid == yr_caller_tgid(c)) {
        c->own_entry = own_link_unasked(o.entry);
        return 0;                                /* one's own: the kernel allows it */
    }
    enum entry_class class = class_of(o.entry);
    if (yr_gate_is_protected(o.tgid))            /* yama-run's own, in every mode */
        return class != E_PLAIN || access == ACC_WRITE ? -EACCES : 0;
    if (!inside(c, o.tgid))
        return judge_outside(c, &o, held, class, access);
    return judge_inside(c, &o, held, class, access);
}

/* Did the gate, on the object it judged last, apply the kernel's ptrace rule
 * for the caller and find it allowed (yr_gate_recheck to come)? The kernel
 * makes the rule again on the open or the follow, of our acting thread,
 * which is not the caller: a root supervisor's thread keeps euid 0, so it
 * does not own the user namespaces the caller's uid owns (`unshare -r`),
 * and no thread of ours holds the capabilities a caller has in a user
 * namespace of its own. So the kernel may refuse that thread what it
 * allows the caller (root in `unshare -r` reading its own child's environ,
 * a parent its child's in `unshare -r`); what it refuses so is opened or
 * followed as ourselves instead, then judged again: a target that changed
 * between the yes and the open (non-dumpable, other ids, an exec) is seen
 * by that second judgement, made with the object in hand, which is closed
 * and the call refused, as the kernel would have refused it then. */
int yr_gate_judged_for_caller(const struct yr_call *c)
{
    /* Not where the rule's yes leans on that very check of the kernel's
     * (YR_PTRACE_KERNEL_SETTLES): done as ourselves, nothing would make it. */
    return c->recheck > 0 && c->recheck_exact;
}


/* Is obj a /proc object the caller was refused as itself only because our
 * acting thread is not the caller, and that is opened (or searched) as
 * ourselves instead? Either an entry of the caller's own process that the
 * kernel lets its thread group reach whoever owns it, but asks a stranger
 * about: its fd, fdinfo and map_files directories (proc_fd_permission; a
 * non-dumpable process's are root's, 0500; of map_files only the entries
 * want CAP_CHECKPOINT_RESTORE, which is the caller's to have when it
 * follows one: their look-up is judged by the gate as ever), what is in
 * fdinfo, and the files opened under a ptrace check it passes on itself
 * (maps, environ, mem...: mm_access); or a file of another process opened
 * under the ptrace check that the gate has just judged allowed for the
 * caller (yr_gate_judged_for_caller; a directory only if its mode lets the
 * caller read it: the kernel checks that too).
 * Proved as the gate proves what an object is. */
int yr_gate_own_unasked(struct yr_call *c, int obj)
{
    struct stat st;
    struct proc_obj o;
    if (fstat(obj, &st) < 0 || !yr_on_proc_st(obj, &st) || identify(c, obj, &st, &o) < 0)
        return 0;
    if (!o.pid_entry || o.tgid <= 0)
        return 0;
    enum entry_class class = class_of(o.entry);
    /* Not pagemap: what it shows depends on its opener (physical frame
     * numbers to CAP_SYS_ADMIN, file_ns_capable), and ours is not the
     * caller's. */
    int opened_on_rule = (class == E_READ_OPEN || class == E_ATTACH_OPEN) &&
                         strcmp(o.entry, "pagemap") != 0;
    if (o.tgid != yr_caller_tgid(c))
        return opened_on_rule && yr_gate_judged_for_caller(c) && c->recheck == o.tid &&
               (!S_ISDIR(st.st_mode) || yr_mode_allows(&c->id, obj, &st, 4));
    int fd_dir = strcmp(o.entry, "fd") == 0 ||
                 (strcmp(o.entry, "map_files") == 0 && S_ISDIR(st.st_mode));
    return fd_dir || opened_on_rule;
}

/* Is dir, in which a look-up was refused to the caller, one searched as
 * ourselves instead? One the caller's own process reaches unasked
 * (yr_gate_own_unasked), or another process's fdinfo directory, whose
 * search the kernel guards by its ptrace rule (proc_fdinfo_permission):
 * made again of our acting thread, which is not the caller, it may refuse
 * what the rule allows the caller (root in `unshare -r`, its child's
 * fdinfo/N); the rule is applied here for the caller, exactly (never a yes
 * left to the kernel's own check), with the directory's mode bits. Only a
 * name is looked up so: what it finds is judged by the gate as ever (the
 * rule again, and again once opened). A target that changes after the yes
 * (non-dumpable, other ids) has the look-up tell only whether that name
 * was there, as the caller's own look-up an instant earlier would have:
 * nothing of it is opened unless the rule, asked again, still allows it. */
int yr_gate_search_unasked(struct yr_call *c, int dir)
{
    if (yr_gate_own_unasked(c, dir))
        return 1;
    struct stat st;
    struct proc_obj o;
    if (fstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || !yr_on_proc_st(dir, &st) ||
        identify(c, dir, &st, &o) < 0)
        return 0;
    if (!o.pid_entry || o.tgid <= 0 || o.tgid == yr_caller_tgid(c) || !inside(c, o.tgid) ||
        strcmp(o.entry, "fdinfo") != 0 || !yr_mode_allows(&c->id, dir, &st, 1))
        return 0;
    return kernel_allows(c, o.tid, YR_PTRACE_FSCREDS | YR_PTRACE_READ) == 1;
}

/* The entries of a process whose names tell what it holds (its descriptors,
 * its mappings): name, len bytes. The walk asks it of the names on its way
 * (resolve.c), the gate of the directory it searches. */
int yr_fd_dir_name(const char *name, size_t len)
{
    static const char *const names[] = { "fd", "fdinfo", "map_files" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

/* Is path, below our /proc, the inode st? */
static int same_inode_at(const char *path, const struct stat *st)
{
    struct stat ours;
    return fstatat(own_proc, path, &ours, 0) == 0 && ours.st_ino == st->st_ino &&
           ours.st_dev == st->st_dev;
}

/* below: "PID" or "PID/task/TID" of ours */
static int names_our_fd_dir(const char *below, const struct stat *st)
{
    static const char *const names[] = { "fd", "fdinfo", "map_files" };
    char path[96];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", below, names[i]);
        if (same_inode_at(path, st))
            return 1;
    }
    return 0;
}

static int list_our_fd_dirs(const struct stat *st)
{
    char path[64];
    snprintf(path, sizeof(path), "%d", (int)getpid());
    if (names_our_fd_dir(path, st))
        return 1;
    snprintf(path, sizeof(path), "%d/task", (int)getpid());
    int fd = openat(own_proc, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *tasks = fd >= 0 ? fdopendir(fd) : NULL;
    if (!tasks) {
        yr_close(fd);
        return 1;                                /* not known: hidden */
    }
    int same = 0;
    for (struct dirent *t; !same && (t = readdir(tasks)) != NULL;) {
        if (t->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%d/task/%.16s", (int)getpid(), t->d_name);
        same = names_our_fd_dir(path, st);
    }
    closedir(tasks);
    return same;
}

/* Is st one of our fd, fdinfo or map_files directories, the process's or a
 * thread's? Compared by inode with each, looked up now: a bind mount holds
 * the very dentry it was made of, and a live task's entries keep theirs, so
 * ours looked up again are the same inodes. A thread started after the
 * listing cannot have been bound before it. Asked of a directory of our
 * procfs whose path proves nothing: rare, so its cost does not matter. */
static int is_our_fd_dir(const struct stat *st)
{
    yr_fs_pause();                               /* our own entries, looked up as ourselves */
    int ours = list_our_fd_dirs(st);
    yr_fs_resume();
    return ours;
}

/* Is dir one of our own process's descriptor or mapping directories (also
 * below task/TID)? The kernel lets a thread search its own process's
 * whoever it acts as (proc_fd_permission), so a name looked up there for a
 * caller answered ENOENT where the gate refuses what is there (EACCES): an
 * oracle of our fd table and address space. Asked of the directory every
 * walk ends in and of every directory a look-up failed in (resolve.c),
 * whatever names led there (a bind mount of ours names no "fd"): a caller's
 * own search there is refused (we are non-dumpable: fd and map_files are
 * root's, 0500, and fdinfo asks the ptrace rule), so every answer from
 * inside is EACCES. (Root inside a root-started sandbox may search it natively, and
 * the calls the kernel answers itself, readlink, mkdir, unlink, show it
 * what is there: docs/hostile.md, root's reach.) A procfs that cannot be
 * proved to show our pid numbers (another pid namespace's, or one mounted
 * where the caller's /proc is not: only root inside can mount that, and
 * root reaches these entries natively) is left to the kernel. */
int yr_gate_hides_search(struct yr_call *c, int dir)
{
    struct statx sx;
    struct stat st;
    struct proc_obj o;
    /* Asked of the directory every walk ends in: first what costs one
     * statx and never asks a filesystem's server (a FUSE daemon) anything */
    if (statx(dir, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_NLINK, &sx) < 0 ||
        !S_ISDIR(sx.stx_mode) || sx.stx_dev_major != 0)
        return 0;
    if (fstat(dir, &st) < 0)
        return 0;
    int ours = yr_on_own_proc(&st);
    if (ours && st.st_nlink != 2)
        return 0;      /* fd, fdinfo, map_files hold no directory: 2 links */
    if (!ours && !yr_on_proc(dir))
        return 0;
    if (identify(c, dir, &st, &o) < 0)
        /* Our own procfs, reached where its names cannot be proved (a bind
         * mount of /proc/PID or of one of its directories, elsewhere):
         * compared with each of ours. Another procfs: not one of our
         * numbers, ours are not in it by pid. */
        return ours && is_our_fd_dir(&st);
    return o.pid_entry && o.tgid == getpid() && yr_fd_dir_name(o.entry, strlen(o.entry));
}

/* After an open or a follow the gate allowed on the kernel's core rule:
 * the rule again, so that a target that became non-dumpable (or changed its
 * ids) meanwhile is refused, as the kernel would have refused it had the
 * caller itself made the call at that moment. And after the open of a
 * sharer's mem (mem_of_a_sharer): still the caller's mm, or the chain was
 * never asked about what was opened (a sharer gone since cannot tell:
 * refused, fail closed). 0 or -EACCES. */
int yr_gate_recheck(struct yr_call *c)
{
    pid_t tid = c->recheck, sharer = c->mm_recheck;
    c->recheck = c->mm_recheck = 0;
    if (sharer && !yr_still_shares_mm(c->ev.tid, sharer, c->mm_ino))
        return -EACCES;
    if (!tid)
        return 0;
    int ok = kernel_allows(c, tid, YR_PTRACE_FSCREDS | YR_PTRACE_READ);
    return ok > 0 || ok == -ESRCH ? 0 : -EACCES;   /* gone since: what was opened stays open */
}

/* A magic link about to be followed: the link itself is the entry. */
int yr_gate_link(struct yr_call *c, int dir, const char *name)
{
    int fd = yr_lookup(c, dir, name, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0)
        return fd;
    int rc = yr_gate(c, fd, ACC_FOLLOW);
    close(fd);
    return rc;
}
