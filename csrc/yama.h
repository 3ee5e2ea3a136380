/* yama-run fast path: the mechanism under the Python supervisor.
 *
 * spawn.c     fork, no_new_privs, install the filter, hand the listener back, exec
 * notify.c    the user-notify receive loop and the replies
 * procinfo.c  facts about tasks, read from the kernel as cheaply as it allows
 * creds.c     a caller's credentials, and a supervisor thread acting as it
 * walk.c      the path engine: path calls walked, judged and performed for the
 *             caller (its parts behind engine.h: resolve.c, gate.c, open.c,
 *             worker.c, meta.c, statcopy.c, link.c, decode.c, caller.c)
 * harden.c    the supervisor out of the sandbox's reach (Landlock, dumpable)
 * syscalls.c  the registry of routed syscalls (syscalls.def), for C and Python
 * tracer.c    the ptrace backend: seccomp stops read, settled and answered
 * front.c     the process the shell waits on: signals forwarded, the status
 *             returned (compiled into csrc/launcher.c too)
 * lifetime.c  the supervisor's side: the main program reaped, its status
 *             given to the front, without the GIL
 *
 * Everything here is called from Python through cffi (the GIL is released
 * around each call), so a blocking receive runs in a Python thread. */
#ifndef YAMA_RUN_H
#define YAMA_RUN_H

#include <stdint.h>
#include <sys/types.h>

/* Logical syscalls: one id for every ABI's number of the same call, from
 * the one registry (syscalls.def). Python fills the (arch, nr) -> id table
 * from libseccomp's own tables, by the names yr_sys_names() gives. */
enum yr_server { YR_SERVE_NONE = 0, YR_SERVE_WALK, YR_SERVE_LINK, YR_SERVE_TASK,
                 YR_SERVE_SIGNAL, YR_SERVE_NOTICE };
enum yr_sys {
    YR_SYS_NONE = 0,
#define YR_SYSCALL(id, server, names) YR_SYS_##id,
#include "syscalls.def"
#undef YR_SYSCALL
    YR_SYS_COUNT
};
const char *yr_sys_names(int32_t sys);  /* "name alias...", NULL past the end */
int yr_sys_server(int32_t sys);         /* YR_SERVE_* */

/* What one notification is, decoded. */
struct yr_event {
    uint64_t id;
    int32_t tid;            /* the calling thread, as the notification names it */
    int32_t tgid;           /* its process */
    uint32_t arch;          /* AUDIT_ARCH_* */
    int32_t nr;             /* the ABI's syscall number */
    int32_t sys;            /* enum yr_sys */
    uint64_t args[6];
    uint64_t cap_effective; /* the caller's effective capabilities */
    uint64_t cap_permitted;
};

struct yr_ctx;

/* creds.c: a caller's credentials, and a supervisor thread acting as it. */
#define YR_MAX_GROUPS 256
struct yr_creds {
    uint32_t ruid, euid, suid, fsuid;
    uint32_t rgid, egid, sgid, fsgid;
    uint32_t ngroups;
    uint32_t groups[YR_MAX_GROUPS];
    uint64_t cap_effective;
    uint64_t cap_permitted, cap_inheritable;
};
struct yr_creds_saved {
    int32_t active;
    uint32_t ruid, euid, suid, rgid, egid, sgid;
    uint32_t ngroups;
    uint32_t groups[YR_MAX_GROUPS];
    uint64_t cap_effective, cap_permitted;
};
int yr_creds_read(pid_t tid, struct yr_creds *c);
int yr_creds_enter(const struct yr_creds *c, struct yr_creds_saved *saved);
int yr_creds_leave(struct yr_creds_saved *saved);
int64_t yr_syscall_as(const struct yr_creds *c, int64_t nr, const uint64_t args[6]);
int yr_take_exactly(const struct yr_creds *c);   /* in a process forked to be the caller */

/* creds.c: the filesystem identity only (fsuid, fsgid, groups, capabilities),
 * switched per thread and kept until a different one is wanted. */
