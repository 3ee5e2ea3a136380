/* The resolver: one path walked as the caller, for every path call.
 *
 * A path is walked from the caller's cwd, dirfd or root (fds of ours, taken
 * through its /proc/TID directory) while this thread acts with the caller's
 * filesystem identity, to the PARENT of the trailing component, which is
 * then held open. Intermediate symlinks are followed as the kernel follows
 * them, unchecked: one openat2 with RESOLVE_NO_SYMLINKS when none is on the
 * way, else component by component, by hand. What remains to walk is a
 * stack, as in the kernel: the path at the bottom, each link body met on the
 * way above it, so only each body is bounded (PATH_MAX), not their sum, and
 * at most MAXSYMLINKS links are followed in all (ELOOP).
 *
 * The trailing object is looked at in the held parent; a trailing symlink is
 * decided on (its owner, the parent's mode and owner: follow_link), its
 * target read from that very link fd, and followed by hand, hop by hop.
 * /proc/self and /proc/thread-self are the caller's wherever they are met;
 * other /proc symlinks below a pid directory are magic links that only the
 * kernel can follow: it follows them, for us, as the caller, after the gate
 * has judged the link (gate.c). The kernel's mount rules are applied to
 * what is walked by hand: no link on a nosymfollow mount is followed, and
 * RESOLVE_NO_XDEV refuses the last name's crossing and an absolute body's
 * jump (nd_jump_root), as in fs/namei.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "engine.h"

#ifndef ST_NOSYMFOLLOW
#define ST_NOSYMFOLLOW 0x2000
#endif

/* ---- where a walk starts ---------------------------------------------------- */

int yr_open_root(struct yr_call *c)
{
    if (c->res.root >= 0)
        return 0;
    int owned;
    int fd = yr_caller_root(c, &owned);
    if (fd < 0)
        return -ESRCH;
    c->res.root = fd;
    c->res.root_borrowed = !owned;
    return 0;
}

static int same_dir(const struct statx *a, const struct statx *b)
{
    return a->stx_ino == b->stx_ino && a->stx_dev_major == b->stx_dev_major &&
           a->stx_dev_minor == b->stx_dev_minor && a->stx_mnt_id == b->stx_mnt_id;
}

/* Our own "/", read once: the supervisor never changes its root. Not read:
 * every root is taken as one a '..' could leave (dotdot_checked). */
static struct statx our_top;
static int our_top_known;
static pthread_once_t our_top_once = PTHREAD_ONCE_INIT;

static void read_our_top(void)
{
    our_top_known = statx(AT_FDCWD, "/", 0, STATX_INO | STATX_MNT_ID, &our_top) == 0;
}

/* The caller's root (or the RESOLVE scope) opened and statx'ed: 0 if not. */
static int load_root(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (yr_open_root(c) < 0)
        return 0;
    if (!r->root_known) {
        if (statx(r->root, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &r->root_stx) < 0)
            return 0;
        pthread_once(&our_top_once, read_our_top);
        r->root_top = our_top_known && same_dir(&our_top, &r->root_stx);
        r->root_known = 1;
    }
    return 1;
}

/* Is dir the caller's root (or the RESOLVE scope)? ".." stops there. A
 * directory statx'ed already (res.known_dir: the parent of a trailing link
 * just followed) is not asked again: what is compared (inode, device,
 * mount) is fixed for as long as the descriptor is open, and release()
 * forgets it before the descriptor is closed, so its number never stands
 * for another directory. */
static int at_root(struct yr_call *c, int dir)
{
    struct yr_res *r = &c->res;
    struct statx sx;
    if (!load_root(c))
        return 0;
    if (dir >= 0 && dir == r->known_dir)
        return same_dir(&r->known_stx, &r->root_stx);
    return statx(dir, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sx) == 0 &&
           same_dir(&sx, &r->root_stx);
}

/* A walk of this many steps in one call (components, and the climbs that
 * prove a '..' below the root) is made costly on purpose: programs' paths
 * name tens of components, and only link bodies by the hundred ("../" and
 * "d/", through 40 links) or '..' deep below a jail's root add up to it.
 * The kernel takes such a path in milliseconds, the walk by hand in tens to
 * a hundred, and callers that made them one after another from many threads
 * held every other caller of the sandbox for seconds (found by a review:
 * 128 threads, a bystander's open waited 12 s). The receiver is marked
 * stalled there and then (yr_pool_built_to_cost): another serves the others,
 * and the process's next calls are refused once it holds
 * YR_STALLED_PER_PROCESS receivers. */
#define COSTLY_STEPS 1024

static void count_step(struct yr_call *c)
{
    if (++c->res.steps == COSTLY_STEPS)
        yr_pool_built_to_cost(c->ctx);
}

static int below_root(struct yr_call *c, int up);

/* Must a '..' of this walk be checked to land below the root? When the root
 * is not our own '/', and the walk came through it (an absolute path or
 * body, a '..' stopped there), walks an openat2 scope, or set out from a
 * directory below it: a relative walk's start (the caller's cwd or dirfd,
 * looked at here, at the walk's first '..', from the descriptor the walk
 * started from and kept since) or a magic link's directory (through_link).
 * A walk from a directory outside the jail (a chroot without chdir, a cwd
 * moved out before the call, a descriptor of a directory outside) is not
 * checked: the kernel stops '..' at the root only when the walk stands on
 * it, so from there '..' goes on up, natively as here. The race a start
 * below the root closes: the walk steps into D, and D is renamed out of the
 * jail before D's '..' (below_root). */
static int dotdot_checked(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (!r->inside && r->start >= 0 && !r->start_judged && load_root(c) && !r->root_top) {
        r->start_judged = 1;
        r->inside = below_root(c, r->start) != -EAGAIN;   /* BELOW_UNKNOWN: checked */
    }
    return r->inside && !r->root_top;
}

