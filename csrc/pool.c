/* The receiver pool and its watchdog (issue 13, docs/stall.md).
 *
 * Receivers, each a Python thread with a context of its own, take
 * notifications from the one listener: YR_RECEIVERS_BASE (two) while none is
 * stalled, but only one of them serves while the other has nothing else to
 * do: seccomp's RECV waits are not exclusive (every waiting receiver
 * is woken for each notification, and all but one go back to sleep: 3-4 µs
 * more per call, measured on two vCPUs). The other is parked
 * (yr_pool_wait_turn) and called in when the one that received steps out
 * for something that waits on another thread (yr_pool_step_out): ADDFD,
 * which waits until the caller has woken and taken its descriptor (two
 * cross-CPU wake-ups: the caller's next call would otherwise wait for the
 * receiver to wake from the second; docs/stall.md), or a call Python
 * decides. Whatever a receiver does for a caller
 * may wait on something the caller controls: a read of its memory that
 * faults into userfaultfd or FUSE, a walk or a stat on a FUSE or hung NFS
 * mount. Such a wait cannot be interrupted (GUP waits killable for the fault
 * handler, a FUSE request until its daemon answers or dies), so it is not
 * prevented but contained: the watchdog notices a receiver busy for longer
 * than STALL_AFTER_NS and not running (it waits in the kernel; one that is
 * only slow on a busy machine is left alone), or busy for longer than
 * STALL_RUNNING_NS whatever it does, marks it stalled and asks Python for another (up to
 * YR_STALLED_MAX), so the other callers keep being served. The stalled
 * receiver finishes its call when the caller or whoever holds it up dies
 * (userfaultfd's last close wakes the fault with an error, a dead FUSE
 * daemon aborts its requests), then retires.
 *
 * A process with YR_STALLED_PER_PROCESS calls stalled gets its next calls
 * refused at once (ENOMEM), before anything of theirs is read: one process
 * cannot take every receiver; many can (YR_STALLED_MAX in all), and then only
 * their own sandbox waits: each sandbox has a supervisor of its own.
 *
 * A process found making a call built to cost (yr_pool_built_to_cost: a
 * chain of YR_COSTLY_GENERATIONS, a walk of 1,024 steps) is remembered for
 * COSTLY_MEMORY_NS, and while it is, a call of its received while another of
 * its calls is served is refused (ENOMEM) too. The stalled count alone let
 * 128 threads' calls of 600 generations be served one after another: each
 * is found costly only 256 generations into its walk and is done soon
 * after, and the kernel hands calls out in the order they came, so a
 * bystander's call waited behind all of them (8 calls in 3 s, the worst
 * 600 ms: test_stall.py's deep descendant, yama-run started by uid 1001). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>

#include "engine.h"

#define STALL_AFTER_NS 100000000ULL   /* busy this long on one call: stalled */
/* ...even running: no call takes a second of CPU unless a program made it
 * costly on purpose (a walk the kernel makes in milliseconds), and waiting
 * that long for a CPU on one call is no load the others should wait for. */
#define STALL_RUNNING_NS 1000000000ULL
#define TICK_NS 50000000L             /* the watchdog looks this often */
#define STALLED ((uint64_t)-1)        /* busy_since of a receiver marked stalled */
#define POOL_SIZE (YR_RECEIVERS_BASE + YR_STALLED_MAX)
#define COSTLY_MEMORY_NS 1000000000ULL   /* a process found costly is remembered this long */
/* Processes remembered at once, the oldest forgotten first (looked through
 * only while one is remembered): a program that runs more processes making
 * such calls meets the stalled bounds above, as before. */
#define COSTLY_REMEMBERED 64

struct yr_pool {
    pthread_mutex_t lock;
    int closed;                 /* no caller left (or the listener failed): no more receivers */
    int n;                      /* receivers in the pool (read without the lock as a hint) */
    int nstalled;               /* of which stalled (read without the lock as a hint) */
    struct yr_ctx *ctx[POOL_SIZE];
    uint64_t stats[YR_POOL_STATS];
    int parked;                 /* under the lock: receivers waiting for their turn */
    pthread_cond_t turn;        /* signalled when a parked receiver may be wanted */
    uint64_t born_ns;           /* when the pool was made */
    struct { pid_t tgid; uint64_t until; } costly[COSTLY_REMEMBERED];   /* under the lock */
    uint64_t costly_until;      /* atomic: the latest of those untils (past: none remembered) */
};

struct yr_pool *yr_pool_new(void)
{
    struct yr_pool *p = calloc(1, sizeof(*p));
    if (p) {
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->turn, NULL);
        p->born_ns = yr_now_ns();
    }
    return p;
}