struct yr_fsid {
    uint32_t ruid, rgid;    /* the caller's real ids: reading its memory then needs no capability */
    uint32_t fsuid, fsgid, ngroups;
    uint32_t groups[YR_MAX_GROUPS];
    uint64_t caps;          /* the caller's effective set, as far as ours covers it */
    uint32_t foreign_userns;  /* it is in another user namespace: none of its capabilities
                                 are ours to lend (caps 0); not part of the switch */
};
int yr_fs_become(const struct yr_fsid *id);
int yr_fs_can_act_as(const struct yr_fsid *id);
int yr_fs_reset(void);
void yr_fs_pause(void);
void yr_fs_resume(void);

/* link.c: link and linkat, emulated.
 * Facts about the captured source, the only inputs of a path_link decision that
 * C can settle: a module's rule over these bits is tabulated by Python once
 * (bit f of the mask set = every module allows facts f), so the rule is
 * written once, in the module. */
enum {
    YR_LF_OWNER = 1 << 0,         /* the caller's fsuid owns the source */
    YR_LF_FOWNER = 1 << 1,        /* the caller has CAP_FOWNER */
    YR_LF_REGULAR = 1 << 2,       /* a regular file */
    YR_LF_SETUID = 1 << 3,
    YR_LF_SETGID_EXEC = 1 << 4,   /* setgid and group-executable */
    YR_LF_RW = 1 << 5,            /* the caller may both read and write it */
    YR_LF_COUNT = 6               /* 64 combinations: one uint64_t */
};
#define YR_PATH_MAX 4096
/* An owner the kernel gave as the overflow id and not proved real (owner.c):
 * the uid and gid fields below hold it, and it matches no caller's id. */
#define YR_UNMAPPED 0xFFFFFFFF
/* What Python sees of a link waiting for the chain's path_link verdict. */
struct yr_link {
    uint32_t facts;         /* YR_LF_* */
    uint32_t uid, gid, mode;/* the source's owner and mode */
    uint32_t fsuid;         /* the caller's */
    int32_t flags;          /* linkat's flags */
    int32_t trailing;       /* the new name ends in '/' */
    char old_path[YR_PATH_MAX];
    char new_path[YR_PATH_MAX];
    char name[YR_PATH_MAX]; /* the new name's last component */
};
struct yr_link *yr_ctx_link(struct yr_ctx *ctx);
void yr_ctx_link_table(struct yr_ctx *ctx, uint64_t allow_mask);
int yr_link_table_allows(uint64_t allow_mask, uint32_t facts);
int yr_link_finish(struct yr_ctx *ctx, uint64_t id, int32_t deny_errno);   /* 1: replied; 0: another hook point */

/* walk.c: path-taking calls performed for the caller (the path engine,
 * docs/path-engine.md). Python is asked only at a hook point: facts of the
 * object met there, tabulated like path_link's (bit f of a mask set = every
 * module allows facts f). */
enum {                                /* follow_link (a trailing link in a sticky dir) */
    YR_FL_OWNER = 1 << 0,             /* the follower's fsuid owns the link */
    YR_FL_DIR_STICKY_WW = 1 << 1,     /* its directory is sticky and world-writable */
    YR_FL_DIR_OWNER = 1 << 2,         /* the directory's owner owns the link */
    YR_FL_COUNT = 3
};
enum {                                /* create_in_sticky (O_CREAT met an existing file) */
    YR_CF_FIFO = 1 << 0,
    YR_CF_REGULAR = 1 << 1,
    YR_CF_DIR_WW = 1 << 2,            /* the sticky directory is world-writable */
    YR_CF_DIR_GW = 1 << 3,            /* ... group-writable */
    YR_CF_OWNER = 1 << 4,             /* the caller's fsuid owns the file */
    YR_CF_DIR_OWNER = 1 << 5,         /* the directory's owner owns the file */
    YR_CF_COUNT = 6
};
enum { YR_HOOK_FOLLOW_LINK = 1, YR_HOOK_CREATE_IN_STICKY, YR_HOOK_PROC_ACCESS,
       YR_HOOK_PATH_SYMLINK, YR_HOOK_PATH_LINK,
       YR_HOOK_EXEC_PRIVILEGED,     /* a notice only: execve of a setuid/setgid/fcaps file */
       YR_HOOK_CGROUP_WRITE,        /* a cgroup file opened for writing (facts: YR_CG_*) */
       YR_HOOK_BINFMT_WRITE };      /* a binfmt_misc file opened for writing: a rule's interpreter */