/* Directories below_root found below the root in this call: a climb stops
 * at the first of them it meets. Without it each '..' climbed to the root
 * again: a path of 40 link bodies, each "../" a thousand times down a tree
 * a thousand deep, cost the receiver a minute of look-ups (the kernel's
 * '..' is one step: 2-6 ms for the whole path), and every other caller of
 * the sandbox waited (found by a review). Entries carry the call's
 * generation (proven_gen), so a new call starts with none without clearing
 * the table; allocated on the first climb, so only jailed and scoped walks
 * pay for it. A climb that would go past CLIMB_BUDGET steps in one call
 * fails as a raced one does (EAGAIN), whatever defeats the table. */
#define PROVEN_SLOTS 4096                     /* a power of two */
#define PROVEN_PROBES 8
#define CLIMB_MAX (YR_PATH_MAX / 2)           /* the deepest a path can reach */
#define CLIMB_BUDGET (16 * CLIMB_MAX)
struct proven_key {
    uint64_t ino, mnt;
    uint32_t dev, gen;
};
struct yr_proven {
    struct proven_key slot[PROVEN_SLOTS];
    struct proven_key climb[CLIMB_MAX + 1];  /* the directories of the climb under way */
};

static struct proven_key key_of(const struct statx *sx, uint32_t gen)
{
    return (struct proven_key){ sx->stx_ino, sx->stx_mnt_id,
                                sx->stx_dev_major << 20 | sx->stx_dev_minor, gen };
}

static struct proven_key *proven_slot(struct yr_proven *p, const struct proven_key *k, int *found)
{
    uint64_t h = (k->ino * 0x9E3779B97F4A7C15ULL) ^ (k->mnt << 17) ^ k->dev;
    struct proven_key *free_slot = NULL;
    for (int i = 0; i < PROVEN_PROBES; i++) {
        struct proven_key *s = &p->slot[(h + (uint64_t)i) & (PROVEN_SLOTS - 1)];
        if (s->gen != k->gen) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (s->ino == k->ino && s->mnt == k->mnt && s->dev == k->dev) {
            *found = 1;
            return s;
        }
    }
    *found = 0;
    return free_slot;                         /* NULL: full there, the key is not kept */
}

static int proven_before(struct yr_proven *p, const struct proven_key *k)
{
    int found;
    proven_slot(p, k, &found);
    return found;
}

/* below_root's answer when it could not tell (no memory, a look-up failed,
 * the climb's bound reached): a '..' checked fails with EAGAIN, and a start
 * or a magic link's directory is taken as below the root, so that its '..'
 * is checked (and fails) rather than let go. */
#define BELOW_UNKNOWN (-EDEADLK)

/* The race: the walk stands in a directory D below the root, and another
 * process (outside the jail, or with a name of its own for D) renames D out
 * of it; D's '..' is then outside. The kernel's own '..' of a RESOLVE_BENEATH
 * / IN_ROOT walk fails with EAGAIN when any rename ran meanwhile (rename_lock);
 * a walk by hand is far slower, so the window is wide (a swapper in a loop
 * won most attempts). So the directory a '..' reached (up) is walked up to
 * the root, as ourselves (a yes or no that tells the caller nothing): found,
 * it is below the root; our own top reached first, it is not (EAGAIN, as the
 * kernel's scoped walk). Checked after the '..', so whatever the walk goes on
 * from was below the root at that moment; a later rename of it takes its
 * subtree along, and what is renamed into that subtree could as well be
 * renamed into the jail. A directory found below the root earlier in the
 * call ends the climb as the root does: if it was renamed out since, up is
 * in what was its subtree, the same case. */
static int below_root(struct yr_call *c, int up)
{
    struct yr_res *r = &c->res;
    struct statx sx, px;
    int err = BELOW_UNKNOWN, cur = up, n = 0, found = 0;
    if (!r->root_known)
        return BELOW_UNKNOWN;
    if (!r->proven && !(r->proven = calloc(1, sizeof(*r->proven))))
        return BELOW_UNKNOWN;
    struct yr_proven *p = r->proven;
    yr_fs_pause();
    if (statx(cur, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sx) < 0)
        goto out;
    for (;;) {
        struct proven_key k = key_of(&sx, r->proven_gen);
        if (same_dir(&sx, &r->root_stx) || proven_before(p, &k)) {
            err = 0;                             /* the root, or found below it before */
            break;
        }
        if (n == CLIMB_MAX || ++r->climbed > CLIMB_BUDGET)
            break;
        count_step(c);
        p->climb[n++] = k;
        int parent = yr_openat2(cur, "..", O_PATH | O_DIRECTORY, 0);
        if (parent < 0)
            break;
        if (cur != up)
            close(cur);
        cur = parent;
        if (statx(cur, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &px) < 0)
            break;
        if (same_dir(&px, &sx)) {
            err = -EAGAIN;                       /* our own top: not below the root */
            break;
        }
        sx = px;
    }
    for (int i = 0; i < n && err == 0; i++) {   /* each was below the root just now */
        struct proven_key *s = proven_slot(p, &p->climb[i], &found);
        if (s && !found)
            *s = p->climb[i];
    }
out:
    if (cur != up)
        close(cur);
    yr_fs_resume();
    return err;
}

/* dir's '..' (dir not the root), checked to be below the root when it must
 * be: the new fd or -errno. */
static int dotdot(struct yr_call *c, int dir)
{
    int up = yr_openat2(dir, "..", O_PATH | O_DIRECTORY, c->res.resolve & RESOLVE_NO_XDEV);
    if (up < 0 || !dotdot_checked(c))
        return up;
    int err = below_root(c, up);
    if (err < 0) {
        close(up);
        return -EAGAIN;                          /* outside, or not known: as a raced one */
    }
    return up;
}