void yr_pool_free(struct yr_pool *p)
{
    if (!p)
        return;
    pthread_cond_destroy(&p->turn);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ctx serves from now on as one of the pool's receivers. */
int yr_pool_join(struct yr_pool *p, struct yr_ctx *ctx)
{
    pthread_mutex_lock(&p->lock);
    int rc = p->closed ? -ESHUTDOWN : -ENOSPC;   /* closed: the supervisor frees it next */
    if (!p->closed && p->n < POOL_SIZE) {
        ctx->pool = p;
        ctx->stalled = ctx->away = ctx->parked = 0;
        __atomic_store_n(&ctx->busy_since, 0, __ATOMIC_RELAXED);
        p->ctx[p->n] = ctx;
        __atomic_store_n(&p->n, p->n + 1, __ATOMIC_RELAXED);   /* read as a hint by yr_pool_idle */
        p->stats[YR_POOL_STARTED]++;
        if ((uint64_t)p->n > p->stats[YR_POOL_PEAK])
            p->stats[YR_POOL_PEAK] = (uint64_t)p->n;
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static void leave_locked(struct yr_pool *p, struct yr_ctx *ctx)
{
    ctx->away = 0;
    for (int i = 0; i < p->n; i++)
        if (p->ctx[i] == ctx) {
            p->ctx[i] = p->ctx[p->n - 1];
            __atomic_store_n(&p->n, p->n - 1, __ATOMIC_RELAXED);
            break;
        }
    if (ctx->stalled)
        __atomic_sub_fetch(&p->nstalled, 1, __ATOMIC_RELAXED);
    ctx->stalled = 0;
    ctx->pool = NULL;
    /* It may have been the one a parked receiver counted on to come back
     * to RECV (it retires after a call): they look again. */
    pthread_cond_broadcast(&p->turn);
}

/* The receiver stops. closing: no caller is left (every receiver will find
 * the same, so no other is started), or receiving failed; else its context
 * is freed. */
void yr_pool_leave(struct yr_ctx *ctx, int closing)
{
    struct yr_pool *p = ctx->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    if (closing) {
        p->closed = 1;
        pthread_cond_broadcast(&p->turn);   /* the parked find the same */
    }
    leave_locked(p, ctx);
    pthread_mutex_unlock(&p->lock);
}

/* Receivers other than ctx that will take the next call: waiting in RECV,
 * or busy with a call settled in C (it is back in RECV when that call is
 * done); not parked, stepped out or marked stalled. Under the lock. */
static int others_serving_locked(const struct yr_pool *p, const struct yr_ctx *ctx)
{
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        const struct yr_ctx *o = p->ctx[i];
        k += o != ctx && !o->parked && !o->away && !o->stalled;
    }
    return k;
}

/* Before RECV: park while another receiver serves, until the pool closes.
 * A parked receiver is called in by whatever takes the one serving away for
 * long: a step out (ADDFD, Python), a stall mark, a retirement, the close.
 * A receiver busy with a call settled in C counts as serving, as the lone
 * receiver did before: if that call stalls, no other receiver takes a call
 * until the watchdog has marked it, so a process never stalls more than one
 * receiver that is not marked yet, and its next call is refused once
 * YR_STALLED_PER_PROCESS are marked (yr_pool_busy). */
void yr_pool_wait_turn(struct yr_ctx *ctx)
{
    struct yr_pool *p = ctx->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    while (!p->closed && others_serving_locked(p, ctx) > 0) {
        ctx->parked = 1;
        p->parked++;
        pthread_cond_wait(&p->turn, &p->lock);
        ctx->parked = 0;
        p->parked--;
    }
    pthread_mutex_unlock(&p->lock);
}

/* The receiver is about to wait on another thread (ADDFD, Python): if no
 * other serves, a parked receiver is called in. 1: it stepped out now (0:
 * no pool, or out already: an ADDFD of Python's). */
int yr_pool_step_out(struct yr_ctx *ctx)
{
    struct yr_pool *p = ctx->pool;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    int now = !ctx->away;
    ctx->away = 1;
    if (now && p->parked > 0 && others_serving_locked(p, ctx) == 0)
        pthread_cond_signal(&p->turn);
    pthread_mutex_unlock(&p->lock);
    return now;
}

void yr_pool_step_back(struct yr_ctx *ctx)
{
    struct yr_pool *p = ctx->pool;
    /* Read without the lock: only this receiver's own thread writes its
     * flag (others read it, under the lock). Most calls never stepped out. */
    if (!p || !ctx->away)
        return;
    pthread_mutex_lock(&p->lock);
    ctx->away = 0;
    pthread_mutex_unlock(&p->lock);
}

/* A notification from tid was received: the receiver is busy from now on.
 * 1: refuse it (its process has YR_STALLED_PER_PROCESS calls stalled).
 * The process is looked up only while some receiver is stalled or some
 * process is remembered costly. */
static __thread struct yr_ctx *serving;   /* the context this receiver thread serves */

/* Is tgid remembered costly at now? Under the lock. */
static int costly_locked(const struct yr_pool *p, pid_t tgid, uint64_t now)
{
    for (int i = 0; i < COSTLY_REMEMBERED; i++)
        if (p->costly[i].tgid == tgid && p->costly[i].until > now)
            return 1;
    return 0;
}

/* Receivers other than ctx busy with a call of tgid (stalled or not). Under
 * the lock; busy_tgid is known only for calls received while some process
 * was remembered costly or some receiver stalled. */
static int busy_for_locked(const struct yr_pool *p, const struct yr_ctx *ctx, pid_t tgid)
{
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        const struct yr_ctx *o = p->ctx[i];
        k += o != ctx && __atomic_load_n(&o->busy_since, __ATOMIC_ACQUIRE) != 0 &&
             __atomic_load_n(&o->busy_tgid, __ATOMIC_RELAXED) == tgid;
    }
    return k;
}

int yr_pool_busy(struct yr_ctx *ctx, pid_t tid)
{
    struct yr_pool *p = ctx->pool;
    if (!p)
        return 0;
    serving = ctx;
    if (!ctx->thread)                        /* a context is served by one thread */
        __atomic_store_n(&ctx->thread, (pid_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
    __atomic_store_n(&ctx->busy_tid, tid, __ATOMIC_RELAXED);
    __atomic_store_n(&ctx->busy_tgid, 0, __ATOMIC_RELAXED);
    uint64_t now = yr_now_ns();
    /* Release: the watchdog that sees this time sees the tid above. */
    __atomic_store_n(&ctx->busy_since, now, __ATOMIC_RELEASE);
    int remembered = __atomic_load_n(&p->costly_until, __ATOMIC_RELAXED) > now;
    if (__atomic_load_n(&p->nstalled, __ATOMIC_RELAXED) == 0 && !remembered)
        return 0;
    pid_t tgid = yr_tgid_of(tid);
    if (tgid <= 0)
        return 0;                  /* gone: its call is answered ESRCH anyway */
    __atomic_store_n(&ctx->busy_tgid, tgid, __ATOMIC_RELAXED);
    int same = 0, refuse;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->n; i++)
        same += p->ctx[i]->stalled && p->ctx[i]->stalled_tgid == tgid;
    refuse = same >= YR_STALLED_PER_PROCESS ||
             (remembered && costly_locked(p, tgid, now) && busy_for_locked(p, ctx, tgid) > 0);
    if (refuse)
        p->stats[YR_POOL_REFUSED]++;
    pthread_mutex_unlock(&p->lock);
    return refuse;
}

/* The receiver's call is done (it is about to receive the next).
 * 1: it retires (it has left the pool; its context is the caller's to free):
 * it was stalled and another took its place meanwhile, or there are more
 * receivers than wanted (one started for a stall that ended meanwhile). */
int yr_pool_idle(struct yr_ctx *ctx)
{
    struct yr_pool *p = ctx->pool;
    if (!p)
        return 0;
    /* The exchange decides the race with the watchdog's mark: either the
     * watchdog's compare-exchange saw this call still busy (then STALLED is
     * read here), or it finds 0 and marks nothing. */
    int was_stalled = __atomic_exchange_n(&ctx->busy_since, 0, __ATOMIC_ACQ_REL) == STALLED;
    if (!was_stalled && __atomic_load_n(&p->n, __ATOMIC_RELAXED) -
                        __atomic_load_n(&p->nstalled, __ATOMIC_RELAXED) <= YR_RECEIVERS_BASE)
        return 0;                   /* the common case: no lock */
    pthread_mutex_lock(&p->lock);
    if (was_stalled) {
        ctx->stalled = 0;
        __atomic_sub_fetch(&p->nstalled, 1, __ATOMIC_RELAXED);
    }
    int serving_others = p->n - 1 - p->nstalled;
    int retire = serving_others >= YR_RECEIVERS_BASE;
    if (retire)
        leave_locked(p, ctx);
    pthread_mutex_unlock(&p->lock);
    return retire;
}

/* Is this thread of ours running (or waiting for a CPU)? A receiver that is
 * slow only because the machine is busy is not stalled: it would be
 * replaced for nothing, and its caller's next calls refused. */
static int running(pid_t thread)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)thread);
    return yr_stat_state(path) == 'R';
}

