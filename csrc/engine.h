/* The path engine's private interface: one call's context and the parts
 * that serve it. Python sees only yama.h.
 *
 *   caller.c    who the caller is (its identity, cached per context) and its memory
 *   decode.c    a call's arguments, and the kernel's checks made before any walk
 *   resolve.c   the resolver: a path walked as the caller to a held parent and name
 *   gate.c      the gate: every object judged on the fd the supervisor holds
 *   kptrace.c   the kernel's core ptrace rule, judged for a caller
 *   open.c      opens performed for the caller
 *   worker.c    opens that may wait, in a thread of their own
 *   helper.c    opens judged on the opener's credentials, made by a helper that is the caller
 *   statcopy.c  stat results in each ABI's layout, written to the caller
 *   meta.c      access, metadata, xattr, name_to_handle_at and symlink calls
 *   link.c      link and linkat
 *   tmpfiles.c  whose file linkat(fd, "", AT_EMPTY_PATH) names
 *   sockaddr.c  the paths a checked call names: AF_UNIX addresses of connect,
 *               bind and the sends (and named.c's for the others)
 *   named.c     the paths of the mount family, quotactl, acct, swapon...
 *   walk.c      a path call driven from its notification to its reply
 *   pool.c      several receivers on one listener, a stalled one replaced
 *
 * All per-call state lives in struct yr_call, one per notification context
 * (struct yr_ctx): receiver threads with contexts of their own serve calls
 * concurrently. File-scope state is configuration set once before serving
 * (yr_walk_setup) or a cache behind a lock. */
#ifndef YAMA_ENGINE_H
#define YAMA_ENGINE_H

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <linux/stat.h>

#include "procstat.h"
#include "yama.h"

#define MAXSYMLINKS 40
#define AT_FDCWD_INT (-100)
#define AUDIT_ARCH_I386_ 0x40000003u
#define TMPFILE_BIT 020000000      /* the kernel's __O_TMPFILE (glibc's adds O_DIRECTORY) */
#define YR_O_LARGEFILE 0100000    /* the kernel's (glibc's is 0 on x86-64): an i386 open's own */
#define XATTR_VALUE_MAX 65536

/* What a call does with the object its path leads to. */
enum yr_op { OP_OPEN, OP_STAT, OP_STATX, OP_STAT64, OP_ACCESS, OP_CHECK, OP_SYMLINK, OP_META,
             OP_LINK, OP_NAMED /* paths named by the call, each walked and judged
                                     from the cwd, then the call continued: AF_UNIX
                                     addresses (sockaddr.c), the mount family... (named.c) */,
             OP_HOLD /* a path handed by Python (yr_walk_hold): its object held for it,
                        nothing replied */ };
/* Results inside the engine (besides 0 and -errno). */
enum { R_DONE = 1, R_HOOK = 2, R_AGAIN = 3, R_NEXT = 4 /* the call's next path */ };
#define YR_SOCK_PATHS 64            /* AF_UNIX paths one call may address (sendmmsg) */
#define YR_NAMED_PATHS 2            /* other paths one checked call names (mount: target, source) */
#define YR_CALL_PATHS 512           /* paths one checked call may name (overlayfs: 500 layers) */
/* Where a call goes on after Python's verdict at a hook point. */
enum yr_resume { RESUME_NONE, RESUME_FOLLOW, RESUME_ACT, RESUME_OPEN, RESUME_SYMLINK,
                 RESUME_LINK, RESUME_LINK_SYMLINK /* a symlink's new name judged: link it */ };

/* ---- the notification context (notify.c) ------------------------------- */

struct yr_idcache;
struct yr_call;

#define YR_MAX_MAP 512             /* routed (arch, nr) pairs: some 240 with every hook */

struct yr_ctx {
    int listener;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    size_t req_size, resp_size;
    int nmap;
    struct yr_map { uint32_t arch; int32_t nr; int32_t sys; } map[YR_MAX_MAP];
    uint64_t stats[4];
    int recv_first;            /* RECV itself returns once no caller is left (see receive) */
    int deferred;              /* no listener: replies are kept for the tracer (tracer.c) */
    struct yr_deferred reply;
    struct yr_call *call;      /* the call being served */
    struct yr_gate_refusal refusal;   /* the gate's own refusal, for Python to record */
    struct yr_idcache *ids;    /* callers' identities */
    struct yr_done *done;      /* deferred mode: answers of workers, for the tracer (worker.c) */
    pid_t tracer;              /* deferred mode: the thread that waits for stops */
    struct yr_stops *stops;    /* deferred mode: stops waited for, served in turn (tracer.c) */
    /* the receiver pool (pool.c) */
    struct yr_pool *pool;      /* NULL: a lone receiver (the tracer, tests) */
    uint64_t busy_since;       /* atomic: when the call being served came (ns), 0: none */
    pid_t busy_tid;            /* atomic: its caller */
    pid_t thread;              /* atomic: the receiver thread serving this context */
    int stalled;               /* under the pool's lock: marked by the watchdog */
    int away;                  /* under the pool's lock: stepped out (yr_pool_step_out) */
    int parked;                /* under the pool's lock: waiting for its turn */
    pid_t stalled_tgid;        /* ... the process it is stalled for */
    pid_t busy_tgid;           /* atomic: its caller's process, when pool.c needed it; else 0 */
};

