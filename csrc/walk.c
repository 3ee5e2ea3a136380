/* A path call driven from its notification to its reply.
 *
 * The path is read once; the resolver (resolve.c) walks it as the caller to
 * a held parent and trailing name; the object found there is held as an
 * O_PATH fd and judged by the gate (gate.c); then the call is made on that
 * object (open.c, meta.c, link.c), never by name again. Calls that cannot be
 * made for the caller (execve, chdir, chroot, O_PATH opens) are walked,
 * judged and continued.
 *
 * Python is entered only at a hook point: yr_walk_settle (or link.c's
 * yr_link_settle) returns 0 with the facts in yr_ctx_walk(ctx);
 * yr_walk_resume goes on after the chain's verdict, from the same objects. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "engine.h"

/* ---- configuration (set once, before serving) ----------------------------- */

static uint64_t follow_mask = ~0ULL;   /* tabulated follow_link rule */
static uint64_t create_mask = ~0ULL;   /* tabulated create_in_sticky rule */
static uint32_t walk_flags;

/* Our /proc/self/fd, by fd: reopening a held object through it never
 * depends on this thread's root. */
static int own_fd_dir = -1;

void yr_walk_setup(uint64_t fmask, uint64_t cmask, uint32_t flags)
{
    if (own_fd_dir < 0)
        own_fd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    follow_mask = fmask;
    create_mask = cmask;
    walk_flags = flags;
}

uint32_t yr_walk_config(uint64_t *fmask, uint64_t *cmask)
{
    if (fmask)
        *fmask = follow_mask;
    if (cmask)
        *cmask = create_mask;
    return walk_flags;
}

int yr_own_fd_dir(void)
{
    return own_fd_dir;
}

int yr_walk_table_allows(uint64_t mask, uint32_t facts)
{
    return (int)(mask >> (facts & 63) & 1);
}

/* ---- small helpers ----------------------------------------------------------- */

void yr_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* The object held as obj, opened again with flags (errno on failure). */
int yr_reopen(int obj, int flags, uint32_t mode)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", obj);
    return openat(own_fd_dir, name, flags | O_CLOEXEC, (mode_t)mode);
}

int yr_openat2(int dir, const char *name, int flags, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };
    int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
}

/* ---- one call's state ---------------------------------------------------------- */

#define YR_AT_EXECVE_CHECK 0x10000   /* linux/fcntl.h, 6.14; libc headers may lack it */

/* Where an exec's object stands (exec_state). */
enum {
    EXEC_HEADER,        /* held and judged; its header not read yet */
    EXEC_NOTICED,       /* the file the kernel runs: notice given, its PT_INTERP next */
    EXEC_LOADER,        /* an ELF's interpreter: loaded as it is, no header of its own */
};

void yr_call_close(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    yr_close(r->dir);
    yr_close(r->obj);
    if (!r->root_borrowed)
        yr_close(r->root);
    r->root_borrowed = 0;
    yr_close(r->start);
    yr_close(c->ifd);
    yr_close(c->link_src);
    yr_close(c->link_dir);
    yr_close(c->spare_start);
    r->dir = r->obj = r->root = r->start = c->ifd = c->link_src = c->link_dir =
        c->spare_start = -1;
    c->resume = RESUME_NONE;
}

/* Python's views of a new call: the fixed fields zeroed and each string
 * made empty, not the whole 24 KiB of path buffers (clearing them was 4% of
 * the supervisor's time per stat). Every string is written whole, with its
 * NUL, before Python reads it (ffi.string stops at the NUL), so nothing of
 * an earlier call's is ever read past the empty string. */
static void views_clear(struct yr_call *c)
{
    memset(&c->pub, 0, offsetof(struct yr_walk, path));
    c->pub.path[0] = c->pub.name[0] = c->pub.target[0] = '\0';
    memset(&c->link, 0, offsetof(struct yr_link, old_path));
    c->link.old_path[0] = c->link.new_path[0] = c->link.name[0] = '\0';
}