/* What the gate found of a cgroup file opened for writing (gate.c). */
enum { YR_CG_YAMA = 1 << 0,           /* its cgroup holds a yama-run process, or is an ancestor of one */
       YR_CG_MOVES = 1 << 1,          /* cgroup.procs or cgroup.threads: the pid written moves */
       YR_CG_UNKNOWN = 1 << 2 };      /* which cgroup it is, or where yama-run's are, not established */
enum { YR_WALK_PROC_MEM = 1 << 0,     /* ptrace_access_check is hooked: the /proc entries the
                                       * kernel checks in PTRACE_MODE_ATTACH are asked about */
       YR_WALK_PATH_SYMLINK = 1 << 1, /* symlink creation in sticky dirs is asked about */
       YR_WALK_FOLLOW = 1 << 2,       /* follow_link is hooked */
       YR_WALK_LANDLOCK = 1 << 3,    /* the sandbox is contained: /proc of outsiders is out of reach */
       YR_WALK_EXEC_NOTICE = 1 << 4 };/* execve of a privileged file is told to Python */
/* What Python sees of a call waiting at a hook point (yr_ctx_walk). */
struct yr_walk {
    int32_t hook;           /* YR_HOOK_*: what Python is asked */
    uint32_t facts;         /* YR_FL_* or YR_CF_* */
    uint32_t obj_uid, obj_mode;   /* the link or file met */
    uint32_t dir_uid, dir_mode;   /* its directory */
    uint32_t fsuid;         /* the caller's */
    int32_t target_tid;     /* YR_HOOK_PROC_ACCESS: the task whose entry is opened (our pid ns) */
    int32_t target_tgid;    /*   its process */
    int32_t deny_errno;     /*   the kernel's errno for a refusal of that entry */
    char entry[32];         /*   the entry ("mem", "syscall"...) */
    char path[YR_PATH_MAX]; /* the path as the caller gave it */
    char name[YR_PATH_MAX]; /* the trailing name met (the link, the file, the new name) */
    char target[YR_PATH_MAX];   /* the link's target / the new symlink's */
};
void yr_walk_setup(uint64_t follow_mask, uint64_t create_mask, uint32_t flags);
/* gate.c: the yama-run processes besides the supervisor (always protected)
 * whose /proc entries nothing inside may reach; declared before serving. */
int yr_gate_protect(pid_t pid);
int yr_gate_is_protected(pid_t tgid);
/* kptrace.c: the kernel's core ptrace rule for caller on target
 * (__ptrace_may_access and commoncap's cap_ptrace_access_check, no LSM):
 * 1 the kernel would allow it, 0 refuse it, -errno (a task gone). Never 1
 * where the kernel would refuse (facts out of reach: the stricter case),
 * except YR_PTRACE_KERNEL_SETTLES: allowed as far as the facts tell, the
 * rest settled only by the kernel's own check of a thread that acts as the
 * caller (a target with our root's euid whose mm may be ours). */
enum { YR_PTRACE_READ = 0x01, YR_PTRACE_ATTACH = 0x02, YR_PTRACE_FSCREDS = 0x08,
       YR_PTRACE_REALCREDS = 0x10 };
enum { YR_PTRACE_KERNEL_SETTLES = 2 };
int yr_kernel_ptrace_allows(pid_t caller_tid, pid_t target_tid, uint32_t mode);
void yr_kptrace_sandbox_userns(pid_t child);   /* spawn.c: the namespace it made */
struct yr_walk *yr_ctx_walk(struct yr_ctx *ctx);
int yr_walk_resume(struct yr_ctx *ctx, uint64_t id, int32_t deny_errno);
/* walk.c: a path Python read of the caller of ev, a call of another kind
 * that names it (perf_event_open's uprobe path), walked as the caller's
 * openat(AT_FDCWD, path, O_PATH) would be: symlinks followed, fs.protected_symlinks
 * and follow_link at a trailing one, /proc/self the caller's, the gate on
 * what is met. Nothing is replied to the caller. 1: settled
 * (yr_walk_taken); 0: at a hook point (yr_ctx_walk, then yr_walk_resume). */