/* The caller's dirfd (or cwd) as an O_PATH fd of ours. */
int yr_start_at(struct yr_call *c, int32_t dirfd, int want_dir)
{
    char name[32];
    if (dirfd == AT_FDCWD_INT)
        snprintf(name, sizeof(name), "cwd");
    else if (dirfd < 0)
        return -EBADF;
    else
        snprintf(name, sizeof(name), "fd/%d", (int)dirfd);
    int fd = yr_proc_open(c, name, O_PATH | (want_dir ? O_DIRECTORY : 0));
    if ((fd == -EACCES || fd == -EPERM) && dirfd != AT_FDCWD_INT) {
        /* A non-dumpable caller's fd/ belongs to its namespace's root, which an
         * unprivileged supervisor's user namespace does not map: the caller's
         * own descriptor, taken by pidfd_getfd (procinfo.c). */
        yr_fs_reset();
        fd = yr_caller_fd_reopen(c->ev.tid, yr_caller_tgid(c), dirfd, want_dir ? O_DIRECTORY : 0);
        yr_fs_become(&c->id);
    }
    if (fd >= 0 || fd == -ENOTDIR)
        return fd;
    if (fd == -EACCES || fd == -EPERM) {
        /* Refused, not missing: a caller we may not reach (non-dumpable,
         * without a user namespace of ours). Nothing can be checked, so the
         * call fails closed (EPERM), never continued (yr_call_finish). */
        yr_refuse_unreachable(c);
        return -EPERM;
    }
    return dirfd == AT_FDCWD_INT ? -ESRCH : -EBADF;
}