void yr_call_reset(struct yr_call *c, struct yr_ctx *ctx, const struct yr_event *ev)
{
    yr_call_close(c);
    struct yr_res *r = &c->res;
    c->ctx = ctx;
    c->ev = *ev;
    c->retries = 0;
    c->mem_reads = 0;
    c->recheck = c->mm_recheck = 0;
    c->opener_matters = 0;
    c->buf = 0;
    c->xsize = 0;
    c->path[0] = c->target[0] = '\0';
    r->root_known = r->inside = r->root_set = 0;
    r->climbed = 0;
    r->steps = 0;
    if (++r->proven_gen == 0)                    /* below_root's entries of earlier calls */
        r->proven_gen = 1;
    r->known_dir = -1;
    r->resolve = 0;
    r->follow = 1;
    r->hops = 0;
    r->depth = -1;
    r->magic = r->exists = r->slash = r->held_link = 0;
    r->name[0] = '\0';
    c->exec_state = EXEC_HEADER;
    c->interps = c->exec_loader = 0;
    c->taken = -EPERM;                           /* nothing held yet: fail closed */
    views_clear(c);
}

struct yr_walk *yr_ctx_walk(struct yr_ctx *ctx)
{
    return &ctx->call->pub;
}

/* Python is asked: what it sees, and where the call goes on after. */
int yr_hook(struct yr_call *c, int hook, enum yr_resume resume)
{
    struct yr_walk *pub = &c->pub;
    pub->hook = hook;
    pub->fsuid = c->id.fsuid;
    memcpy(pub->path, c->path, sizeof(pub->path));
    snprintf(pub->name, sizeof(pub->name), "%s", c->res.name);
    c->resume = resume;
    return R_HOOK;
}

/* An error of the walk's own making, not the path's: the kernel's walk
 * would not meet it. EAGAIN is a walk that gave up on a name changing under
 * it (16 retries) or on a '..' it could not place (below_root): a race that
 * another user can run, to make the kernel follow, unchecked, what we could
 * not judge. The others are the supervisor's resources. */
static int walk_gave_up(int err)
{
    return err == -EAGAIN || err == -EMFILE || err == -ENFILE || err == -ENOMEM ||
           err == -EINTR;
}

/* Reply with err (0 or -errno) and end the call. 1. */
int yr_call_finish(struct yr_call *c, int err)
{
    int checked = c->op == OP_CHECK || c->op == OP_NAMED;
    if (c->op == OP_HOLD) {
        c->taken = err < 0 ? err : -EPERM;      /* Python answers its call (yr_walk_taken) */
        yr_call_close(c);
        c->pub.hook = 0;
        return 1;
    }
    if (checked && err == -ESRCH)
        /* The caller's memory, root or cwd could not be reached (gone, or
         * a non-dumpable caller we may not ptrace-access: EPERM already):
         * nothing was checked, so nothing is continued (docs/everyday.md:
         * such calls fail closed with EPERM). */
        err = -EPERM;
    if (checked && err != -EACCES && err != -EPERM && !walk_gave_up(err)) {
        /* The kernel walks again and names the error itself. */
        if (yr_id_valid(c->ctx, c->ev.id))
            yr_reply_continue(c->ctx, c->ev.id);
    } else {
        yr_reply(c->ctx, c->ev.id, 0, -err);
    }
    yr_call_close(c);
    c->pub.hook = 0;
    return 1;
}

/* ---- the call's action on its object ------------------------------------------- */

/* What is read of the caller through its tid (/proc/TID: its umask, its
 * root, its id maps) is another task's once a sibling's execve has killed
 * the caller and given the exec'ing thread its tid (de_thread). Checked
 * after those reads and before an effect: under user-notify the killed
 * caller's notification is withdrawn before its tid changes hands
 * (ID_VALID); under ptrace its seccomp stop is gone (tracer.c). */
int yr_call_still_waits(struct yr_call *c)
{
    if (c->ctx->deferred)
        return yr_trace_still_stopped(c->ctx, c->ev.tid);
    return yr_id_valid(c->ctx, c->ev.id);
}