int yr_walk_hold(struct yr_ctx *ctx, const struct yr_event *ev, const char *path);
int yr_walk_taken(struct yr_ctx *ctx);   /* its object held O_PATH (ours to close), or -errno */
/* gate.c: a refusal the gate makes on its own, no module asked (a procfs
 * whose pid numbers name no process it can tell; contained, an entry of a
 * process outside, told as the contain module's; a caller whose memory or
 * /proc we may not read, which fails closed), kept for Python to
 * record (sandbox/path_calls.py, gate_refused): yr_settle hands such a call
 * up even when it is answered already (answered 1: only the record is
 * Python's to make), before its receiver serves another. */
struct yr_gate_refusal {
    int32_t pending;
    int32_t answered;
    int32_t tid, tgid;      /* the caller */
    int32_t sys;            /* its call (YR_SYS_*) */
    char reason[160];
    char path[YR_PATH_MAX]; /* as the caller gave it */
    /* contained, an entry of a process outside: the contain module's
     * refusal (target_tgid > 0); 0: the gate's own (reason) */
    int32_t target_tid, target_tgid;
    int32_t attach;         /* an entry the kernel checks in PTRACE_MODE_ATTACH */
    char operation[64];     /* "open /proc/PID/environ" */
    char comm[16];          /* the caller's, read while it waits: its record may
                             * be made once it is gone */
    int32_t unreachable;    /* its memory or /proc refused to us (yr_refuse_unreachable):
                             * EPERM, fail closed */
};
struct yr_gate_refusal *yr_ctx_gate_refusal(struct yr_ctx *ctx);
/* The receiver's refusal recorded (pending cleared): one fewer due. */
void yr_gate_refusal_recorded(struct yr_ctx *ctx);
/* Refusals kept and not recorded yet, in every context: the program's exit
 * status waits for them (csrc/lifetime.c, sandbox/lifetime.py). */
int yr_gate_unrecorded(void);

/* spawn.c */
struct yr_spawn_result {
    int32_t pid;
    int32_t listener;       /* -1 when no filter was installed */
    int32_t status_fd;      /* reads 0 bytes once exec succeeded, else a yr_spawn_failure */
};
struct yr_spawn_failure {
    int32_t stage;          /* YR_STAGE_* */
    int32_t err;            /* errno */
};
enum { YR_STAGE_SETUP = 1, YR_STAGE_FILTER = 2, YR_STAGE_EXEC = 3,
       YR_STAGE_USERNS = 5 };     /* the user namespace could not be made */
/* bpf NULL: no filter. path: the PATH to search when file has no slash. */
int yr_spawn_path(const char *file, char *const argv[], char *const envp[],
                  const char *path, const void *bpf, size_t insns,
                  uint32_t flags, int32_t landlock, struct yr_spawn_result *out);
/* The signals the user's process ignored (bit N-1: signal N), read by the
 * launcher: every later spawn's program starts with these ignored and the
 * rest default. Unset, those the supervisor ignores but SIGPIPE, SIGXFSZ. */
void yr_spawn_caller_ignored(uint64_t ignored);
int yr_filter_flags_supported(uint32_t flags);
int yr_set_pdeathsig(int sig);
int yr_userns_probe(void);         /* 0: an unprivileged user namespace can be made; else errno */
/* What executing this file would grant without no_new_privs: YR_EXEC_* bits. */
enum { YR_EXEC_SETUID = 1 << 0, YR_EXEC_SETGID = 1 << 1, YR_EXEC_FCAPS = 1 << 2 };
/* name "": dirfd is the file itself. */
uint32_t yr_exec_privilege(int dirfd, const char *name, uint32_t mode);

/* notify.c */
struct yr_ctx *yr_ctx_new(int listener);
struct yr_ctx *yr_ctx_clone(const struct yr_ctx *ctx);  /* another receiver, same tables */
struct yr_ctx *yr_ctx_template(int listener);         /* tables only: never serves */
void yr_ctx_free(struct yr_ctx *ctx);
int yr_ctx_map_all(struct yr_ctx *ctx, const uint32_t *arch, const int32_t *nr,
                   const int32_t *sys, int n);