int yr_has_dotdot(const char *p)
{
    for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
        if ((c == p || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
            return 1;
    return 0;
}

/* ---- /proc symlinks ------------------------------------------------------------ */

enum { PL_NONE, PL_SELF, PL_MAGIC };

/* A symlink called name in dir: an ordinary one, /proc/self or
 * /proc/thread-self (subst: what it means for the caller), or a magic link. */
static int proc_link(struct yr_call *c, int dir, const char *name, const struct stat *link,
                     char *subst, size_t n)
{
    struct statfs sf;
    struct stat ds;
    /* The link lives on its directory's filesystem; one on a block device
     * is never procfs's (whose device is anonymous, major 0). */
    if (major(link->st_dev) != 0)
        return PL_NONE;
    if (fstatfs(dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
        return PL_NONE;
    if (fstat(dir, &ds) < 0)
        return -errno;
    if (ds.st_ino != 1)                 /* below /proc's root: fd/N, cwd, exe, ns/... */
        return PL_MAGIC;
    int self = strcmp(name, "self") == 0, tself = strcmp(name, "thread-self") == 0;
    if (!self && !tself)
        return PL_NONE;                 /* mounts -> self/mounts: ordinary */
    /* The caller's numbers in this /proc's pid namespace: ours, or its own
     * namespace's; any other: fail closed (gate.c). */
    pid_t tgid, tid;
    int err = yr_gate_self_numbers(c, dir, &tgid, &tid);
    if (err < 0)
        return err;
    if (self)
        snprintf(subst, n, "%d", (int)tgid);
    else
        snprintf(subst, n, "%d/task/%d", (int)tgid, (int)tid);
    return PL_SELF;
}

/* ---- the stack of what remains ---------------------------------------------- */

/* A walk that starts at (or jumps to) the caller's root walks from res.root
 * itself, borrowed, not from a copy (a dup and its close saved per absolute
 * path): release() closes every other descriptor of the walk, never that
 * one (nor res.start, kept for dotdot_checked), and own() gives a descriptor
 * of the call's own where one is kept (res.dir), so each is closed once, by
 * yr_call_close: a second close could close whatever another receiver
 * thread had opened under that number meanwhile. */
static void release(struct yr_call *c, int fd)
{
    if (fd == c->res.known_dir)
        c->res.known_dir = -1;
    if (fd != c->res.root && fd != c->res.start)
        yr_close(fd);
}

static int own(struct yr_call *c, int fd)
{
    if (fd < 0 || (fd != c->res.root && fd != c->res.start))
        return fd;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return copy < 0 ? -errno : copy;
}

static int to_root(struct yr_call *c, int *cur)
{
    if (c->res.resolve & RESOLVE_BENEATH)
        return -EXDEV;
    int err = yr_open_root(c);
    if (err < 0)
        return err;
    release(c, *cur);
    *cur = c->res.root;
    c->res.inside = 1;
    return 0;
}

/* A link followed by hand must not be on a nosymfollow mount: the kernel
 * refuses any link there, magic ones included (pick_link: ELOOP). lfd: the
 * link itself, held. One fstatfs per link followed by hand. */
static int nosymfollow(int lfd)
{
    struct statfs sf;
    if (fstatfs(lfd, &sf) < 0)
        return -errno;
    return sf.f_flags & ST_NOSYMFOLLOW ? -ELOOP : 0;
}

/* An absolute body under RESOLVE_NO_XDEV (nd_jump_root): EXDEV unless the
 * kernel's root is set already (an absolute path, a scope, a '..' met) and
 * dir, the link's directory, is on the root's mount. */
static int jump_xdev(struct yr_call *c, int dir)
{
    struct yr_res *r = &c->res;
    struct statx sx;
    if (!(r->resolve & RESOLVE_NO_XDEV))
        return 0;
    if (!r->root_set || !load_root(c) ||
        statx(dir, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0)
        return -EXDEV;
    return sx.stx_mnt_id == r->root_stx.stx_mnt_id ? 0 : -EXDEV;
}

/* Make body (in storage of the resolver's) the top of the stack; an
 * absolute one starts again at the root. */
static int push(struct yr_call *c, int *cur, const char *body)
{
    struct yr_res *r = &c->res;
    r->seg[++r->depth] = body;
    if (*body != '/')
        return 0;
    while (*body == '/')
        body++;
    r->seg[r->depth] = body;
    return to_root(c, cur);
}

/* A link's body, NUL-terminated into buf (YR_PATH_MAX + 1 bytes at least):
 * an empty one is ENOENT, as in the kernel. */
static int read_link(int dir, const char *name, char *buf)
{
    ssize_t n = readlinkat(dir, name, buf, YR_PATH_MAX);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ENOENT;
    if (n >= YR_PATH_MAX)
        return -ENAMETOOLONG;
    buf[n] = '\0';
    return 0;
}

/* name looked up in dir as the caller (yr_openat2's flags and resolve), or,
 * refused, as ourselves when dir is the caller's own fd or fdinfo directory,
 * which the kernel lets its thread group search whoever owns it: a process
 * that made itself non-dumpable still reaches its own /proc/self/fd/N (its
 * fd directory is then root's, 0500); or another's fdinfo directory the
 * kernel refuses our thread though its rule allows the caller
 * (yr_gate_search_unasked). What is found is judged as ever. */
int yr_lookup(struct yr_call *c, int dir, const char *name, int flags, uint64_t resolve)
{
    int fd = yr_openat2(dir, name, flags, resolve);
    if (fd < 0 && fd != -EACCES && yr_gate_hides_search(c, dir))
        return -EACCES;                          /* our fd table is no oracle (gate.c) */
    if (fd != -EACCES || !yr_gate_search_unasked(c, dir))
        return fd;
    yr_fs_pause();
    fd = yr_openat2(dir, name, flags, resolve);
    yr_fs_resume();
    return fd;
}

/* Follow the magic link dir/name, which the gate has judged: O_PATH (and
 * extra flags), the kernel follows it; the fd or -errno. A process's own
 * links the kernel never asks about (same thread group), but we follow
 * them for it, and as the caller (its ids, none of its user namespace's
 * capabilities) the kernel would ask us for CAP_SYS_PTRACE over a caller in
 * a user namespace of its own (cap_ptrace_access_check): EACCES where
 * natively it works. So a link of the caller's own process is followed as
 * ourselves, and so is another's that the kernel refuses our thread after
 * the gate applied its rule for the caller and allowed it
 * (yr_gate_judged_for_caller; judged again once followed, by both callers
 * of this); the name was looked up as the caller already (yr_gate_link),
 * its directory searched as the caller. Nothing is opened (O_PATH), and the
 * object is then opened or acted on as the caller, from the held fd. dir is
 * a /proc/PID directory we opened for that process: a name below it cannot
 * come to mean another process's link (a reused pid gets a new directory;
 * the old one's names are gone). */
static int follow_magic(struct yr_call *c, int dir, const char *name, int extra)
{
    int own = c->own_entry;
    if (own)
        yr_fs_pause();
    int fd = yr_openat2(dir, name, O_PATH | extra, c->res.resolve & RESOLVE_NO_XDEV);
    if (own)
        yr_fs_resume();
    /* EACCES only: the ptrace rule's refusal. EPERM is a capability the
     * caller lacks (map_files: CAP_CHECKPOINT_RESTORE, asked first), which
     * ours must never stand in for. */
    if (fd == -EACCES && !own && yr_gate_judged_for_caller(c)) {
        yr_fs_pause();
        fd = yr_openat2(dir, name, O_PATH | extra, c->res.resolve & RESOLVE_NO_XDEV);
        yr_fs_resume();
    }
    return fd;
}

/* An intermediate symlink name in cur, held as lfd (st its fstat): followed
 * into *next, or (an ordinary link) its body, read from lfd, pushed. 0 or
 * -errno. */
static int through_link(struct yr_call *c, int *cur, const char *name, int lfd,
                        const struct stat *st, int *next)
{
    struct yr_res *r = &c->res;
    if ((r->resolve & RESOLVE_NO_SYMLINKS) || ++r->hops > MAXSYMLINKS)
        return -ELOOP;
    int err = nosymfollow(lfd);
    if (err < 0)
        return err;
    char subst[64];
    int pl = proc_link(c, *cur, name, st, subst, sizeof(subst));
    if (pl < 0)
        return pl;
    if (pl == PL_SELF) {
        *next = yr_openat2(*cur, subst, O_PATH | O_DIRECTORY, 0);
        return *next < 0 ? *next : 0;
    }
    if (pl == PL_MAGIC) {
        if (r->resolve & RESOLVE_NO_MAGICLINKS)
            return -ELOOP;
        if (r->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT))
            return -EXDEV;                       /* nd_jump_link: not in a scope */
        err = yr_gate_link(c, *cur, name);
        if (err < 0)
            return err;
        *next = follow_magic(c, *cur, name, O_DIRECTORY);
        if (*next >= 0 && (err = yr_gate_recheck(c)) < 0) {
            close(*next);
            *next = -1;
            return err;
        }
        if (*next < 0)
            return *next;
        /* The walk sets out anew from the descriptor's directory, as the
         * kernel's (nd_jump_link): its '..' is checked when that directory
         * is below the root, whatever the walk did before (dotdot_checked). */
        r->start_judged = 1;
        r->inside = load_root(c) && !r->root_top && below_root(c, *next) != -EAGAIN;
        return 0;
    }
    if (r->depth + 1 > MAXSYMLINKS)
        return -ELOOP;
    err = read_link(lfd, "", r->bodies[r->depth + 1]);
    if (err < 0)
        return err;
    if (r->bodies[r->depth + 1][0] == '/' && (err = jump_xdev(c, *cur)) < 0)
        return err;
    *next = -1;
    return push(c, cur, r->bodies[r->depth + 1]);   /* cur stays: the body is walked from it */
}

/* One intermediate component (not "." or the last): cur moves into it.
 * *moved: a link was followed or ".." stepped, so what remains of this
 * level starts somewhere new (prefix_at_once may take it at once). */
static int step(struct yr_call *c, int *cur, const char *name, int *moved)
{
    struct yr_res *r = &c->res;
    int next;
    count_step(c);
    if (strcmp(name, "..") == 0) {
        *moved = 1;
        r->root_set = 1;
        if (at_root(c, *cur)) {
            r->inside = 1;
            return r->resolve & RESOLVE_BENEATH ? -EXDEV : 0;
        }
        next = dotdot(c, *cur);
    } else {
        next = yr_lookup(c, *cur, name, O_PATH | O_NOFOLLOW | O_DIRECTORY,
                         r->resolve & RESOLVE_NO_XDEV);
        if (next == -ENOTDIR) {
            /* Not a directory: held as it is now, and decided on as held.
             * Swapped (renameat2 RENAME_EXCHANGE) since the look-up above,
             * it may be a directory again (walked into, as the kernel would
             * have had it been looked up now) or a link whose body is read
             * from the held fd, never from a name that could mean another. */
            struct stat st;
            int held = yr_lookup(c, *cur, name, O_PATH | O_NOFOLLOW,
                                 r->resolve & RESOLVE_NO_XDEV);
            if (held < 0)
                return held;
            if (fstat(held, &st) < 0 || !(S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode))) {
                close(held);
                return yr_gate_hides_search(c, *cur) ? -EACCES : -ENOTDIR;
            }
            if (S_ISDIR(st.st_mode)) {
                next = held;
            } else {
                *moved = 1;
                int err = through_link(c, cur, name, held, &st, &next);
                close(held);
                if (err < 0 || next < 0)
                    return err;
            }
        }
    }
    if (next < 0)
        return next;
    release(c, *cur);
    *cur = next;
    return 0;
}

static const char *skip_slashes(const char *p)
{
    while (*p == '/')
        p++;
    return p;
}

/* Does p (len bytes) begin with the component ".."? */
static int leading_dotdot(const char *p, size_t len)
{
    return len >= 2 && p[0] == '.' && p[1] == '.' && (len == 2 || p[2] == '/');
}

/* The length of the directories of level d still to walk: a link body's
 * are all of it (bodies are pushed only for links with more after them);
 * the path's at the bottom, up to its last name. Trailing slashes left out. */
static size_t dirs_left(const struct yr_res *r, int d)
{
    const char *p = r->seg[d];
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == '/')
        len--;
    if (d == 0) {
        while (len > 0 && p[len - 1] != '/')
            len--;
        while (len > 0 && p[len - 1] == '/')
            len--;
    }
    return len;
}

/* The directories of this level that are still to walk, in one look-up
 * when no link, magic link or ".." is among them (the kernel's
 * RESOLVE_NO_SYMLINKS says so, and the walk then goes on by hand from
 * where it was). A link body's are taken with those of the level below it,
 * which are walked from where the body ends (/lib -> usr/lib, then
 * x86_64-linux-gnu: one look-up), when neither has a "..". Tried whenever
 * the walk starts somewhere new: a link followed, ".." stepped, a body
 * walked to its end, or a walk whose prefix yr_walk could not try (a ".."
 * in it). One leading ".." is taken in the same look-up when cur is not
 * the caller's root (nor the RESOLVE scope): at_root is the same test
 * step() makes before its own ".." (and the same race: the kernel's
 * follow_dotdot too compares the directory it stands in with the root at
 * that moment); any further ".." is stepped by hand. cur moves, or stays
 * when the look-up fails: the components are then stepped one by one. */
static void prefix_at_once(struct yr_call *c, int *cur)
{
    struct yr_res *r = &c->res;
    int d = r->depth;
    size_t len = dirs_left(r, d);
    if (len == 0 || len >= YR_PATH_MAX)
        return;
    char part[YR_PATH_MAX];
    memcpy(part, r->seg[d], len);
    part[len] = '\0';
    int up = leading_dotdot(part, len);
    if (yr_has_dotdot(up ? part + 2 : part) || (up && (at_root(c, *cur) || dotdot_checked(c))))
        return;                         /* ".." at the root, or to check (dotdot): by hand */
    size_t below = d > 0 && !up ? dirs_left(r, d - 1) : 0;
    if (below > 0 && len + 1 + below < YR_PATH_MAX) {
        part[len] = '/';
        memcpy(part + len + 1, r->seg[d - 1], below);
        part[len + 1 + below] = '\0';
        if (yr_has_dotdot(part + len + 1))
            part[len] = '\0', below = 0;  /* the level below by itself, later */
    } else {
        below = 0;
    }
    if (!memchr(part, '/', strlen(part)))
        return;                                  /* one component: a step is as cheap */
    if (up)
        r->root_set = 1;
    int next = yr_openat2(*cur, part, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS |
                          RESOLVE_NO_MAGICLINKS | (r->resolve & RESOLVE_NO_XDEV));
    if (next < 0)
        return;
    release(c, *cur);
    *cur = next;
    r->seg[d] = skip_slashes(r->seg[d] + len);
    if (below)
        r->seg[d - 1] = skip_slashes(r->seg[d - 1] + below);
}

/* The directory a walk ends in (res.dir), one of our own fd, fdinfo or
 * map_files directories? Then no name in it is answered (EACCES), found or
 * not: the kernel lets our threads search them whoever they act as, so
 * every answer would tell what we hold (gate.c). Decided on the directory
 * reached, never on the names on the way: a bind mount of one, an O_PATH
 * descriptor of it or a link to it names no "fd". */
static int final_dir_answers(struct yr_call *c)
{
    return yr_gate_hides_search(c, c->res.dir) ? -EACCES : 0;
}

/* Component by component from cur (consumed) through the stack, to the
 * parent of the last component: sets res.dir, res.name, res.slash.
 * tried: yr_walk tried the prefix from cur already. */
static int walk_slow(struct yr_call *c, int cur, int tried)
{
    struct yr_res *r = &c->res;
    char name[NAME_MAX + 1];
    for (;;) {
        while (r->depth > 0 && *r->seg[r->depth] == '\0') {
            r->depth--;                  /* a body walked to its end */
            tried = 0;
        }
        if (!tried) {
            prefix_at_once(c, &cur);
            tried = 1;
        }
        const char *p = r->seg[r->depth];
        size_t len = strcspn(p, "/");
        const char *q = p + len;
        while (*q == '/')
            q++;
        r->seg[r->depth] = q;
        if (len > NAME_MAX) {
            release(c, cur);
            return -ENAMETOOLONG;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        /* Bodies are pushed only for links with more to walk after them, so
         * the last component is the bottom's. */
        if (r->depth == 0 && *q == '\0') {
            snprintf(r->name, sizeof(r->name), "%s", len ? name : ".");
            r->slash = q != p + len;
            r->dir = own(c, cur);
            return r->dir < 0 ? r->dir : final_dir_answers(c);
        }
        if (len == 0 || strcmp(name, ".") == 0)
            continue;
        int moved = 0;
        int err = step(c, &cur, name, &moved);
        if (err < 0) {
            release(c, cur);
            return err;
        }
        if (moved)
            tried = 0;
    }
}

/* Walk path from `from` (consumed; -1 for an absolute path) to the parent of
 * its last component. One openat2 when no symlink is on the way, else
 * walk_slow. path must stay valid during the walk (it is the bottom of the
 * stack). */
static int walk_to_parent(struct yr_call *c, int from, const char *path)
{
    struct yr_res *r = &c->res;
    int scoped = (r->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) != 0;
    r->depth = -1;
    if (scoped)
        r->inside = 1;                   /* the walk starts at the scope */
    if (path[0] == '/' && !scoped) {
        int err = to_root(c, &from);
        if (err < 0) {
            release(c, from);
            return err;
        }
    }
    const char *rel = path;
    while (*rel == '/' && !scoped)
        rel++;
    /* the last component and the directory part before it */
    size_t len = strlen(rel), end = len;
    while (end > 0 && rel[end - 1] == '/')
        end--;
    size_t last = end;
    while (last > 0 && rel[last - 1] != '/')
        last--;
    /* A scoped walk in one openat2 only from the scope itself: a link body
     * is walked from the link's directory, where RESOLVE_IN_ROOT would stop
     * its ".." (the scope is res.root, not that directory). */
    int slow = end - last > NAME_MAX || (!scoped && path[0] != '/' && yr_has_dotdot(rel)) ||
               (scoped && (path[0] == '/' || (r->hops > 0 && yr_has_dotdot(rel))));
    int tried = r->link_on_way;          /* yr_hold_whole's look-up met a link on the way */
    r->link_on_way = 0;
    slow |= tried;
    int dir = -1;
    if (!slow) {
        uint64_t res = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (r->resolve & RESOLVE_NO_XDEV);
        if (path[0] == '/')
            res |= RESOLVE_IN_ROOT;        /* ".." stops at the caller's root */
        if (scoped)
            res |= r->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT);
        if (last == 0) {
            dir = own(c, from);            /* the start itself (a copy of the root) */
            from = -1;
        } else {
            char part[YR_PATH_MAX];
            memcpy(part, rel, last);
            part[last] = '\0';
            dir = yr_openat2(from, part, O_PATH | O_DIRECTORY, res);
            /* EACCES too: a stranger's link last in the prefix is trailing
             * to this look-up, and the kernel's may_follow_link refuses it
             * before RESOLVE_NO_SYMLINKS says ELOOP, where the call's own
             * walk would pass it (the kernel judges trailing links only) */
            /* ENOENT, ENOTDIR: where the prefix failed is found step by
             * step, each look-up's failure hidden in our fd table (yr_lookup):
             * a bind mount of it names no "fd" */
            if ((dir == -ELOOP && !(r->resolve & RESOLVE_NO_SYMLINKS)) || dir == -EAGAIN ||
                dir == -EXDEV || dir == -EACCES || dir == -ENOENT || dir == -ENOTDIR)
                slow = tried = 1;          /* a symlink, a /proc magic link, or ".." on the way */
        }
    }
    if (slow) {
        yr_close(dir);
        int err = push(c, &from, scoped ? path : rel);
        if (err < 0) {
            release(c, from);
            return err;
        }
        return walk_slow(c, from, tried);
    }
    release(c, from);
    if (dir < 0)
        return dir;
    if (end == last) {                 /* "", "/" or "dir/." forms: the start itself */
        strcpy(r->name, ".");
        r->slash = 0;
    } else {
        memcpy(r->name, rel + last, end - last);
        r->name[end - last] = '\0';
        r->slash = end < len;
    }
    r->dir = dir;
    return final_dir_answers(c);
}

static int walk(struct yr_call *c, int from, const char *path)
{
    int err = walk_to_parent(c, from, path);
    c->res.known_dir = -1;               /* its descriptor may be closed by others from here */
    return err;
}

/* A path of the call's, from its start (not a link body: walk_body). */
int yr_walk(struct yr_call *c, int from, const char *path)
{
    struct yr_res *r = &c->res;
    int scoped = (r->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) != 0;
    r->inside = 0;                       /* until the walk comes through the root */
    r->root_set = path[0] == '/' || scoped;
    yr_close(r->start);                  /* an earlier path's (linkat's new name) */
    r->start = path[0] != '/' && !scoped ? from : -1;
    r->start_judged = 0;
    return walk(c, from, path);
}

/* ---- the trailing component ---------------------------------------------- */

/* link_uid and dir_uid: as yr_owner gives them (an unmapped one matches nothing). */
static uint32_t follow_facts(const struct yr_call *c, uint32_t link_uid, const struct statx *dir,
                             uint32_t dir_uid)
{
    uint32_t f = 0;
    if (yr_same_owner(link_uid, c->id.fsuid))
        f |= YR_FL_OWNER;
    if ((dir->stx_mode & (S_ISVTX | S_IWOTH)) == (S_ISVTX | S_IWOTH))
        f |= YR_FL_DIR_STICKY_WW;
    if (yr_same_owner(dir_uid, link_uid))
        f |= YR_FL_DIR_OWNER;
    return f;
}

/* The kernel's fs.protected_<knob> now (0, 1, 2), read when needed: the
 * calls that ask are rare. Unreadable (no descriptor left, say): 2, the
 * strongest, as a refusal is safer than a guess. */
int yr_kernel_protection(const char *knob)
{
    char path[64], v = '2';
    snprintf(path, sizeof(path), "/proc/sys/fs/protected_%s", knob);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, 1) != 1)
            v = '2';
        close(fd);
    }
    return v >= '0' && v <= '2' ? v - '0' : 2;
}