/* Does a metadata call change its object? */
int yr_meta_writes(int32_t sys)
{
    switch (sys) {
    case YR_SYS_GETXATTR: case YR_SYS_LISTXATTR: case YR_SYS_STATFS:
    case YR_SYS_NAME_TO_HANDLE_AT: case YR_SYS_INOTIFY_ADD_WATCH: case YR_SYS_FANOTIFY_MARK:
    case YR_SYS_GETXATTRAT: case YR_SYS_LISTXATTRAT: case YR_SYS_FILE_GETATTR:
    case YR_SYS_READLINK: case YR_SYS_READLINKAT:
        return 0;
    default:
        return 1;
    }
}

/* What the call does to its object, for the gate. */
static enum yr_access access_of(const struct yr_call *c)
{
    switch (c->op) {
    case OP_OPEN:
        return (c->flags & (O_WRONLY | O_RDWR | O_TRUNC)) ? ACC_WRITE : ACC_READ;
    case OP_CHECK:
        return c->ev.sys == YR_SYS_EXECVE || c->ev.sys == YR_SYS_EXECVEAT ? ACC_EXEC : ACC_PATH;
    case OP_META:
        if (c->ev.sys == YR_SYS_READLINK || c->ev.sys == YR_SYS_READLINKAT)
            return ACC_FOLLOW;                   /* the kernel checks a read as a follow */
        return yr_meta_writes(c->ev.sys) ? ACC_WRITE : ACC_STAT;
    case OP_LINK:
        return ACC_LINK;
    case OP_HOLD:
        return ACC_PATH;
    default:
        return ACC_STAT;
    }
}

static int check_continue(struct yr_call *c);

static int is_exec(int32_t sys)
{
    return sys == YR_SYS_EXECVE || sys == YR_SYS_EXECVEAT;
}

/* The exec of a setuid, setgid or file-capability program, which runs
 * without its privilege (no_new_privs): a notice for Python, decided on
 * nothing (the exec goes on: act() again). */
static int exec_notice(struct yr_call *c)
{
    if (!(walk_flags & YR_WALK_EXEC_NOTICE) || c->res.obj < 0)
        return 0;
    uint32_t bits = yr_exec_privilege(c->res.obj, "", c->res.obj_st.st_mode);
    if (!bits)
        return 0;
    c->pub.facts = bits;
    c->pub.obj_uid = c->res.obj_st.st_uid;
    c->pub.obj_mode = c->res.obj_st.st_mode;
    return yr_hook(c, YR_HOOK_EXEC_PRIVILEGED, RESUME_ACT);
}

/* The kernel opens at most six "#!" interpreters for one exec (exec_binprm:
 * depth 0 to 5), then says ELOOP without reading the sixth. */
#define EXEC_INTERPRETERS 6

/* The interpreter the kernel opens next, as the call's next path: relative
 * to the caller's cwd, a trailing link followed (open_exec: no flags of the
 * caller's execveat apply). */
static int interpreter_next(struct yr_call *c)
{
    memcpy(c->path, c->interp, sizeof(c->path));
    c->flags = 0;
    c->dirfd = AT_FDCWD_INT;
    c->res.follow = 1;
    return R_NEXT;
}

/* An exec's object, held and judged. The kernel goes on to open what
 * interprets it: a "#!" line's interpreter (whose own header it reads in
 * turn), an ELF's PT_INTERP (loaded as it is). Each is walked and judged
 * as the exec's own path was (R_NEXT); the notice of a privileged program
 * is for the file whose privilege the kernel would grant: an ELF, never a
 * script. 0: the kernel may go on. A header neither the caller nor we may
 * read (an unprivileged supervisor, another user's --x file): nothing more
 * is walked; one we fail to read otherwise: refused (docs/path-engine.md). */