/* tracer.c */
void yr_stops_free(struct yr_stops *stops);

/* pool.c */
int yr_pool_busy(struct yr_ctx *ctx, pid_t tid);
int yr_pool_idle(struct yr_ctx *ctx);
void yr_pool_leave(struct yr_ctx *ctx, int closing);
void yr_pool_wait_turn(struct yr_ctx *ctx);
int yr_pool_step_out(struct yr_ctx *ctx);
void yr_pool_step_back(struct yr_ctx *ctx);
void yr_pool_built_to_cost(struct yr_ctx *ctx);   /* its call is a walk costly on purpose */
void yr_pool_built_to_cost_here(void);            /* the same, for this thread's receiver */
/* A walk up this many generations (a /proc read each: the ptrace rule's
 * descendant test) is a chain built to cost: the receiver serving it, if this
 * thread is one, is marked (yr_pool_built_to_cost_here). */
#define YR_COSTLY_GENERATIONS 256
/* procinfo.c: the numbers of /proc/PID/stat that walks of /proc read. */
struct yr_stat_ids {
    pid_t pgrp, session;
    int tty;
};
int yr_stat_ids(pid_t pid, struct yr_stat_ids *out);   /* 0; -ESRCH: gone; else -errno */
/* Each process of /proc, listed from procdir on, given to visit: see procinfo.c. */
#define YR_WALK_STOP 1
int yr_proc_walk(int procdir, int (*visit)(pid_t pid, void *arg), void *arg);
int yr_proc_walk_all(int (*visit)(pid_t pid, void *arg), void *arg);
int yr_pidfd_alive(int pidfd);           /* its task not reaped (signal 0, EPERM counts) */

/* CLOCK_MONOTONIC in ns. */
/* A call's arguments as the kernel will use them: the i386 entry takes the
 * low 32 bits of each register, while seccomp (user-notify and ptrace alike)
 * reports all 64, whose upper halves a 64-bit program making an int $0x80
 * call sets as it likes. Every decision, in C and in Python, and the audit
 * read these, never the raw registers. */
static inline void yr_event_args(struct yr_event *ev, const void *raw)  /* six u64 */
{
    memcpy(ev->args, raw, sizeof(ev->args));
    if (ev->arch == AUDIT_ARCH_I386_)
        for (int i = 0; i < 6; i++)
            ev->args[i] &= 0xFFFFFFFFu;
}

static inline uint64_t yr_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* worker.c: a timer that sends signo to the calling thread (0, or -1), and
 * its period (0: stopped). Waits with no deadline of their own (an open, a
 * waitpid) are interrupted by it, no SA_RESTART, to look at theirs. */
int yr_tick_start(void);                 /* YR_WAKE_SIG to this thread every 100 ms: a slot or -1 */
void yr_tick_stop(int slot);

/* ---- one call ------------------------------------------------------------ */

/* The resolver's state for one path: a stack of what remains to walk (the
 * path itself at the bottom, each link body met on the way above it), the
 * held parent of the trailing name, and what was found there. */