/* Links followed by hand escape the kernel's own may_follow_link: while
 * fs.protected_symlinks is on, its rule is applied here too (EACCES, no
 * audit: it is the kernel's). */
static int kernel_follow_denies(uint32_t f)
{
    return yr_kernel_protection("symlinks") != 0 && !(f & YR_FL_OWNER) &&
           (f & YR_FL_DIR_STICKY_WW) && !(f & YR_FL_DIR_OWNER);
}

/* Walk again from the held parent to body (copied into the bottom level's
 * storage; a trailing slash kept). */
static int walk_body(struct yr_call *c, const char *body)
{
    struct yr_res *r = &c->res;
    char *buf = r->bodies[0];
    size_t n = strlen(body);
    memmove(buf, body, n + 1);
    if (r->slash)
        strcpy(buf + n, "/");
    if (buf[0] == '/' && (r->resolve & RESOLVE_BENEATH))
        return -EXDEV;
    int err = buf[0] == '/' ? jump_xdev(c, r->dir) : 0;
    if (err < 0)
        return err;
    int from = r->dir;
    r->dir = -1;
    return walk(c, from, buf);
}

/* Follow the link held in res.obj: its target, read from it, walked from its
 * directory (or the caller's root). */
int yr_follow_held(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (r->resolve & RESOLVE_NO_SYMLINKS)
        return -ELOOP;                           /* after may_follow_link, as the kernel */
    int lfd = r->obj;
    r->obj = -1;
    int err = nosymfollow(lfd);
    if (err == 0)
        err = read_link(lfd, "", c->target);
    close(lfd);
    return err < 0 ? err : walk_body(c, c->target);
}

