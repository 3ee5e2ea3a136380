/* The user-notify receive loop.
 *
 * yr_next() receives and decodes notifications and settles the cases that no
 * policy can decide differently; it returns to Python only at a hook point. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "engine.h"

/* Debian 12's uapi header predates these. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif


enum { STAT_RECEIVED, STAT_SETTLED_IN_C, STAT_TO_PYTHON, STAT_CALLER_GONE };

/* A call's context, with room for a walk's link bodies. */
static struct yr_call *call_new(void)
{
    struct yr_call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->res.bodies = calloc(MAXSYMLINKS + 1, sizeof(*c->res.bodies));
    if (!c->res.bodies) {
        free(c);
        return NULL;
    }
    c->res.dir = c->res.obj = c->res.root = c->res.start = c->ifd = c->link_src =
        c->link_dir = -1;
    c->spare_start = -1;
    return c;
}

static void call_free(struct yr_call *c)
{
    if (!c)
        return;
    yr_call_close(c);
    free(c->res.bodies);
    free(c->res.proven);
    free(c);
}

/* A context; serving: with a call and an identity cache of its own. */
static struct yr_ctx *ctx_alloc(int listener, int serving)
{
    struct seccomp_notif_sizes sizes = { 0, 0, 0 };
    if (listener >= 0 && syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
        return NULL;
    struct yr_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    ctx->reply.fd = -1;                     /* (yr_ctx_free closes it) */
    /* The kernel may know a larger struct than our headers: use its sizes. */
    ctx->req_size = sizes.seccomp_notif > sizeof(*ctx->req) ? sizes.seccomp_notif : sizeof(*ctx->req);
    ctx->resp_size = sizes.seccomp_notif_resp > sizeof(*ctx->resp) ? sizes.seccomp_notif_resp : sizeof(*ctx->resp);
    ctx->req = calloc(1, ctx->req_size);
    ctx->resp = calloc(1, ctx->resp_size);
    if (serving) {
        ctx->call = call_new();
        ctx->ids = yr_idcache_new();
    }
    if (!ctx->req || !ctx->resp || (serving && (!ctx->call || !ctx->ids))) {
        yr_ctx_free(ctx);
        return NULL;
    }
    ctx->listener = listener;
    ctx->deferred = listener < 0;
    return ctx;
}

struct yr_ctx *yr_ctx_new(int listener)
{
    return ctx_alloc(listener, 1);
}

/* The tables every receiver's context copies (yr_ctx_clone), without the
 * 100 KiB call a serving context zeroes (about 0.1 ms of each start): it
 * never serves. */
struct yr_ctx *yr_ctx_template(int listener)
{
    return ctx_alloc(listener, 0);
}

/* Another receiver on ctx's listener, with its tables and a call and an
 * identity cache of its own (csrc/pool.c). */
struct yr_ctx *yr_ctx_clone(const struct yr_ctx *ctx)
{
    struct yr_ctx *c = yr_ctx_new(ctx->listener);
    if (!c)
        return NULL;
    c->nmap = ctx->nmap;
    memcpy(c->map, ctx->map, sizeof(c->map));
    c->recv_first = ctx->recv_first;
    return c;
}

void yr_ctx_free(struct yr_ctx *ctx)
{
    if (!ctx)
        return;
    yr_pool_leave(ctx, 0);
    yr_gate_refusal_recorded(ctx);      /* never to be: nothing waits for it */
    if (ctx->reply.fd >= 0)
        close(ctx->reply.fd);
    yr_worker_release(ctx);
    free(ctx->req);
    free(ctx->resp);
    call_free(ctx->call);
    yr_idcache_free(ctx->ids);
    yr_stops_free(ctx->stops);
    free(ctx);
}

static int map_before(const struct yr_map *a, uint32_t arch, int32_t nr)
{
    return a->arch != arch ? a->arch < arch : a->nr < nr;
}

/* Every routed syscall: n (arch, nr, logical id), sorted here so that each
 * call's lookup is a binary search (over some 240 entries, a linear scan
 * cost 0.1-0.2 us per call). -ENOSPC past YR_MAX_MAP, -EINVAL for a pair given
 * twice: the supervisor then refuses to start (a routed call left out would
 * be refused, ENOSYS, whatever the chain says). */
int yr_ctx_map_all(struct yr_ctx *ctx, const uint32_t *arch, const int32_t *nr,
                   const int32_t *sys, int n)
{
    if (n < 0 || n > YR_MAX_MAP)
        return -ENOSPC;
    ctx->nmap = 0;
    for (int i = 0; i < n; i++) {           /* insertion sort: once, at start */
        int at = ctx->nmap;
        while (at > 0 && !map_before(&ctx->map[at - 1], arch[i], nr[i])) {
            if (ctx->map[at - 1].arch == arch[i] && ctx->map[at - 1].nr == nr[i])
                return -EINVAL;
            ctx->map[at] = ctx->map[at - 1];
            at--;
        }
        ctx->map[at] = (struct yr_map){ arch[i], nr[i], sys[i] };
        ctx->nmap++;
    }
    return 0;
}

/* Wake the receiver on the caller's CPU: about 3 us instead of 11 per call. */
int yr_ctx_sync_wakeup(struct yr_ctx *ctx)
{
    if (ioctl(ctx->listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
              SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0)
        return -errno;
    /* SET_FLAGS came (6.6) with recv_wait_event, which also wakes when the
     * filter's last user is gone: from then on RECV needs no poll first. */
    ctx->recv_first = 1;
    return 0;
}

static int32_t lookup_sys(const struct yr_ctx *ctx, uint32_t arch, int32_t nr)
{
    int lo = 0, hi = ctx->nmap;             /* map[] is sorted: yr_ctx_map_all */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (map_before(&ctx->map[mid], arch, nr))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ctx->nmap && ctx->map[lo].arch == arch && ctx->map[lo].nr == nr
        ? ctx->map[lo].sys : YR_SYS_NONE;
}

int32_t yr_ctx_sys(struct yr_ctx *ctx, uint32_t arch, int32_t nr)
{
    return lookup_sys(ctx, arch, nr);
}

/* Deferred mode (the ptrace backend): a reply is kept, not sent; the tracer
 * applies it to the stopped caller's registers (tracer.c). The last one wins. */
static int defer_resp(struct yr_ctx *ctx)
{
    struct yr_deferred *r = &ctx->reply;
    if (r->fd >= 0)
        close(r->fd);
    *r = (struct yr_deferred){ .fd = -1 };
    if (ctx->resp->flags & SECCOMP_USER_NOTIF_FLAG_CONTINUE) {
        r->kind = YR_DEFER_CONTINUE;
    } else {
        r->kind = YR_DEFER_RETURN;
        r->val = ctx->resp->val;
        r->err = -ctx->resp->error;
    }
    return 0;
}

/* fd becomes the kept reply's (its taker closes it). */
static int defer_fd(struct yr_ctx *ctx, int fd, uint32_t newfd_flags)
{
    if (ctx->reply.fd >= 0)
        close(ctx->reply.fd);
    ctx->reply = (struct yr_deferred){ .kind = YR_DEFER_FD, .fd = fd,
                                       .fd_flags = newfd_flags };
    return 0;
}

/* The kept reply, handed over (its fd, if any, is the caller's to close). */
int yr_ctx_take_reply(struct yr_ctx *ctx, struct yr_deferred *out)
{
    *out = ctx->reply;
    ctx->reply = (struct yr_deferred){ .fd = -1 };
    return out->kind;
}

static int send_resp(struct yr_ctx *ctx)
{
    if (ctx->deferred)
        return defer_resp(ctx);
    for (;;) {
        if (ioctl(ctx->listener, SECCOMP_IOCTL_NOTIF_SEND, ctx->resp) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == ENOENT) {          /* the caller died or was interrupted: normal */
            ctx->stats[STAT_CALLER_GONE]++;
            return 0;
        }
        return -errno;
    }
}

int yr_reply(struct yr_ctx *ctx, uint64_t id, int64_t val, int32_t err)
{
    memset(ctx->resp, 0, ctx->resp_size);
    ctx->resp->id = id;
    ctx->resp->val = err ? -1 : val;
    ctx->resp->error = err ? -err : 0;
    return send_resp(ctx);
}

int yr_reply_continue(struct yr_ctx *ctx, uint64_t id)
{
    memset(ctx->resp, 0, ctx->resp_size);
    ctx->resp->id = id;
    ctx->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    return send_resp(ctx);
}

/* Install fd in the caller as the syscall's result; fd is ours to close,
 * and closed here. The caller must not run before our copy and the
 * ioctl's own reference are gone: with ADDFD_FLAG_SEND it was woken while
 * we still held the open file, so a file it had just written and closed
 * was still open for writing (its execve failed with ETXTBSY, inotify's
 * IN_CLOSE_WRITE came after close returned, a flock outlived its close).
 * So the fd is added (the ioctl returns once the caller took its copy and
 * the kernel dropped its own), ours closed, and only then the result sent.
 * Between the two the caller's wait can only be killed
 * (WAIT_KILLABLE_RECV): a number is left over only in a process that dies. */
int yr_reply_addfd(struct yr_ctx *ctx, uint64_t id, int fd, uint32_t newfd_flags)
{
    if (ctx->deferred)
        return defer_fd(ctx, fd, newfd_flags);
    int stepped = yr_pool_step_out(ctx);   /* other callers find a receiver meanwhile */
    long got = yr_listener_addfd(ctx->listener, id, fd, newfd_flags);
    if (stepped)
        yr_pool_step_back(ctx);
    if (got == -ENOENT) {
        ctx->stats[STAT_CALLER_GONE]++;
        return 0;
    }
    return got < 0 ? (int)got : yr_reply(ctx, id, got, 0);
}

/* The first half of that, for any thread (worker.c too): fd added to the
 * caller of notification id, and closed. Its number there, or -errno. The
 * ioctl returns once the caller has installed it. */
long yr_listener_addfd(int listener, uint64_t id, int fd, uint32_t newfd_flags)
{
    struct seccomp_notif_addfd add = {
        .id = id, .srcfd = (uint32_t)fd, .newfd = 0, .newfd_flags = newfd_flags,
    };
    long got;
    while ((got = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add)) < 0 && errno == EINTR)
        ;
    int err = got < 0 ? errno : 0;
    close(fd);
    return err ? -err : got;
}

/* 1: the caller still waits on this notification; 0: it is gone. */
int yr_id_valid(struct yr_ctx *ctx, uint64_t id)
{
    if (ctx->deferred)
        return 1;              /* the caller sits in a ptrace-stop until we resume it */
    return ioctl(ctx->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

void yr_ctx_stats(struct yr_ctx *ctx, uint64_t out[4])
{
    memcpy(out, ctx->stats, sizeof(ctx->stats));
}

/* 1: a notification was received; 0: no caller is left; <0: -errno.
 * With recv_first, RECV waits by itself (one syscall per notification) and
 * answers ENOENT once no caller is left (or one vanished): a poll that does
 * not wait tells the two apart. Older kernels' RECV may block for ever with
 * no caller left, so there poll comes first. */
static int receive(struct yr_ctx *ctx)
{
    int try_recv = ctx->recv_first;
    for (;;) {
        struct pollfd p = { .fd = ctx->listener, .events = POLLIN };
        if (try_recv) {
            try_recv = 0;
            memset(ctx->req, 0, ctx->req_size);
            if (ioctl(ctx->listener, SECCOMP_IOCTL_NOTIF_RECV, ctx->req) == 0) {
                ctx->stats[STAT_RECEIVED]++;
                return 1;
            }
            if (errno != EINTR && errno != ENOENT)
                return -errno;
            if (poll(&p, 1, 0) < 0 && errno != EINTR)
                return -errno;
            if (!(p.revents & POLLIN) && (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
                return 0;
            try_recv = 1;
            continue;
        }
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (!(p.revents & POLLIN)) {
            if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
                return 0;
            continue;
        }
        memset(ctx->req, 0, ctx->req_size);   /* the kernel refuses a dirty buffer */
        if (ioctl(ctx->listener, SECCOMP_IOCTL_NOTIF_RECV, ctx->req) == 0) {
            ctx->stats[STAT_RECEIVED]++;
            return 1;
        }
        if (errno == EINTR || errno == ENOENT)  /* the caller vanished meanwhile */
            continue;
        return -errno;
    }
}

static int is_ptrace_access(int32_t sys)
{
    return sys == YR_SYS_PROCESS_VM_READV || sys == YR_SYS_PROCESS_VM_WRITEV;
}

/* An execve by a thread other than its leader gives it the leader's tid
 * (de_thread) and with it the leader's cached identity (caller.c), whose
 * groups need not be its own (a thread may set its own with a raw
 * setgroups): read again, noticed before the exec. A routed call the
 * leader makes between this notice and the exec refills it (left, said in
 * docs/hostile.md). */
static void exec_takes_leaders_tid(const struct yr_event *ev)
{
    pid_t tgid = yr_tgid_of(ev->tid);
    if (tgid > 0 && tgid != ev->tid) {
        yr_identity_notice(tgid);
        /* and its root, which may not be the leader's kept one: a thread
         * cloned with CLONE_NEWNS (no route sees it) has a mount namespace
         * of its own. The leader may make a call between this notice and
         * the exec and have its root kept again, so roots are no longer
         * kept at all (caller.c). */
        yr_roots_may_move();
    }
}

/* A call that may move its caller to another user namespace, or a root,
 * noticed before the kernel makes it (caller.c keeps both). */
static void note_moves(const struct yr_event *ev)
{
    uint64_t what = ev->args[ev->sys == YR_SYS_SETNS ? 1 : 0];
    switch (ev->sys) {
    case YR_SYS_SETNS:                   /* nstype 0: whatever the fd is, a pidfd's several */
        yr_identity_notice(ev->tid);
        if ((uint32_t)what == 0 || (what & CLONE_NEWNS))
            yr_roots_may_move();
        break;
    case YR_SYS_UNSHARE:                 /* the identity: the NOTICE server's, below */
        if (what & CLONE_NEWNS)
            yr_roots_may_move();
        break;
    case YR_SYS_CHROOT: case YR_SYS_PIVOT_ROOT:
        yr_roots_may_move();
        break;
    default:
        break;
    }
}

/* Settle in C what no module could decide differently. 1: settled. */
static int settle_fast(struct yr_ctx *ctx, struct yr_event *ev)
{
    if (ev->sys == YR_SYS_NONE) {
        /* Routed but unknown to us: a bug in the filter. Fail closed. */
        yr_reply(ctx, ev->id, 0, ENOSYS);
        return 1;
    }
    yr_exec_note(ev);      /* procinfo.c: a non-leader's execve noted (PR_SET_PTRACER lifetimes) */
    note_moves(ev);
    if (ev->sys == YR_SYS_EXECVE || ev->sys == YR_SYS_EXECVEAT)
        exec_takes_leaders_tid(ev);
    int server = yr_sys_server(ev->sys);
    if (server == YR_SERVE_NOTICE) {
        yr_identity_notice(ev->tid);   /* caller.c: before the change, which the kernel makes */
        yr_reply_continue(ctx, ev->id);
        return 1;
    }
    if (server == YR_SERVE_LINK || server == YR_SERVE_WALK) {
        /* link.c, walk.c: 0 only at a hook point */
        if (server == YR_SERVE_LINK ? yr_link_settle(ctx, ev) : yr_walk_settle(ctx, ev))
            return 1;
        if ((ev->tgid = yr_caller_tgid(ctx->call)) < 0) {
            yr_walk_resume(ctx, ev->id, ESRCH);    /* Python needs it; the caller is gone */
            return 1;
        }
        return 0;
    }
    /* process_vm_* within one's own thread group: the kernel allows it before
     * any LSM is asked, so Yama never sees it: continued, and the kernel
     * finds its own errors. The pid is a number of the caller's pid
     * namespace: compared with ours only when that is ours. */
    if (is_ptrace_access(ev->sys)) {
        pid_t target = (pid_t)(int32_t)ev->args[0];
        if ((target == ev->tgid || yr_tgid_of(target) == ev->tgid) &&
            yr_in_our_pidns(ev->tid) == 1) {
            yr_reply_continue(ctx, ev->id);
            return 1;
        }
    }
    /* Otherwise first the errors the kernel finds before it looks at the
     * target, which Python's answer must not hide. */
    if (is_ptrace_access(ev->sys)) {
        int early = yr_pvm_precheck(ev);
        if (early <= 0) {
            yr_reply(ctx, ev->id, 0, -early);
            return 1;
        }
    }
    return yr_ptrace_settle(ctx, ev);   /* ptrace_fast.c: when the ptrace module alone decides */
}

int yr_next(struct yr_ctx *ctx, struct yr_event *ev)
{
    yr_pool_step_back(ctx);             /* back from Python */
    for (;;) {
        if (yr_pool_idle(ctx))          /* the last call is done */
            return YR_NEXT_RETIRE;
        yr_pool_wait_turn(ctx);         /* one receiver serves; another while it steps out */
        int rc = receive(ctx);
        if (rc <= 0) {
            yr_pool_leave(ctx, 1);
            return rc;
        }
        const struct seccomp_notif *n = ctx->req;
        memset(ev, 0, sizeof(*ev));
        ev->id = n->id;
        ev->tid = (int32_t)n->pid;
        if (yr_pool_busy(ctx, ev->tid)) {
            /* Its process has calls stalled already: refused before
             * anything of it is read, as the kernel when it cannot
             * allocate (docs/stall.md). */
            yr_reply(ctx, n->id, 0, ENOMEM);
            continue;
        }
        ev->arch = n->data.arch;
        ev->nr = n->data.nr;
        if (yr_abi_refused(n->data.arch, n->data.nr)) {
            yr_reply(ctx, n->id, 0, ENOSYS);    /* as the kernel: no x32 here */
            continue;
        }
        ev->sys = lookup_sys(ctx, n->data.arch, n->data.nr);
        yr_event_args(ev, n->data.args);
        if (!yr_settle(ctx, ev)) {
            yr_pool_step_out(ctx);      /* Python decides: others are served meanwhile */
            return 1;
        }
    }
}

/* A decoded call (from RECV or from a ptrace-stop): 1 when settled here
 * (replied), 0 when it is Python's to decide. */
int yr_settle(struct yr_ctx *ctx, struct yr_event *ev)
{
    /* A link's or a walked call's tgid is found only if needed (caller.c:
     * yr_caller_tgid; before Python, below). */
    int server = yr_sys_server(ev->sys);
    int is_path = server == YR_SERVE_LINK || server == YR_SERVE_WALK;
    ev->tgid = is_path ? 0 : yr_tgid_of(ev->tid);
    if (ev->tgid < 0 || yr_caps(ev->tid, &ev->cap_effective, &ev->cap_permitted) < 0) {
        /* The caller is gone; the reply only tells the kernel we saw it. */
        yr_reply(ctx, ev->id, 0, ESRCH);
        return 1;
    }
    if (settle_fast(ctx, ev)) {
        ctx->stats[STAT_SETTLED_IN_C]++;
        if (!ctx->refusal.pending)
            return 1;
        /* Answered, and refused by the gate itself: up to Python, which
         * records it (a yama-run: line, the journal) before this receiver
         * serves another call. */
        ctx->refusal.answered = 1;
        ev->tgid = ctx->refusal.tgid;
    }
    ctx->stats[STAT_TO_PYTHON]++;
    yr_fs_reset();         /* Python runs as the supervisor, never as a caller */
    return 0;
}