int yr_ctx_sync_wakeup(struct yr_ctx *ctx);
#define YR_NEXT_RETIRE 2       /* yr_next: a receiver that was stalled is no longer needed */
int yr_next(struct yr_ctx *ctx, struct yr_event *ev);
int yr_reply_continue(struct yr_ctx *ctx, uint64_t id);
int yr_reply(struct yr_ctx *ctx, uint64_t id, int64_t val, int32_t err);
int yr_id_valid(struct yr_ctx *ctx, uint64_t id);
int yr_reply_addfd(struct yr_ctx *ctx, uint64_t id, int fd, uint32_t newfd_flags);  /* closes fd */
long yr_listener_addfd(int listener, uint64_t id, int fd, uint32_t newfd_flags);  /* closes fd */
void yr_ctx_stats(struct yr_ctx *ctx, uint64_t out[4]);

/* pool.c: several receivers on one listener, and a watchdog that replaces a
 * receiver stalled on one call (docs/stall.md). */
#define YR_RECEIVERS_BASE 2         /* receivers while none is stalled (see pool.c) */
#define YR_STALLED_MAX 16           /* stalled receivers replaced, per sandbox */
#define YR_STALLED_PER_PROCESS 2    /* beyond, the process's calls are refused (ENOMEM) */
enum { YR_POOL_STARTED, YR_POOL_PEAK, YR_POOL_STALLS, YR_POOL_REFUSED, YR_POOL_NOW,
       YR_POOL_STATS };
struct yr_pool;
struct yr_pool *yr_pool_new(void);
void yr_pool_free(struct yr_pool *p);
int yr_pool_join(struct yr_pool *p, struct yr_ctx *ctx);
int yr_pool_watch(struct yr_pool *p);
void yr_pool_close(struct yr_pool *p);
void yr_pool_stats(struct yr_pool *p, uint64_t out[YR_POOL_STATS]);
/* The call this thread serves, if it is a receiver's, is about to cost more
 * than a receiver may spend (Python's scans of /proc for a group or a set):
 * its receiver is marked stalled and replaced now. */
void yr_pool_mark_costly_here(void);

/* worker.c: opens that may wait, bounded (docs/stall.md) */
#define YR_WORKERS_PER_PROCESS 16   /* beyond, EMFILE for that process */
#define YR_WORKERS_MAX 128          /* beyond, ENFILE */

/* procinfo.c */
pid_t yr_tgid_of(pid_t tid);
/* Its command name, NUL-terminated in buf ("" when it cannot be read). */
void yr_comm_of(pid_t tid, char *buf, size_t size);
pid_t yr_ppid_of(pid_t pid);
pid_t yr_tracer_of(pid_t pid);
int yr_is_descendant(pid_t ancestor_tgid, pid_t tid);
/* Every process of the session(s) whose controlling terminal is tty_nr (as
 * /proc's stat encodes it), in one pass over /proc: up to max in pids, how
 * many there are (more than max: ask again), or -errno. */
int yr_session_members(int tty_nr, int32_t *pids, int max);
/* Every process of group pgrp (> 0), else of real uid uid, in one pass
 * over /proc: as yr_session_members. */
int yr_set_members(pid_t pgrp, uint32_t uid, int32_t *pids, int max);
int yr_cap_effective(pid_t tid, uint64_t *out);
int yr_caps(pid_t tid, uint64_t *eff, uint64_t *perm);
int yr_caps3(pid_t tid, uint64_t *eff, uint64_t *perm, uint64_t *inh);
/* A pid as the caller means it (a number of its own pid namespace), as a pid
 * of ours: >0, 0 when no such task, -ENOSYS when the kernel cannot say. */
pid_t yr_pid_from_caller(pid_t caller_tid, pid_t pid);
/* Exec by a non-leader thread frees the old leader task (de_thread): the
 * notification loop notes each such execve before it is let through, with
 * what tells afterwards whether it succeeded (sandbox/taskwatch.py). */