/* A trailing link to follow, held (res.obj) and stat'ed (res.st) by look().
 * 0: walk on; R_DONE: the object is settled (a magic link); R_HOOK: Python
 * decides; <0: errno. */
static int trailing_link(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (++r->hops > MAXSYMLINKS)
        return -ELOOP;
    char subst[64];
    int pl = proc_link(c, r->dir, r->name, &r->st, subst, sizeof(subst));
    if (pl < 0)
        return pl;
    if (pl != PL_NONE) {
        int err = nosymfollow(r->obj);
        if (err < 0)
            return err;
        yr_close(r->obj);                        /* what it means is found anew, below */
        r->obj = -1;
    }
    if (pl == PL_SELF) {
        if (r->resolve & RESOLVE_NO_SYMLINKS)
            return -ELOOP;
        return walk_body(c, subst);
    }
    if (pl == PL_MAGIC) {
        if (r->resolve & (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS))
            return -ELOOP;
        if (r->resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT))
            return -EXDEV;                       /* nd_jump_link: not in a scope */
        r->magic = 1;
        return R_DONE;
    }
    /* The decision is made on the link held (its owner: res.st, its own
     * fstat) and the parent held (its mode and owner), and the body is read
     * from that same fd and walked from that same parent (yr_follow_held):
     * a link renamed or replaced meanwhile changes nothing decided here.
     * The parent's statx also serves the body's first ".." (at_root). */
    struct statx ds;
    if (statx(r->dir, "", AT_EMPTY_PATH, STATX_MODE | STATX_UID | STATX_INO | STATX_MNT_ID,
              &ds) < 0)
        return -errno;
    r->known_dir = r->dir;
    r->known_stx = ds;
    if (ds.stx_mode & S_ISVTX) {                 /* a hook point */
        uint64_t follow_mask, create_mask;
        yr_walk_config(&follow_mask, &create_mask);
        uint32_t link_uid = yr_owner(r->obj, r->st.st_uid, 0);
        uint32_t dir_uid = yr_owner(r->dir, ds.stx_uid, 0);
        uint32_t f = follow_facts(c, link_uid, &ds, dir_uid);
        if (kernel_follow_denies(f))
            return -EACCES;
        if (!yr_walk_table_allows(follow_mask, f)) {
            struct yr_walk *pub = &c->pub;
            pub->facts = f;
            pub->obj_uid = link_uid;
            pub->obj_mode = r->st.st_mode;
            pub->dir_uid = dir_uid;
            pub->dir_mode = ds.stx_mode;
            ssize_t n = readlinkat(r->obj, "", pub->target, sizeof(pub->target) - 1);
            pub->target[n > 0 ? n : 0] = '\0';
            return yr_hook(c, YR_HOOK_FOLLOW_LINK, RESUME_FOLLOW);
        }
    }
    return yr_follow_held(c);
}