struct yr_res {
    int root;                   /* the caller's root, or the RESOLVE_BENEATH/IN_ROOT scope */
    int root_borrowed;          /* root is the identity cache's (yr_caller_root): not closed */
    int root_known;
    struct statx root_stx;
    int root_top;               /* root is our own "/": nothing is above it to leave to */
    int inside;                 /* the walk came through root, starts at the scope, or set
                                   out from a directory below the root */
    int start;                  /* a relative walk's start (the caller's cwd or dirfd),
                                   kept until the call ends, or -1 */
    int start_judged;           /* start looked at: is it below the root? */
    struct yr_proven *proven;   /* directories found below the root (below_root), or NULL */
    uint32_t proven_gen;        /* this call's entries in it */
    uint32_t climbed;           /* '..' steps below_root took in this call */
    uint32_t steps;             /* components walked and climbs made in this call (COSTLY_STEPS) */
    int root_set;               /* the kernel's nd->root is set: an absolute path, a scope, a '..' */
    int known_dir;              /* a directory of the walk statx'ed already (known_stx), or -1 */
    struct statx known_stx;
    uint64_t resolve;           /* openat2's RESOLVE_* */
    int follow;                 /* follow a trailing link */
    int hops;                   /* links followed so far (ELOOP past MAXSYMLINKS) */
    int link_on_way;            /* yr_hold_whole met a link before the last name */
    int held_link;              /* obj: yr_hold_whole's trailing link, for yr_trail to check */
    int depth;                  /* the top of the stack below */
    const char *seg[MAXSYMLINKS + 2];   /* cursors into path or bodies[] */
    char (*bodies)[YR_PATH_MAX + 2];    /* link bodies, one per level (MAXSYMLINKS + 1) */
    int dir;                    /* the held parent of name */
    char name[NAME_MAX + 1];
    int slash;                  /* name was followed by a slash: must be (or lead to) a dir */
    int magic;                  /* name is a /proc magic link: the kernel follows it */
    int exists;
    struct stat st;             /* name's, not followed */
    int obj;                    /* O_PATH: the final object, judged by the gate */
    struct stat obj_st;         /* its stat (followed, for a magic link) */
};

struct yr_call {
    struct yr_ctx *ctx;
    struct yr_event ev;
    struct yr_fsid id;          /* whom the walk acts as */
    int procdir;                /* the caller's /proc/TID (owned by the identity cache) */
    int mem_reads;              /* reads of its memory so far (caller.c: after the first, checked) */
    enum yr_op op;
    enum yr_resume resume;      /* what waits for Python's verdict */
    int retries;
    pid_t recheck;              /* the gate allowed on the core ptrace rule: again after */
    int recheck_exact;          /* ... on the rule alone (not YR_PTRACE_KERNEL_SETTLES) */
    pid_t mm_recheck;           /* the gate let a sharer's mem through unasked: again after */
    unsigned long long mm_ino;  /* ... that task's pidfs inode (yr_shares_mm) */
    int opener_matters;         /* the gate found an entry judged on its opener (helper.c) */
    int own_entry;              /* the gate found an entry of the caller's own process */
    int32_t dirfd;
    int flags;                  /* open flags, or AT_* flags */
    uint32_t mode;              /* open mode, access mode, statx mask */
    uint64_t buf;               /* the caller's stat buffer, xattr value or list */
    int64_t len;                /* truncate */
    uint32_t uid, gid;          /* chown */
    struct timespec ts[2];      /* utime* */
    int times_null;
    char xname[256];            /* xattr */
    uint64_t xsize;
    uint32_t xflags;            /* setxattrat's flags; file_[gs]etattr's size */
    int ifd;                    /* inotify: our copy of the caller's instance */
    int taken;                  /* OP_HOLD: the object held for Python, or -errno */
    struct yr_res res;
    char path[YR_PATH_MAX];     /* as given */
    char target[YR_PATH_MAX];   /* a link's target, a new symlink's target */
    char xbuf[XATTR_VALUE_MAX]; /* xattr values and lists */
    /* The paths a checked call names, walked one after the other and the
     * call continued once all are judged (sockaddr.c, named.c): AF_UNIX addresses
     * (kept in sock_buf), and the mount family's and a few others' paths
     * (kept in named: at most YR_NAMED_PATHS of PATH_MAX each; an overlayfs
     * mount's layers, one page of options, in named[1]). */
    const char *sock[YR_CALL_PATHS];
    char sock_buf[YR_SOCK_PATHS][109];
    char named[YR_NAMED_PATHS][YR_PATH_MAX];
    int nsock, sock_next;
    struct yr_walk pub;         /* Python's view at a hook point */
    /* link and linkat (link.c) */
    struct yr_link link;        /* Python's view of a link */
    int link_src;               /* O_PATH: the source, captured once */
    int link_dir;               /* O_PATH: the new name's parent */
    int spare_start;            /* a start no walk took (yr_call_run), for link's new name */
    int32_t link_newdfd;
    int link_new_len;           /* the new path's length once read, else -1 */
    uint64_t link_newp;
    /* execve: the interpreters the kernel opens after it (interp.c) */
    int exec_state;             /* walk.c's EXEC_*: where this exec's object stands */
    int interps;                /* "#!" interpreters walked so far */
    int exec_loader;            /* the object held has a PT_INTERP to walk after the notice */
    char interp[YR_PATH_MAX];
};