static int exec_step(struct yr_call *c)
{
    switch (c->exec_state) {
    case EXEC_LOADER:
        return 0;
    case EXEC_HEADER: {
        const struct stat *st = &c->res.obj_st;
        int kind = YR_INTERP_NONE;
        /* AT_EXECVE_CHECK (6.14): the kernel checks the file alone and opens
         * no interpreter (bprm_execve stops before exec_binprm); walking one
         * refused with EACCES a check the kernel answers 0. Only the call's
         * own flags: an interpreter's walk has none (interpreter_next). */
        if (c->ev.sys == YR_SYS_EXECVEAT && (c->flags & YR_AT_EXECVE_CHECK))
            return 0;
        if (c->res.obj < 0)
            return 0;          /* nothing held (no such name): the kernel's ENOENT */
        if (S_ISREG(st->st_mode) && (st->st_mode & 0111) && c->interps < EXEC_INTERPRETERS)
            kind = yr_exec_interpreter(c->res.obj, c->interp, sizeof(c->interp));
        if (kind < 0 && kind != -EACCES && kind != -EPERM)
            /* Not read, though the kernel will read it: a lease (our open is
             * O_NONBLOCK; the kernel's waits for the holder, who drops the
             * lease once we have answered), no descriptor left, an I/O error.
             * What it names is unknown: fail closed (EACCES; any other errno
             * would be continued by yr_call_finish). Unreadable even by us
             * (EACCES, an unprivileged supervisor and a --x file): only its
             * owner chose its "#!" line (docs/path-engine.md). */
            return -EACCES;
        if (kind == YR_INTERP_SCRIPT) {
            c->interps++;
            return interpreter_next(c);          /* its header read once held */
        }
        c->exec_loader = kind == YR_INTERP_ELF;
        c->exec_state = EXEC_NOTICED;
        if (exec_notice(c))
            return R_HOOK;                       /* told, then here again */
    }   /* fall through */
    case EXEC_NOTICED:
        if (!c->exec_loader)
            return 0;
        c->exec_state = EXEC_LOADER;
        return interpreter_next(c);
    }
    return 0;
}

/* OP_HOLD: the object held and judged becomes Python's (yr_walk_taken),
 * once it is there as the path's form requires (ENOENT, ENOTDIR). */
static int hold_taken(struct yr_call *c)
{
    int err = yr_object_there(c);
    if (err < 0)
        return err;
    c->taken = c->res.obj;
    c->res.obj = -1;
    return R_DONE;
}

static int act(struct yr_call *c)
{
    switch (c->op) {
    case OP_OPEN:
        return yr_act_open(c);
    case OP_STAT:
    case OP_STAT64:
    case OP_STATX:
        return yr_act_stat(c);
    case OP_ACCESS:
        return yr_act_access(c);
    case OP_SYMLINK:
        return yr_act_symlink(c);
    case OP_META:
        return yr_act_meta(c);
    case OP_LINK:
        return yr_link_source_held(c);
    case OP_HOLD:
        return hold_taken(c);
    case OP_NAMED:
        if (c->sock_next < c->nsock) {
            snprintf(c->path, sizeof(c->path), "%s", c->sock[c->sock_next++]);
            return R_NEXT;
        }
        /* fall through - every address judged */
    case OP_CHECK:
        if (is_exec(c->ev.sys)) {
            int rc = exec_step(c);
            if (rc)
                return rc;
        }
        return check_continue(c);
    }
    return -ENOSYS;
}

/* A checked call let through: the kernel performs it. */
static int check_continue(struct yr_call *c)
{
    if (!yr_id_valid(c->ctx, c->ev.id))
        return R_DONE;
    if (is_exec(c->ev.sys))
        yr_exec_seen(c);
    else if (c->op == OP_CHECK && c->res.obj >= 0)
        yr_opened_for(c, &c->res.obj_st);        /* an O_PATH file the kernel opens for it */
    yr_reply_continue(c->ctx, c->ev.id);
    return R_DONE;
}

static int walk_next(struct yr_call *c);

/* Map an action's result to the call's end: 1 replied (or handed to a
 * worker), 0 Python decides. */
static int settled(struct yr_call *c, int rc)
{
    if (rc == R_HOOK)
        return 0;
    if (rc == R_NEXT)
        return walk_next(c);
    if (rc == R_DONE) {
        yr_call_close(c);
        c->pub.hook = 0;
        return 1;
    }
    return yr_call_finish(c, rc < 0 ? rc : -EAGAIN);
}