/* Mark c stalled on the call that came at since. Fails if the receiver
 * finished that call meanwhile (or took another: a new time): then it is
 * not stalled. Under the lock. */
static void mark_locked(struct yr_pool *p, struct yr_ctx *c, uint64_t since)
{
    pid_t tid = __atomic_load_n(&c->busy_tid, __ATOMIC_RELAXED);
    if (!__atomic_compare_exchange_n(&c->busy_since, &since, STALLED, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    c->stalled = 1;
    c->stalled_tgid = yr_tgid_of(tid);
    __atomic_add_fetch(&p->nstalled, 1, __ATOMIC_RELAXED);
    p->stats[YR_POOL_STALLS]++;
    pthread_cond_broadcast(&p->turn);   /* every receiver left serves now */
}

/* Mark the receivers that have waited on one call for longer than
 * STALL_AFTER_NS. */
static void mark_stalled_locked(struct yr_pool *p, uint64_t now)
{
    for (int i = 0; i < p->n; i++) {
        struct yr_ctx *c = p->ctx[i];
        uint64_t since = __atomic_load_n(&c->busy_since, __ATOMIC_ACQUIRE);
        if (since == 0 || since == STALLED || now - since < STALL_AFTER_NS)
            continue;
        if (now - since < STALL_RUNNING_NS &&
            running(__atomic_load_n(&c->thread, __ATOMIC_RELAXED)))
            continue;
        mark_locked(p, c, since);
    }
}

/* Remember ctx's caller's process as costly (its call is marked). Under the
 * lock. */
static void remember_costly_locked(struct yr_pool *p, struct yr_ctx *ctx)
{
    if (!ctx->stalled || ctx->stalled_tgid <= 0)
        return;
    uint64_t until = yr_now_ns() + COSTLY_MEMORY_NS;
    int slot = 0;
    for (int i = 0; i < COSTLY_REMEMBERED; i++) {
        if (p->costly[i].tgid == ctx->stalled_tgid) {
            slot = i;
            break;
        }
        if (p->costly[i].until < p->costly[slot].until)
            slot = i;              /* the oldest (or an empty slot) */
    }
    p->costly[slot].tgid = ctx->stalled_tgid;
    p->costly[slot].until = until;
    /* Its own call counts as served from now (it may have come when nothing
     * was remembered, and its process was not looked up). */
    __atomic_store_n(&ctx->busy_tgid, ctx->stalled_tgid, __ATOMIC_RELAXED);
    __atomic_store_n(&p->costly_until, until, __ATOMIC_RELAXED);
}

/* ctx's call is costly: marked stalled now, as the watchdog marks one, by its
 * own thread; built: made costly on purpose, its process remembered. */
static void mark_costly(struct yr_ctx *ctx, int built)
{
    struct yr_pool *p = ctx->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    uint64_t since = __atomic_load_n(&ctx->busy_since, __ATOMIC_ACQUIRE);
    if (since != 0 && since != STALLED)
        mark_locked(p, ctx, since);
    if (built)
        remember_costly_locked(p, ctx);
    pthread_mutex_unlock(&p->lock);
}

/* The call this thread serves, if it is a receiver's, is about to cost a
 * walk of all /proc (Python's group signals and sets): marked, not
 * remembered, since a shell's job control makes such calls. */
void yr_pool_mark_costly_here(void)
{
    if (serving)
        mark_costly(serving, 0);
}

/* The call ctx serves was found built to cost (resolve.c, COSTLY_STEPS). */
void yr_pool_built_to_cost(struct yr_ctx *ctx)
{
    mark_costly(ctx, 1);
}

/* The same, from a walk that has no context at hand (a descendant test of
 * YR_COSTLY_GENERATIONS, in C's decisions or Python's). */
void yr_pool_built_to_cost_here(void)
{
    if (serving)
        mark_costly(serving, 1);
}

/* The watchdog, in a thread of its own: returns 1 when another receiver is
 * wanted (Python starts one: yr_ctx_clone, yr_pool_join), 0 once the pool is
 * closed. */
int yr_pool_watch(struct yr_pool *p)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int closed = p->closed;
        if (!closed)
            mark_stalled_locked(p, yr_now_ns());
        /* The second receiver only once the program has run for a tick:
         * a short one (`yama-run -- true`) never waits for its start. */
        int base = yr_now_ns() - p->born_ns < (uint64_t)TICK_NS ? 1 : YR_RECEIVERS_BASE;
        int want = !closed && p->n - p->nstalled < base && p->n < POOL_SIZE;
        pthread_mutex_unlock(&p->lock);
        if (closed)
            return 0;
        if (want)
            return 1;
        struct timespec tick = { 0, TICK_NS };
        nanosleep(&tick, NULL);
    }
}

/* No more receivers (the program's tree is gone). */
void yr_pool_close(struct yr_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->closed = 1;
    pthread_cond_broadcast(&p->turn);
    pthread_mutex_unlock(&p->lock);
}

void yr_pool_stats(struct yr_pool *p, uint64_t out[YR_POOL_STATS])
{
    pthread_mutex_lock(&p->lock);
    memcpy(out, p->stats, sizeof(p->stats));
    out[YR_POOL_NOW] = (uint64_t)p->n;
    pthread_mutex_unlock(&p->lock);
}