/* walk.c */
int yr_walk_settle(struct yr_ctx *ctx, struct yr_event *ev);
int yr_walk_table_allows(uint64_t mask, uint32_t facts);
int yr_own_fd_dir(void);
void yr_call_reset(struct yr_call *c, struct yr_ctx *ctx, const struct yr_event *ev);
void yr_call_close(struct yr_call *c);
int yr_call_finish(struct yr_call *c, int err);
int yr_call_drive(struct yr_call *c);
int yr_call_run(struct yr_call *c, int from);
int yr_hook(struct yr_call *c, int hook, enum yr_resume resume);
uint32_t yr_walk_config(uint64_t *follow_mask, uint64_t *create_mask);
int yr_reopen(int obj, int flags, uint32_t mode);
int yr_openat2(int dir, const char *name, int flags, uint64_t resolve);
void yr_close(int fd);

/* caller.c */
/* The first read of a caller's string takes at most this many bytes: most
 * paths end within it, and each byte more to the page's end costs about
 * 0.17 ns of copying (a path 1.3 KB before its page end: 0.2 µs a call). */
#define YR_FIRST_READ 256
static inline size_t yr_first_read(uint64_t addr)   /* to the page's end, at most that */
{
    size_t to_end = (size_t)(4096 - addr % 4096);
    return to_end < YR_FIRST_READ ? to_end : YR_FIRST_READ;
}
/* caller.c: the caller's memory (a string up to its NUL, once) */
int yr_read_path(struct yr_call *c, uint64_t addr, char *out, size_t size);
/* named.c: may the caller mount (CAP_SYS_ADMIN, checked before any look-up)? */
int yr_may_mount(const struct yr_call *c);
struct yr_idcache *yr_idcache_new(void);
void yr_idcache_free(struct yr_idcache *ids);
void yr_identity_notice(pid_t tid);      /* the thread's setgroups, unshare, setns: its identity read again */
void yr_roots_may_move(void);            /* a chroot, pivot_root, setns or unshare(CLONE_NEWNS) seen */
int yr_caller_root(struct yr_call *c, int *owned);
int yr_caller_identity(struct yr_ctx *ctx, const struct yr_event *ev, struct yr_fsid *out,
                       int *procdir);
int yr_proc_open(struct yr_call *c, const char *name, int flags);
struct rlimit;
int yr_caller_limit(struct yr_call *c, int resource, struct rlimit *lim);
/* walk.c: is the caller still the task waiting for this call (after what
 * was read of it by tid, before an effect)? */
int yr_call_still_waits(struct yr_call *c);
int yr_meta_writes(int32_t sys);
/* tracer.c: is tid still in the stop being served? */
int yr_trace_still_stopped(struct yr_ctx *ctx, pid_t tid);
int yr_read_str(struct yr_call *c, uint64_t addr, char *out);
int yr_read_caller(struct yr_call *c, uint64_t addr, void *out, size_t size);
int yr_write_caller(struct yr_call *c, const struct iovec *local, int n,
                    const struct iovec *remote, int rn);
pid_t yr_caller_tgid(struct yr_call *c);

/* interp.c */
enum { YR_INTERP_NONE, YR_INTERP_SCRIPT, YR_INTERP_ELF };
int yr_exec_interpreter(int obj, char *out, size_t size);

/* decode.c */
int yr_op_of(int32_t sys);
int yr_decode(struct yr_call *c, uint64_t *path_addr, uint64_t *target_addr);

/* gate.c */
enum yr_access { ACC_STAT, ACC_PATH, ACC_FOLLOW, ACC_READ, ACC_WRITE, ACC_EXEC, ACC_LINK };
int yr_gate(struct yr_call *c, int obj, enum yr_access access);
int yr_gate_held(struct yr_call *c, int obj, const struct stat *held, enum yr_access access);
int yr_gate_link(struct yr_call *c, int dir, const char *name);
int yr_gate_own_unasked(struct yr_call *c, int obj);
int yr_gate_search_unasked(struct yr_call *c, int dir);
int yr_gate_judged_for_caller(const struct yr_call *c);
int yr_gate_refuse_unproved(struct yr_call *c);
/* The caller's memory or its /proc files refused to us as to itself (it is
 * not dumpable, and we hold no capability over it: no user namespace of
 * ours): its call fails closed, and this says why, once per call, unless
 * the caller is gone (its number then someone else's). */