/* From a walked path to a reply or a hook point. */
int yr_call_drive(struct yr_call *c)
{
    for (;;) {
        int rc = yr_trail(c);
        if (rc == 0 && c->op != OP_SYMLINK)
            rc = yr_hold_final(c, access_of(c));
        if (rc == 0)
            rc = act(c);
        if (rc != R_AGAIN)
            return settled(c, rc);
        /* The name changed under us; look at it again. */
        yr_close(c->res.obj);
        c->res.obj = -1;
        if (++c->retries > 16)
            return yr_call_finish(c, -EAGAIN);
    }
}

/* The call on c->path from `from` (consumed): the whole path in one
 * look-up when it can be, else walked. */
int yr_call_run(struct yr_call *c, int from)
{
    int rc = yr_hold_whole(c, from, c->path);
    if (rc < 0) {
        yr_close(from);
        return yr_call_finish(c, rc);
    }
    if (rc == 1) {
        c->spare_start = from;                   /* the call's now (link may take it) */
        rc = yr_gate_held(c, c->res.obj, &c->res.obj_st, access_of(c));
        if (rc == 0)
            rc = act(c);
        if (rc != R_AGAIN)
            return settled(c, rc);
        yr_close(c->res.obj);                    /* changed under us: the walk */
        c->res.obj = -1;
        from = c->spare_start;
        c->spare_start = -1;
        if (from < 0 && c->path[0] != '/' && (from = yr_start_at(c, c->dirfd, 1)) < 0)
            return yr_call_finish(c, from);
    }
    int err = yr_walk(c, from, c->path);
    if (err < 0)
        return yr_call_finish(c, err);
    return yr_call_drive(c);
}

/* The call's next path, put in c->path by act(): the next AF_UNIX address
 * (bind's judged only to its parent), or the interpreter an exec's kernel
 * opens; walked afresh from the caller's cwd or root, and judged. The call
 * is continued once every path is. */
static int walk_next(struct yr_call *c)
{
    struct yr_res *r = &c->res;
    yr_close(r->dir);
    yr_close(r->obj);
    /* The last path's start, kept when it was held whole (yr_call_run): the
     * next path's run sets its own, and lost this one, a descriptor leaked
     * in the supervisor per execve("./script") (or of a dynamic program),
     * per relative AF_UNIX address of a sendmmsg but the last. */
    yr_close(c->spare_start);
    c->spare_start = -1;
    r->dir = r->obj = -1;
    r->magic = r->exists = r->slash = 0;
    r->hops = 0;
    int from = -1;
    if (c->path[0] != '/' && (from = yr_start_at(c, AT_FDCWD_INT, 1)) < 0)
        return yr_call_finish(c, from);
    return yr_call_run(c, from);
}

/* ---- decoding to a walk ------------------------------------------------------------ */

/* access() without AT_EACCESS: the real ids, as access_override_creds,
 * whose capabilities are root's permitted set or none, unless the caller
 * set SECBIT_NO_SETUID_FIXUP: then its effective set, whatever its ids. The
 * securebits of another process cannot be read, so what both rules grant
 * at most is lent: root's effective set (never more than its permitted
 * one), none to others. */
static void access_identity(struct yr_call *c)
{
    if (c->ev.sys == YR_SYS_FACCESSAT2 && (c->flags & AT_EACCESS))
        return;
    c->id.fsuid = c->id.ruid;
    c->id.fsgid = c->id.rgid;
    c->id.caps = c->id.ruid == 0 && !c->id.foreign_userns ? c->ev.cap_effective : 0;
}

/* AT_EMPTY_PATH with an empty path: the caller's descriptor itself. An
 * exec of it is judged for the interpreters the kernel opens after it. */