#define YR_MM_LAYOUT 10
struct yr_exec_note {
    int32_t tid, tgid;      /* the exec'ing thread and its process */
    int32_t thread_fd;      /* pidfd (PIDFD_THREAD) of tid: fires when tid is released */
    int32_t process_fd;     /* pidfd of tgid: the process, whoever leads it */
    int32_t mm_fd;          /* /proc/TID/mem: pins the old mm; reads EOF once it is gone */
    int32_t lost;           /* 1: the note could not be taken whole (see yr_exec_note) */
    uint64_t layout[YR_MM_LAYOUT];   /* the old mm's layout (/proc/TID/stat) */
};
void yr_exec_watch(int on);
int yr_exec_note(struct yr_event *ev);
int yr_exec_take(struct yr_exec_note *out);
int yr_exec_eventfd(void);
int yr_mm_layout(pid_t pid, uint64_t out[YR_MM_LAYOUT]);
int yr_fetch_thread_fd(pid_t tid, pid_t tgid, int fd);
int yr_task_has_mm(pid_t tid);
int yr_kcmp(pid_t a, pid_t b, int kind);
int yr_shares_mm(pid_t caller_tid, pid_t tid, unsigned long long *ino);
int yr_still_shares_mm(pid_t caller_tid, pid_t tid, unsigned long long ino);
int yr_caller_fd_reopen(pid_t tid, pid_t tgid, int fd, int flags);
int yr_set_subreaper(void);

/* ptrace_fast.c: the ptrace module's ATTACH-mode rule settled in C while the
 * module alone judges that hook (sandbox/task_calls.py loads it). */
#define YR_PTRACE_FAST_ON 0x100     /* rule word: ON | scope (1-3); 0 = every call to Python */
#define YR_PTRACE_FAST_PRCTL 0x200  /* rule word: PR_SET_PTRACER 0 settled while nothing is declared */
void yr_ptrace_fast_rule(uint32_t word);
void yr_ptrace_fast_declared(void);         /* a PR_SET_PTRACER declaration is made */
void yr_ptrace_fast_tracing(void);          /* an attach, seize or traceme is let through */
void yr_ptrace_fast_quiet(int64_t until_ns);    /* denials unread until (CLOCK_MONOTONIC) */
uint64_t yr_ptrace_fast_take_silent(void);  /* denials settled silently since last asked */
int yr_ptrace_settle(struct yr_ctx *ctx, struct yr_event *ev);
int yr_caller_is_ancestor(pid_t caller_tgid, pid_t tid);
int yr_userns_is_ours(pid_t tid);

/* harden.c: the supervisor out of the sandbox's reach (Landlock signal
 * scope and domain, non-dumpable), and ABIs the kernel itself refuses.
 * landlock in yr_spawn_path: the domain the child enters, if any. */
enum { YR_STAGE_SHIELD = 4 };
enum {
    YR_DOMAIN_NONE = 0,
    YR_DOMAIN_PTRACE = 1,     /* ABI 2-5: handles reparenting only, allowed under /;
                                 every domain keeps ptrace-class access inside it */
    YR_DOMAIN_SCOPED = 2,     /* ABI 6+: no access handled, the signal scope */
};
int yr_landlock_abi(void);
int yr_landlock_shield_self(int32_t domain);
int yr_raise_nofile(void);          /* the soft RLIMIT_NOFILE to the hard one */
int yr_set_nondumpable(void);
int yr_x32_enabled(void);
int yr_abi_refused(uint32_t arch, int32_t nr);
int yr_in_our_pidns(pid_t tid);
int yr_pidns_init(pid_t tid);
int yr_ptrace_release(pid_t pid, int sig);
int yr_pvm_precheck(const struct yr_event *ev);
int yr_read_mem(pid_t tid, uint64_t addr, void *out, size_t size);
int yr_write_mem(struct yr_ctx *ctx, uint64_t id, pid_t tid, uint64_t addr, const void *in,
                 size_t size);
int yr_setown_as(const struct yr_creds *c, int fd, uint32_t cmd, int32_t type, int32_t pid,
                 int have_value, int pin);