void yr_refuse_unreachable(struct yr_call *c);
int yr_gate_self_numbers(struct yr_call *c, int dir, pid_t *tgid, pid_t *tid);
int yr_fd_dir_name(const char *name, size_t len);
int yr_gate_hides_search(struct yr_call *c, int dir);
int yr_on_own_proc(const struct stat *st);
int yr_gate_recheck(struct yr_call *c);
int yr_on_proc(int fd);
int yr_on_proc_st(int fd, const struct stat *st);

/* resolve.c */
int yr_start_at(struct yr_call *c, int32_t dirfd, int want_dir);
int yr_lookup(struct yr_call *c, int dir, const char *name, int flags, uint64_t resolve);
int yr_kernel_protection(const char *knob);
int yr_open_root(struct yr_call *c);
int yr_walk(struct yr_call *c, int from, const char *path);
int yr_trail(struct yr_call *c);
int yr_follow_held(struct yr_call *c);
int yr_hold_final(struct yr_call *c, enum yr_access access);
int yr_has_dotdot(const char *p);
int yr_hold_whole(struct yr_call *c, int from, const char *path);

/* open.c */
int yr_act_open(struct yr_call *c);
int yr_open_final(struct yr_call *c);
int yr_install(struct yr_call *c, int fd, int flags, const struct stat *known);
int yr_take_umask(struct yr_call *c);

/* helper.c */
#define YR_AS_CALLER_NET 1          /* the helper enters the caller's network namespace too */
int yr_open_as_caller(struct yr_call *c, int obj, int flags, unsigned how);
int yr_create_as_caller(struct yr_call *c, int dir, const char *name, int flags, uint32_t mode,
                        int resource, const struct rlimit *limit);
/* The signal that interrupts a thread of ours in a wait (a handler that
 * does nothing, no SA_RESTART): a worker's tick and the ptrace backend's
 * tracer in waitpid, for a worker's answer or an injection's clock
 * (worker.c). Not a realtime one: tgkill sets it pending whatever the
 * user's RLIMIT_SIGPENDING, which a program of the user can use up. */
#define YR_WAKE_SIG SIGURG
int yr_is_helper(pid_t pid);

/* worker.c */
int yr_open_in_worker(struct yr_call *c, int obj, int flags);
void yr_worker_cancel(struct yr_ctx *ctx, uint64_t id);   /* tracer.c: its caller left its stop */
int yr_worker_take(struct yr_ctx *ctx, uint64_t *id, pid_t *tid, struct yr_deferred *reply);
void yr_worker_wakeable(struct yr_ctx *ctx);
void yr_worker_release(struct yr_ctx *ctx);

/* tmpfiles.c */
void yr_opened_for(struct yr_call *c, const struct stat *st);
void yr_exec_seen(struct yr_call *c);
int yr_empty_path_link_allowed(struct yr_call *c, const struct stat *st);

/* sockaddr.c */
int yr_checked_paths(struct yr_call *c);

/* named.c */
int yr_named_paths(struct yr_call *c, const uint64_t *a);

/* owner.c: an owner read with fstat or statx from fd's object, as the rules
 * compare it: the id, or YR_UNMAPPED (matches nothing) */
uint32_t yr_owner(int fd, uint32_t id, int gid);
int yr_same_owner(uint32_t owner, uint32_t id);
int yr_owner_overflows(int fd, const struct stat *st);
int yr_mode_allows(const struct yr_fsid *id, int fd, const struct stat *st, unsigned int want);

/* statcopy.c */
int yr_stat_to_caller(struct yr_call *c, int fd, const struct stat *taken);
void yr_ids_for_caller(struct yr_call *c, uint32_t *uid, uint32_t *gid);
int yr_ids_from_caller(struct yr_call *c, uint32_t *uid, uint32_t *gid);
int yr_acl_ids(struct yr_call *c, const char *name, unsigned char *v, size_t n, int up);

/* meta.c */
int yr_object_there(const struct yr_call *c);
int yr_act_stat(struct yr_call *c);
int yr_act_access(struct yr_call *c);
int yr_act_symlink(struct yr_call *c);
int yr_perform_symlink(struct yr_call *c);
int yr_symlink_in_sticky(struct yr_call *c, int dir);
int yr_act_meta(struct yr_call *c);
int yr_meta_perform(struct yr_call *c, int fd);
struct statx;
int yr_truncate_refusal(int fd, const struct statx *sx);

/* link.c */
int yr_link_settle(struct yr_ctx *ctx, const struct yr_event *ev);
int yr_link_source_held(struct yr_call *c);
int yr_link_resume(struct yr_call *c, int32_t deny_errno);
int yr_link_symlink_resume(struct yr_call *c);

#endif