static int on_dirfd(struct yr_call *c)
{
    if (c->op == OP_CHECK && !is_exec(c->ev.sys))
        return yr_call_finish(c, -ENOENT);       /* continued: the kernel does it */
    int fd = yr_start_at(c, c->dirfd, 0);
    if (fd < 0)
        return yr_call_finish(c, fd);            /* -EBADF, -EPERM or -ESRCH */
    struct yr_res *r = &c->res;
    r->obj = fd;
    r->magic = 1;                                /* reached through the caller's fd */
    if (fstat(fd, &r->obj_st) < 0)
        return yr_call_finish(c, -errno);
    int rc = yr_gate(c, fd, access_of(c));
    if (rc == 0)
        rc = act(c);
    return settled(c, rc);
}

static int empty_path_allowed(const struct yr_call *c)
{
    switch (c->ev.sys) {
    case YR_SYS_NEWFSTATAT: case YR_SYS_FSTATAT64: case YR_SYS_STATX: case YR_SYS_FACCESSAT2:
    case YR_SYS_EXECVEAT: case YR_SYS_FCHOWNAT: case YR_SYS_FCHMODAT2:
    case YR_SYS_NAME_TO_HANDLE_AT: case YR_SYS_OPEN_TREE: case YR_SYS_UTIMENSAT:
    case YR_SYS_UTIMENSAT_TIME64: case YR_SYS_OPEN_TREE_ATTR: case YR_SYS_SETXATTRAT:
    case YR_SYS_GETXATTRAT: case YR_SYS_LISTXATTRAT: case YR_SYS_REMOVEXATTRAT:
    case YR_SYS_FILE_GETATTR: case YR_SYS_FILE_SETATTR:
        return (c->flags & AT_EMPTY_PATH) != 0;
    case YR_SYS_READLINK: case YR_SYS_READLINKAT:
        return 1;                                /* LOOKUP_EMPTY (decode: never NULL) */
    default:
        return 0;
    }
}

int yr_walk_settle(struct yr_ctx *ctx, struct yr_event *ev)
{
    struct yr_call *c = ctx->call;
    yr_call_reset(c, ctx, ev);
    c->op = yr_op_of(ev->sys);
    if (ev->arch == AUDIT_ARCH_I386_ && (ev->sys == YR_SYS_STAT || ev->sys == YR_SYS_LSTAT ||
                                         ev->sys == YR_SYS_STATFS))
        c->op = OP_CHECK;     /* i386's compat layouts: walked, judged and continued */
    int err = yr_caller_identity(ctx, ev, &c->id, &c->procdir);
    if (err < 0)
        return yr_call_finish(c, err);
    if (c->op == OP_NAMED) {
        if (yr_fs_become(&c->id) < 0)
            return yr_call_finish(c, -EPERM);    /* acting as ourselves instead: never */
        c->sock_next = 0;
        err = yr_checked_paths(c);
        if (err < 0)
            return yr_call_finish(c, err);
        return settled(c, act(c));               /* no path: continued at once */
    }
    uint64_t path_addr, target_addr;
    err = yr_decode(c, &path_addr, &target_addr);
    if (err < 0)
        return yr_call_finish(c, err);
    if (c->op == OP_ACCESS)
        access_identity(c);
    if (yr_fs_become(&c->id) < 0)
        return yr_call_finish(c, -EPERM);        /* acting as ourselves instead: never */
    if (c->op == OP_SYMLINK) {
        int n = yr_read_str(c, target_addr, c->target);
        if (n <= 0)
            return yr_call_finish(c, n < 0 ? n : -ENOENT);
    }
    if (((ev->sys == YR_SYS_UTIMENSAT || ev->sys == YR_SYS_UTIMENSAT_TIME64 ||
          ev->sys == YR_SYS_FUTIMESAT || ev->sys == YR_SYS_FANOTIFY_MARK) && path_addr == 0) ||
        (ev->sys == YR_SYS_FANOTIFY_MARK && (c->xflags & FAN_MARK_FLUSH))) {
        /* futimens (do_utimes with no name: dirfd's file, EBADF for O_PATH;
         * AT_FDCWD's EFAULT), a mark on dirfd itself, a flush: no path,
         * nothing to decide; the times were read and checked above, as the
         * kernel checks them first */
        if (yr_id_valid(ctx, ev->id))
            yr_reply_continue(ctx, ev->id);
        yr_call_close(c);
        return 1;
    }
    int empty_ok = empty_path_allowed(c);
    int n = 0;                                   /* NULL with AT_EMPTY_PATH: the fd (6.11) */
    if (!(path_addr == 0 && empty_ok))
        n = yr_read_str(c, path_addr, c->path);
    if (n < 0)
        return yr_call_finish(c, n);
    if (n == 0 && !empty_ok)
        return yr_call_finish(c, -ENOENT);
    if (n == 0)
        return on_dirfd(c);
    int from = -1;                               /* absolute: the caller's root */
    int scoped = (c->res.resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) != 0;
    if (c->path[0] != '/' || scoped) {
        from = yr_start_at(c, c->dirfd, 1);
        if (from < 0)
            return yr_call_finish(c, from);
        if (scoped && (c->res.root = fcntl(from, F_DUPFD_CLOEXEC, 0)) < 0)
            return yr_call_finish(c, -errno);
    }
    return yr_call_run(c, from);
}