/* yr_hold_whole met a trailing link to follow and kept it (res.obj), found
 * by a look-up of its own from the start: is it the name in the parent the
 * walk has held since? Compared by inode: while res.obj is open the link's
 * inode cannot be freed, so no other file can take its number meanwhile,
 * and an equal (dev, ino) means that very link was under this name in this
 * directory when looked at, as an openat from the directory would show. A
 * name swapped between the two look-ups fails the test and is looked at
 * again (look). */
static int held_link_here(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    struct stat st;
    if (!r->held_link)
        return 0;
    r->held_link = 0;
    if (fstatat(r->dir, r->name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        st.st_dev != r->obj_st.st_dev || st.st_ino != r->obj_st.st_ino)
        return 0;
    r->st = r->obj_st = st;
    r->exists = 1;
    return 1;
}

/* The trailing name looked at in the held parent, and held: res.obj, an
 * O_PATH fd of the name itself (not followed), res.st its own fstat. Every
 * later decision (a link followed, the gate, the call's act) is made on that
 * fd and that stat, so no file can be swapped in between a look and a hold.
 * 0 (res.exists: whether the name is there) or -errno. */
static int look(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    if (r->obj >= 0 && held_link_here(c))
        return 0;
    yr_close(r->obj);
    r->obj = -1;
    r->exists = 0;
    /* NO_XDEV: a mountpoint as the last name is a crossing too (EXDEV) */
    int fd = yr_lookup(c, r->dir, r->name, O_PATH | O_NOFOLLOW, r->resolve & RESOLVE_NO_XDEV);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    if (fstat(fd, &r->st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    r->obj = fd;
    r->obj_st = r->st;
    r->exists = 1;
    return 0;
}

/* Settle the trailing component. 0: res.dir/res.name is the object
 * (res.exists, res.st, held as res.obj; res.magic for a magic link, not yet
 * followed); R_HOOK; <0 errno. */
int yr_trail(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    for (;;) {
        if (c->op == OP_OPEN && (c->flags & O_CREAT) && r->slash) {
            /* before the name is looked at, but after the search of its
             * directory (may_lookup, for the last name too): the kernel's
             * EACCES first */
            if (syscall(SYS_faccessat2, r->dir, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) < 0)
                return errno == EACCES ? -EACCES : -EISDIR;
            return -EISDIR;
        }
        if (strcmp(r->name, "..") == 0) {
            r->root_set = 1;
            if (!at_root(c, r->dir)) {
                int nd = dotdot(c, r->dir);
                if (nd < 0)
                    return nd;
                close(r->dir);
                r->dir = nd;
            } else if (r->resolve & RESOLVE_BENEATH) {
                return -EXDEV;
            }
            strcpy(r->name, ".");
        }
        int err = look(c);
        if (err < 0)
            return err;
        /* symlink() creates: its new name is never followed, a slash after
         * it or not (filename_create: an existing name is EEXIST) */
        int slash_follows = r->slash && c->op != OP_SYMLINK;
        if (!r->exists || !S_ISLNK(r->st.st_mode) || !(r->follow || slash_follows))
            return 0;
        int rc = trailing_link(c);
        if (rc == R_DONE)
            return 0;
        if (rc != 0)
            return rc;
    }
}

/* The settled object, held by yr_trail as an O_PATH fd (res.obj,
 * res.obj_st; a magic link followed here), judged by the gate. 0; R_AGAIN
 * to look again; R_HOOK; -errno. Nothing to hold for a name that does not
 * exist (creation). */
int yr_hold_final(struct yr_call *c, enum yr_access access)
{
    struct yr_res *r = &c->res;
    if (r->magic) {
        int err = yr_gate_link(c, r->dir, r->name);
        if (err < 0)
            return err;
        yr_close(r->obj);
        r->obj = -1;
        int fd = follow_magic(c, r->dir, r->name, 0);
        if (fd < 0)
            return fd;
        r->obj = fd;
        if ((err = yr_gate_recheck(c)) < 0)
            return err;
        if (fstat(r->obj, &r->obj_st) < 0)
            return -errno;
        /* A trailing slash wants a directory where the jump lands
         * (LOOKUP_DIRECTORY), and a symlink landed on is not followed. */
        if (r->slash && !S_ISDIR(r->obj_st.st_mode))
            return -ENOTDIR;
    } else if (!r->exists) {
        return 0;
    } else if (r->obj < 0) {
        return R_AGAIN;                          /* not held: look again */
    }
    return yr_gate_held(c, r->obj, &r->obj_st, access);
}

/* The common case in one syscall: a path with no symlink, magic link or
 * ".." on the way, resolved whole with RESOLVE_NO_SYMLINKS (and, absolute,
 * RESOLVE_IN_ROOT at the caller's root) to an O_PATH fd of its object.
 * Anything else (a link met, a trailing slash, a name to create, /proc,
 * RESOLVE_* of the caller's) is left to the walk. 1: res.obj holds the
 * object (res.st, res.obj_st; no parent held); 0: walk (a trailing link to
 * follow stays held in res.obj, res.held_link: the walk does not open it
 * again); -errno: the kernel's answer for this path. from is not consumed. */
int yr_hold_whole(struct yr_call *c, int from, const char *path)
{
    struct yr_res *r = &c->res;
    r->link_on_way = r->held_link = 0;
    size_t len = strlen(path);
    const char *last = strrchr(path, '/');
    last = last ? last + 1 : path;
    if (r->resolve || len == 0 || path[len - 1] == '/' || strcmp(last, ".") == 0 ||
        strcmp(last, "..") == 0 || strlen(last) > NAME_MAX || c->op == OP_SYMLINK ||
        (c->op == OP_OPEN && (c->flags & (O_CREAT | TMPFILE_BIT))))
        return 0;
    uint64_t res = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int start = from;
    const char *rel = path;
    if (path[0] == '/') {
        if (yr_open_root(c) < 0)
            return 0;
        while (*rel == '/')
            rel++;
        start = r->root;
        res |= RESOLVE_IN_ROOT;                 /* ".." stops at the caller's root */
    } else if (yr_has_dotdot(rel)) {
        return 0;
    }
    int obj = yr_openat2(start, rel, O_PATH | O_NOFOLLOW, res);
    /* ELOOP: a link before the last name (O_PATH | O_NOFOLLOW gives a
     * trailing one itself), so yr_walk need not try the same prefix again. */
    r->link_on_way = obj == -ELOOP;
    if (obj == -ELOOP || obj == -EXDEV || obj == -EAGAIN)
        return 0;                                /* a symlink on the way: the walk */
    if (obj == -EACCES)
        return 0;          /* the walk: one directory may be searched whoever owns it (yr_lookup) */
    if (obj == -ENOENT || obj == -ENOTDIR)
        return 0;          /* the walk: where it failed may be our fd table (final_dir_answers) */
    if (obj < 0)
        return obj;
    if (fstat(obj, &r->obj_st) < 0) {
        close(obj);
        return 0;
    }
    if (S_ISLNK(r->obj_st.st_mode) && r->follow) {
        r->obj = obj;                            /* a trailing link to follow: the walk */
        r->held_link = 1;                        /* finds its parent, yr_trail checks it */
        return 0;                                /* there and reads it (held_link_here) */
    }
    if (yr_on_proc_st(obj, &r->obj_st)) {
        close(obj);
        return 0;                                /* /proc: the walk */
    }
    r->obj = obj;
    r->st = r->obj_st;
    r->exists = 1;
    r->slash = r->magic = 0;
    memcpy(r->name, last, strlen(last) + 1);     /* at most NAME_MAX: checked above */
    return 1;
}