int yr_pin_group(int procdir, pid_t pgrp, int32_t *pids, int32_t *pins, int max);
int yr_pidfd_kill_each_as(const struct yr_creds *c, const int32_t *pins, int n, int sig,
                          uint64_t *refused);
int yr_pidfd_signal_ours(int pidfd, int sig, const void *info, uint32_t flags);
/* kill_ok_by_cred's uid test (or CAP_KILL in c) of a signal to task pid:
 * 1, 0, or -errno. */
int yr_kill_uid_check(const struct yr_creds *c, pid_t pid);
int yr_pidfd_alive(int pidfd);           /* its task not reaped */
/* SIGCONT through pin (task pid) with our own authority, where it shares the
 * calling process's session and c fails the uid check: 0, or -errno (-EPERM:
 * it does not). */
int yr_pidfd_cont_in_session(const struct yr_creds *c, int pin, pid_t pid, pid_t caller,
                             const void *info, uint32_t flags);
/* helper.c: O_ASYNC turned on by a short-lived process that is the caller */
int yr_fasync_as(const struct yr_creds *c, int fd, uint32_t cmd, int32_t arg, pid_t tid,
                 int pin);
int yr_pidfd_signal_as(const struct yr_creds *c, int pidfd, int sig, const void *info,
                       uint32_t flags);
/* The ptrace backend (SECCOMP_RET_TRACE), where user-notify cannot be used.
 * notify.c's context without a listener (yr_ctx_new(-1)) keeps each reply
 * instead of sending it, so the same handlers serve both backends; tracer.c
 * reads a seccomp stop into a yr_event and applies the kept reply. */
enum { YR_DEFER_NONE = 0, YR_DEFER_CONTINUE = 1, YR_DEFER_RETURN = 2, YR_DEFER_FD = 3,
       YR_DEFER_PENDING = 4 };   /* a worker answers later (worker.c): leave the caller stopped */
struct yr_deferred {
    int32_t kind;           /* YR_DEFER_* */
    int32_t err;            /* RETURN: errno, or 0 and val */
    int64_t val;
    int32_t fd;             /* FD: ours, to install in the caller as its result */
    uint32_t fd_flags;      /* O_CLOEXEC or 0 */
};
int yr_ctx_take_reply(struct yr_ctx *ctx, struct yr_deferred *out);
int32_t yr_ctx_sys(struct yr_ctx *ctx, uint32_t arch, int32_t nr);
int yr_settle(struct yr_ctx *ctx, struct yr_event *ev);
#define YR_SPAWN_TRACED 0x80000000  /* yr_spawn_path: wait for the tracer, no listener */
#define YR_SPAWN_USERNS 0x40000000  /* yr_spawn_path: run in a user namespace we own */
int yr_spawn_release(int go_fd, int go);
enum { YR_TRACE_STATUS = 1, YR_TRACE_DECIDE = 2 };
int yr_trace_next(struct yr_ctx *ctx, struct yr_event *ev, int *status);
int yr_trace_answer(struct yr_ctx *ctx, pid_t tid, int *status);
int yr_trace_stop_current(pid_t tid, int status);   /* is tid in the stop status reports? */
const char *yr_trace_broken(struct yr_ctx *ctx, pid_t *tid);  /* why a process was killed */

/* front.c: the front waits for the program's status from the supervisor,
 * its child, over sock; the caller blocked the front's signals first. */
int yr_front_block(void);
int yr_front(int sock, int supervisor);
int yr_front_wake_signal(void);    /* the supervisor -> the front: a message waits */
int yr_front_forwarded(int i);     /* the i-th signal forwarded to the program, 0 past the end */
/* lifetime.c: the supervisor's end of the link to the front. */
struct yr_front_link {
    int32_t sock, front, wait_all;
    int32_t reported;       /* the status was sent */
    const int *fds;         /* the caller's descriptors, closed when detaching */
    const uint64_t *devs, *inos;
    int32_t n;
};
void yr_front_records_first(void);
int yr_front_send(struct yr_front_link *link, char kind, int fd, int wake);
int yr_front_report(struct yr_front_link *link, int status, int detach_first);
int yr_reap_main(int main_pid, int front_gone, int status_fd, int *status,
                 void *failure, size_t size, struct yr_front_link *link);

#endif