/* The path is walked as every path of the caller's is (yr_call_run), as an
 * O_PATH open from its cwd or root would be. The call it came in is
 * Python's to answer (it makes that call after), so nothing is replied:
 * the end is kept in taken. Python runs as the supervisor again on return.
 * Race: the cwd and root are taken by tid, which a sibling's execve may
 * hand to the exec'ing thread meanwhile; the caller's notification is
 * withdrawn first, so what is held then serves no one: Python's ADDFD of
 * the call's result fails, as for an open. */
int yr_walk_hold(struct yr_ctx *ctx, const struct yr_event *ev, const char *path)
{
    struct yr_call *c = ctx->call;
    yr_call_reset(c, ctx, ev);
    c->op = OP_HOLD;
    c->flags = O_PATH;
    c->dirfd = AT_FDCWD_INT;
    int rc, from = -1;
    int err = strlen(path) < sizeof(c->path) ? 0 : -ENAMETOOLONG;
    if (err == 0)
        err = yr_caller_identity(ctx, ev, &c->id, &c->procdir);
    if (err == 0 && yr_fs_become(&c->id) < 0)
        err = -EPERM;                            /* acting as ourselves instead: never */
    if (err == 0) {
        strcpy(c->path, path);
        if (path[0] != '/' && (from = yr_start_at(c, c->dirfd, 1)) < 0)
            err = from;
    }
    rc = err < 0 ? yr_call_finish(c, err) : yr_call_run(c, from);
    yr_fs_reset();
    return rc;
}

int yr_walk_taken(struct yr_ctx *ctx)
{
    struct yr_call *c = ctx->call;
    int taken = c->taken;
    c->taken = -EPERM;                           /* handed once */
    return taken;
}

/* After Python's verdict at a hook point. 1: replied; 0: another hook point. */
int yr_walk_resume(struct yr_ctx *ctx, uint64_t id, int32_t deny_errno)
{
    struct yr_call *c = ctx->call;
    (void)id;
    if (!c->pub.hook)
        return 1;
    c->pub.hook = 0;
    yr_fs_become(&c->id);
    enum yr_resume at = c->resume;
    c->resume = RESUME_NONE;
    int rc;
    if (deny_errno) {
        rc = yr_call_finish(c, -deny_errno);
    } else if (at == RESUME_FOLLOW) {
        int err = yr_follow_held(c);
        rc = err < 0 ? yr_call_finish(c, err) : yr_call_drive(c);
    } else if (at == RESUME_SYMLINK) {
        rc = settled(c, yr_perform_symlink(c));
    } else if (at == RESUME_OPEN) {
        rc = settled(c, yr_open_final(c));
    } else if (at == RESUME_ACT) {
        rc = settled(c, act(c));
    } else if (at == RESUME_LINK) {
        rc = yr_link_resume(c, 0);
    } else if (at == RESUME_LINK_SYMLINK) {
        rc = yr_link_symlink_resume(c);
    } else {
        rc = yr_call_finish(c, -EPERM);          /* nothing waits: fail closed */
    }
    if (rc)
        yr_fs_reset();                           /* Python runs as the supervisor */
    return rc;
}
