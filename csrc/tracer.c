/* The ptrace backend's mechanism: a seccomp stop read as a yr_event, and the
 * reply the handlers left in the context (notify.c, deferred mode) applied to
 * the stopped caller.
 *
 * The hot path is here: yr_trace_next waits, and a seccomp stop that C can
 * settle (as yr_next settles a notification) is answered and resumed without
 * entering Python. Everything else a debugger must handle (signals,
 * group-stops, new children, exits) and every call a module decides goes up
 * to sandbox/backend_ptrace.py. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/ptrace.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "engine.h"
#include "pidfd.h"

/* glibc's <sys/ptrace.h> and <linux/ptrace.h> do not mix: call it raw. */
static long trace(long request, pid_t tid, unsigned long addr, unsigned long data)
{
    return syscall(SYS_ptrace, request, tid, addr, data);
}

#define X32_SYSCALL_BIT 0x40000000
#define PIDFD_THREAD O_EXCL

static uint64_t next_id;

/* tid's seccomp stop, read now. 0; 1: tid is stopped, but not in a seccomp
 * stop; -errno (-ESRCH: gone, or not stopped). */
static int stop_info(pid_t tid, struct ptrace_syscall_info *info)
{
    memset(info, 0, sizeof(*info));
    if (trace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(*info), (unsigned long)info) < 0)
        return -errno;
    return info->op == PTRACE_SYSCALL_INFO_SECCOMP ? 0 : 1;
}

/* The seccomp stop of tid (*info), decoded as a notification would be; 1
 * if tid is in another stop now (stop_info). */
static int trace_read(struct yr_ctx *ctx, pid_t tid, struct yr_event *ev,
                      struct ptrace_syscall_info *info)
{
    int err = stop_info(tid, info);
    if (err != 0)
        return err;
    memset(ev, 0, sizeof(*ev));
    ev->id = ++next_id;
    ev->tid = tid;
    ev->arch = info->arch;
    ev->nr = (int32_t)info->seccomp.nr;
    ev->sys = yr_ctx_sys(ctx, ev->arch, ev->nr);
    yr_event_args(ev, info->seccomp.args);
    return 0;
}

/* ---- an fd into the caller -------------------------------------------------
 *
 * ptrace has no ADDFD. The caller is made to run, in place of its stopped
 * call, socketpair(2) into scratch memory below its stack's red zone; we take
 * one end (pidfd_getfd: we are its tracer), send the fd over it, make the
 * caller recvmsg it from the other end, close both ends, and return the
 * received number as the call's result. Nothing is decided on tracee memory:
 * what its other threads could change there only misdirects its own copy.
 * Signals stay blocked meanwhile (SIGSTOP, which cannot be, is held and
 * queued again afterwards).
 *
 * But the syscall instruction re-run is the caller's code, which another of
 * its threads may rewrite between two injected calls (a jump to a call of
 * its own: a review made an open of a stranger's link, a ptrace attach and
 * a kill of the supervisor that way, each resumed past its seccomp stop
 * unjudged). So every stop of an injection is checked: a syscall-entry stop
 * must be the injected call (its number and its six arguments), an exit stop
 * an exit; anything else (another call, a seccomp stop) kills the caller's
 * process, and the call is answered by its exit. And the wait is for any
 * tracee, not the caller's thread alone: a thread group leader's exit is
 * reported only once every other thread of it is reaped, which only this
 * wait does (a process that ended while one of its calls was given a
 * descriptor hung the sandbox); other tracees' stops and exits are queued
 * for the loop (yr_stops), and an exec by another thread, which takes the
 * caller's place, ends the injection and goes to Python as it is.
 * Nothing injected may wait: recvmsg is MSG_DONTWAIT (another thread that
 * took the byte first left the tracer, and so the sandbox, waiting for as
 * long as it liked), and one fd's injection that takes more than
 * INJECT_LIMIT_NS of the caller's own time (overdue: its code rewritten
 * into a loop) kills the program, said on stderr (yr_trace_broken). */

struct sched_times {
    uint64_t on_cpu_ns, run_delay_ns;
};

struct injection {
    struct yr_ctx *ctx;
    pid_t tid;
    struct user_regs_struct base;  /* the registers at the seccomp stop */
    int at_exit;                   /* stopped at a syscall exit (not the seccomp stop) */
    long nr;                       /* the call injected, checked at its entry */
    uint64_t args[6];
    int held[8], nheld;            /* signals to queue again */
    int exited;                    /* the tracee died (or exec'd): status in *status */
    int gone;                      /* killed, its exit or exec event not seen: its tid
                                    * may be the exec'ing thread's, never touched again */
    int status;
    uint64_t began_ns;             /* its wall-clock limit (overdue) */
    /* The own-time limit of the wait for the caller's next stop (overdue): */
    enum { CLOCK_UNSET, CLOCK_SCHED, CLOCK_WALL } clock;
    uint64_t clock_ns;             /* when it started */
    struct sched_times at_clock;   /* the caller's schedstat then */
    unsigned long long start_ticks; /* the caller's start time then (task_state) */
};

#define INJECT_LIMIT_NS 1000000000ULL
/* However starved the caller: the tracer serves no other stop meanwhile. */
#define INJECT_WALL_LIMIT_NS (30 * INJECT_LIMIT_NS)

static int queue_stop(struct yr_ctx *ctx, pid_t tid, int status);
static void note_broken(struct yr_ctx *ctx, pid_t tid, const char *why);

/* The syscall stop in is at: its entry with the injected call (entry 1) or
 * an exit (entry 0). Otherwise the caller's code was changed under us. */
static int expected_stop(const struct injection *in, int entry)
{
    struct ptrace_syscall_info info;
    memset(&info, 0, sizeof(info));
    if (trace(PTRACE_GET_SYSCALL_INFO, in->tid, sizeof(info), (unsigned long)&info) < 0)
        return 0;
    if (!entry)
        return info.op == PTRACE_SYSCALL_INFO_EXIT;
    if (info.op != PTRACE_SYSCALL_INFO_ENTRY || info.arch != AUDIT_ARCH_X86_64 ||
        info.entry.nr != (uint64_t)in->nr)
        return 0;
    return memcmp(info.entry.args, in->args, sizeof(in->args)) == 0;
}

/* tid's time on a CPU and its counted waits for one, in ns (the first two
 * numbers of /proc/TID/schedstat); -1 if unknown (no CONFIG_SCHED_INFO). */
static int sched_times(pid_t tid, struct sched_times *out)
{
    char path[48], buf[96];
    unsigned long long on_cpu, delay;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)tid);
    if (yr_read_text(path, buf, sizeof(buf)) <= 0 ||
        sscanf(buf, "%llu %llu", &on_cpu, &delay) != 2)
        return -1;
    out->on_cpu_ns = on_cpu;
    out->run_delay_ns = delay;
    return 0;
}

/* tid's state letter and start time (in clock ticks: fields 3 and 22 of
 * /proc/TID/stat): 0, or -1. */
static int task_state(pid_t tid, char *state, unsigned long long *start)
{
    static const int fields[] = { 3, 22 };
    char path[48], buf[1024];
    long long v[2];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
    if (yr_read_text(path, buf, sizeof(buf)) <= 0 || yr_stat_fields(buf, fields, 2, v) < 0)
        return -1;
    *state = (char)v[0];
    *start = (unsigned long long)v[1];
    return 0;
}

/* Has the caller, since it was last resumed, taken INJECT_LIMIT_NS of its
 * own time without reaching its next stop? A rewritten loop runs (or sleeps
 * in a fault that never ends) and is found. A caller starved of a CPU
 * (SCHED_IDLE beside busy threads, a throttled cgroup) only waits in the
 * run queue: its program was killed for it (exit 137, 4 runs in 5 of a
 * SCHED_IDLE program's opens beside 4 busy threads on 2 CPUs). So was it,
 * once in CI, when the time was counted from the injection's start: the
 * caller's time in its stops, waiting for a tracer itself starved, counted
 * as its own; and the kernel adds a wait to schedstat's delay only when the
 * wait ends (sched_info_arrive), so the wait of a caller waiting now did
 * too. So a stage's clock starts at the first tick that finds its stop not
 * come (a stop that comes first costs no reading of /proc); from there, its
 * time on a CPU counts always, and its wall time less its counted waits
 * only while it sleeps, its state read before its schedstat, so that a wait
 * begun after that read (uncounted) is a few microseconds at most.
 * Runnable, it is on a CPU (its CPU time grows) or waiting for one.
 * A sibling's exec may take the tid meanwhile (de_thread): the times read
 * are then another task's until its exec event, which ends the wait, is
 * taken. Its start time tells (a thread started in the same clock tick as
 * the caller could not: it is counted as the caller, as before). */
static int overdue(struct injection *in)
{
    uint64_t now_ns = yr_now_ns();
    if (now_ns - in->began_ns > INJECT_WALL_LIMIT_NS)
        return 1;
    char state = 0;
    unsigned long long start = 0;
    struct sched_times now = { 0, 0 };
    int known = task_state(in->tid, &state, &start) == 0 && sched_times(in->tid, &now) == 0;
    if (in->clock == CLOCK_UNSET) {
        in->clock = known ? CLOCK_SCHED : CLOCK_WALL;
        in->clock_ns = now_ns;
        in->start_ticks = start;
        in->at_clock = now;
        return 0;
    }
    uint64_t spent = now_ns - in->clock_ns;
    if (in->clock == CLOCK_WALL || !known)
        return spent > INJECT_LIMIT_NS;        /* no schedstat: wall time */
    if (start != in->start_ticks)
        return 0;                              /* another task's tid now */
    if (now.on_cpu_ns > in->at_clock.on_cpu_ns &&
        now.on_cpu_ns - in->at_clock.on_cpu_ns > INJECT_LIMIT_NS)
        return 1;                              /* a loop */
    if (state == 'R')
        return 0;
    uint64_t waited = now.run_delay_ns > in->at_clock.run_delay_ns ?
                      now.run_delay_ns - in->at_clock.run_delay_ns : 0;
    return spent > waited && spent - waited > INJECT_LIMIT_NS;
}

/* Resume the caller towards its next syscall stop, whose own-time limit
 * (overdue) starts anew: 0, or -1 (errno). */
static int resume(struct injection *in)
{
    in->clock = CLOCK_UNSET;
    return (int)trace(PTRACE_SYSCALL, in->tid, 0, 0);
}

/* Fail closed: the caller's process is killed, its call answered by its
 * exit; why is said on stderr (yr_trace_broken). */
static int broken(struct injection *in, const char *why)
{
    note_broken(in->ctx, in->tid, why);
    pid_t tgid = yr_tgid_of(in->tid);
    syscall(SYS_tgkill, tgid > 0 ? tgid : in->tid, in->tid, SIGKILL);
    if (tgid > 0)
        kill(tgid, SIGKILL);
    return -ESRCH;
}

/* Wait for tid's next syscall stop, an entry (entry 1) or an exit: 0, or
 * -errno (-ESRCH: it is gone, or was killed as broken). Signal stops are
 * held; other tracees' stops and exits are queued. */
static int wait_syscall_stop(struct injection *in, int entry)
{
    for (;;) {
        int status;
        pid_t got = waitpid(-1, &status, __WALL);
        if (got < 0) {
            if (errno != EINTR)
                return -errno;
            if (overdue(in))                   /* a stop that never comes */
                return broken(in, "its injected call's stop never came: a loop in its code?");
            continue;
        }
        if (got != in->tid) {
            if (queue_stop(in->ctx, got, status) < 0)    /* no memory to keep it */
                return broken(in, "no memory to keep another task's stop");
            continue;
        }
        if (!WIFSTOPPED(status) || status >> 16 == PTRACE_EVENT_EXEC) {
            in->exited = 1;                    /* gone, or another thread's exec took its place */
            in->status = status;
            return -ESRCH;
        }
        int sig = WSTOPSIG(status);
        if (sig == (SIGTRAP | 0x80)) {
            if (expected_stop(in, entry))
                return 0;
            /* Not the injected call's stop, or not a stop any more: a
             * sibling's execve (or exit_group) killed the caller after the
             * stop was reported, and may have given its tid to the exec'ing
             * thread, now at its exec event (stop_current says which). A
             * killed task is never back in that stop and the exec'ing thread
             * moves only when resumed, so "not current" cannot turn current:
             * the caller is gone, its exit or exec event left to the loop
             * (killing it there killed the exec'ing process, 2-7 tries in
             * 900 of a thread's exec beside its leader's opens). */
            if (!yr_trace_stop_current(in->tid, status)) {
                in->gone = 1;
                return -ESRCH;
            }
            return broken(in, "another call than the one injected: its code rewritten?");
        }
        if (status >> 16 == PTRACE_EVENT_SECCOMP)      /* a hooked call of its own */
            return broken(in, "a hooked call of its own in place of the injected one");
        if (status >> 16 == 0 && in->nheld < (int)(sizeof(in->held) / sizeof(in->held[0])))
            in->held[in->nheld++] = sig;       /* a signal on its way: later */
        if (resume(in) < 0)
            return -errno;
    }
}

/* A ptrace request on the caller failed: -errno; ESRCH: it was killed. */
static long lost(struct injection *in)
{
    if (errno == ESRCH)
        in->gone = 1;
    return -errno;
}

/* Run one syscall in the caller; its return value, or -errno of ours. */
static long inject(struct injection *in, long nr, const uint64_t a[6])
{
    struct user_regs_struct r = in->base;
    r.orig_rax = (uint64_t)nr;
    r.rax = (uint64_t)nr;
    r.rdi = a[0];
    r.rsi = a[1];
    r.rdx = a[2];
    r.r10 = a[3];
    r.r8 = a[4];
    r.r9 = a[5];
    if (in->at_exit)
        r.rip = in->base.rip - 2;              /* the syscall instruction, again */
    in->nr = nr;
    memcpy(in->args, a, sizeof(in->args));
    if (in->gone || in->exited)
        return -ESRCH;
    if (trace(PTRACE_SETREGS, in->tid, 0, (unsigned long)&r) < 0 || resume(in) < 0)
        return lost(in);
    /* From the seccomp stop the call goes on to its exit; from an exit, the
     * instruction runs again: its entry first. */
    int rc = wait_syscall_stop(in, in->at_exit);
    if (rc < 0)
        return rc;
    if (in->at_exit) {                         /* that was the entry: now the exit */
        if (resume(in) < 0)
            return lost(in);
        if ((rc = wait_syscall_stop(in, 0)) < 0)
            return rc;
    }
    in->at_exit = 1;
    if (trace(PTRACE_GETREGS, in->tid, 0, (unsigned long)&r) < 0)
        return lost(in);
    return (long)r.rax;
}

static int poke(pid_t tid, uint64_t addr, const void *data, size_t len)
{
    for (size_t off = 0; off < len; off += 8) {
        uint64_t word = 0;
        memcpy(&word, (const char *)data + off, len - off < 8 ? len - off : 8);
        if (trace(PTRACE_POKEDATA, tid, addr + off, word) < 0)
            return -errno;
    }
    return 0;
}

/* The raw PEEKDATA stores the word at its data argument. */
static int peek(pid_t tid, uint64_t addr, uint64_t *out)
{
    return trace(PTRACE_PEEKDATA, tid, addr, (unsigned long)out) < 0 ? -errno : 0;
}

/* fd sent over sock, which we took from the caller by the number its
 * memory gave, where another of its threads may have put any socket of its
 * own: one connected to a daemon that reads its peer's credentials from the
 * message (SO_PASSCRED), which would have been ours (root's, when root
 * started yama-run). So the message carries the caller's (its process, real
 * uid and gid, what the kernel gives for the caller's own send), and says
 * nothing the caller could not say itself. A supervisor that may not claim
 * another process's pid (started by the caller's user: its uid and gid are
 * the caller's) sends with its own. */
static int send_one_fd(int sock, int fd, const struct ucred *as)
{
    char byte = 0;
    struct iovec iov = { &byte, 1 };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    cm = CMSG_NXTHDR(&msg, cm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    memcpy(CMSG_DATA(cm), as, sizeof(*as));
    if (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
        return 0;
    if (errno != EPERM)
        return -errno;
    msg.msg_controllen = CMSG_SPACE(sizeof(int));       /* our own: the caller's ids */
    return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Is sock's peer the caller's process (tgid), as an end of the socketpair
 * it was just made to create? A socket of its own connected elsewhere (a
 * daemon) put in that pair's place is never sent on: -EBADMSG. */
static int peer_is(int sock, pid_t tgid)
{
    struct ucred peer;
    socklen_t len = sizeof(peer);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0)
        return -errno;
    return peer.pid == tgid ? 0 : -EBADMSG;
}

/* The credentials the caller's own send would carry (SCM_CREDENTIALS). */
static int caller_ucred(int pidfd, struct ucred *as)
{
    struct yr_pidfd_info info;
    memset(&info, 0, sizeof(info));
    info.mask = YR_PIDFD_INFO_CREDS;
    if (ioctl(pidfd, YR_PIDFD_GET_INFO, &info) < 0)
        return -errno;
    *as = (struct ucred){ .pid = (pid_t)info.tgid, .uid = info.ruid, .gid = info.rgid };
    return 0;
}

/* Scratch layout, 8-aligned, below the red zone. */
enum { SC_SV = 0, SC_MSG = 16, SC_IOV = 80, SC_BYTE = 96, SC_CMSG = 104, SC_SIZE = 128 };

/* The caller's fd number for our fd, or -errno. */
static long fd_into(struct injection *in, int fd, uint32_t fd_flags)
{
    uint64_t scratch = (in->base.rsp - 128 - 512) & ~15ULL;
    uint64_t none[6] = { 0 };
    uint64_t a[6] = { AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, scratch + SC_SV, 0, 0 };
    long rc = inject(in, SYS_socketpair, a);
    if (rc < 0)
        return rc;
    uint64_t word = 0;
    if ((rc = peek(in->tid, scratch + SC_SV, &word)) < 0)
        return rc;
    int sv0 = (int)(uint32_t)word, sv1 = (int)(uint32_t)(word >> 32);
    /* Our copy of its first end: the sending side. */
    int pidfd = (int)syscall(SYS_pidfd_open, in->tid, PIDFD_THREAD);
    if (pidfd < 0 && errno == EINVAL && yr_tgid_of(in->tid) == in->tid)
        pidfd = (int)syscall(SYS_pidfd_open, in->tid, 0);   /* before 6.9: leaders only */
    struct ucred as;
    int end = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, sv0, 0);
    rc = end < 0 ? -errno : caller_ucred(pidfd, &as);
    if (rc == 0)
        rc = peer_is(end, as.pid);
    if (rc == 0)
        rc = send_one_fd(end, fd, &as);
    if (end >= 0)
        close(end);
    if (pidfd >= 0)
        close(pidfd);
    if (rc == 0) {
        struct msghdr msg = {
            .msg_iov = (struct iovec *)(uintptr_t)(scratch + SC_IOV), .msg_iovlen = 1,
            .msg_control = (void *)(uintptr_t)(scratch + SC_CMSG),
            .msg_controllen = CMSG_SPACE(sizeof(int)),
        };
        struct iovec iov = { (void *)(uintptr_t)(scratch + SC_BYTE), 1 };
        char zero[CMSG_SPACE(sizeof(int))];
        memset(zero, 0, sizeof(zero));
        if ((rc = poke(in->tid, scratch + SC_MSG, &msg, sizeof(msg))) == 0 &&
            (rc = poke(in->tid, scratch + SC_IOV, &iov, sizeof(iov))) == 0 &&
            (rc = poke(in->tid, scratch + SC_CMSG, zero, sizeof(zero))) == 0) {
            /* sent already: a byte not there was taken by another thread */
            uint64_t r[6] = { (uint64_t)sv1, scratch + SC_MSG,
                              MSG_DONTWAIT | ((fd_flags & O_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0),
                              0, 0, 0 };
            rc = inject(in, SYS_recvmsg, r);
        }
    }
    long got = -1;
    if (rc == 1) {
        struct cmsghdr cm;
        uint64_t words[3];
        for (int i = 0; i < 3 && rc == 1; i++)
            if (peek(in->tid, scratch + SC_CMSG + 8 * (uint64_t)i, &words[i]) < 0)
                rc = -EFAULT;
        if (rc == 1) {
            memcpy(&cm, words, sizeof(cm));
            uint64_t flags = 0;
            if (cm.cmsg_level == SOL_SOCKET && cm.cmsg_type == SCM_RIGHTS &&
                cm.cmsg_len == CMSG_LEN(sizeof(int)))
                got = (int)(uint32_t)words[2];
            else if (peek(in->tid, scratch + SC_MSG + offsetof(struct msghdr, msg_flags),
                          &flags) == 0 && ((uint32_t)flags & MSG_CTRUNC))
                rc = -EMFILE;   /* no free number for it: the kernel dropped it, as its open would fail */
            else
                rc = -EBADMSG;
        }
    } else if (rc >= 0) {
        rc = -EBADMSG;
    }
    none[0] = (uint64_t)sv0;
    if (!in->exited)
        inject(in, SYS_close, none);
    none[0] = (uint64_t)sv1;
    if (!in->exited)
        inject(in, SYS_close, none);
    if (rc < 0)
        return rc;
    /* The lowest free number, as the kernel's own call would give. */
    if (got > (sv0 < sv1 ? sv0 : sv1) && !in->exited) {
        uint64_t d[6] = { (uint64_t)got, (fd_flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD,
                          0, 0, 0, 0 };
        long low = inject(in, SYS_fcntl, d);
        if (low >= 0 && low < got && !in->exited) {
            none[0] = (uint64_t)got;
            inject(in, SYS_close, none);
            got = low;
        }
    }
    return got;
}

/* ---- the reply ------------------------------------------------------------ */

/* At the seccomp stop: the call is not made and returns value. Two words
 * poked cost less than all the registers read and written back. */
static int skip_with(pid_t tid, int64_t value)
{
    if (trace(PTRACE_POKEUSR, tid, offsetof(struct user_regs_struct, orig_rax),
              (unsigned long)-1) < 0 ||
        trace(PTRACE_POKEUSR, tid, offsetof(struct user_regs_struct, rax),
              (unsigned long)value) < 0)
        return -errno;
    return 0;
}

static int set_return(pid_t tid, struct user_regs_struct *r, int skip, int64_t value)
{
    if (skip)
        r->orig_rax = (uint64_t)-1;            /* the call is not made */
    r->rax = (uint64_t)value;
    return trace(PTRACE_SETREGS, tid, 0, (unsigned long)r) < 0 ? -errno : 0;
}

/* Apply the kept reply to tid, stopped at the seccomp stop of its call. 0:
 * resume it with PTRACE_CONT; 1: it died meanwhile (*result: its wait
 * status, not yet handled); <0: -errno, not answered. */
static int apply(struct yr_ctx *ctx, pid_t tid, struct yr_deferred *reply, int64_t *result)
{
    struct user_regs_struct r;
    *result = 0;
    if (reply->kind == YR_DEFER_CONTINUE)
        return 0;
    if (reply->kind == YR_DEFER_RETURN) {
        *result = reply->err ? -(int64_t)reply->err : reply->val;
        return skip_with(tid, *result);
    }
    if (reply->kind != YR_DEFER_FD)            /* no reply at all: fail closed */
        return skip_with(tid, -EPERM);
    if (trace(PTRACE_GETREGS, tid, 0, (unsigned long)&r) < 0)
        return -errno;
    yr_fs_reset();                             /* pidfd_getfd below: as the supervisor */
    struct injection in = { .ctx = ctx, .tid = tid, .base = r, .began_ns = yr_now_ns() };
    long fd;
    /* Only the 64-bit syscall instruction is re-run: its numbers and layouts. */
    uint64_t insn = 0;
    if ((r.orig_rax & X32_SYSCALL_BIT) || peek(tid, r.rip - 2, &insn) < 0 ||
        (insn & 0xFFFF) != 0x050F)             /* not `syscall`: int $0x80 or sysenter */
        fd = -ENOSYS;
    else {
        /* Every signal blocked meanwhile: one dequeued in an injection's stop
         * could only be held and sent again (one of a kind, its siginfo and
         * its process-wide aim lost); blocked, it waits in the kernel's own
         * queue and is delivered once the caller's mask is back. SIGSTOP
         * and SIGKILL cannot be blocked: SIGSTOP is held. */
        uint64_t mask = 0, all = ~0ULL;
        int masked = trace(PTRACE_GETSIGMASK, tid, sizeof(mask), (unsigned long)&mask) == 0 &&
                     trace(PTRACE_SETSIGMASK, tid, sizeof(all), (unsigned long)&all) == 0;
        /* The tracer's clock while it injects: YR_WAKE_SIG every 100 ms (the
         * ticker, worker.c), so that a wait for a stop that never comes
         * returns (EINTR) to look at the deadline. */
        int clock = yr_tick_start();
        if (clock < 0) {
            fd = -ENOMEM;                  /* a wait nothing could end: never begun */
        } else {
            fd = fd_into(&in, reply->fd, reply->fd_flags);
            yr_tick_stop(clock);
        }
        if (masked && !in.exited && !in.gone &&
            trace(PTRACE_SETSIGMASK, tid, sizeof(mask), (unsigned long)&mask) < 0 && errno != ESRCH)
            fd = broken(&in, "its signal mask could not be given back");
    }
    close(reply->fd);
    reply->fd = -1;
    if (in.exited) {
        *result = in.status;
        return 1;
    }
    if (in.gone)
        return -ESRCH;                     /* its exit or exec event follows, to the loop */
    *result = fd;
    int rc = set_return(tid, &in.base, !in.at_exit, fd);
    pid_t tgid = yr_tgid_of(tid);
    for (int i = 0; i < in.nheld; i++)         /* queued again, delivered on resume */
        syscall(SYS_tgkill, tgid, tid, in.held[i]);
    return rc;
}

/* ---- stops served in turn ---------------------------------------------------- */

/* The stops (and exits) one wait found, served in the order found. waitpid(-1)
 * reports the first ready tracee in the kernel's list: two threads that
 * stop again the moment they are resumed (a loop of pidfd_getfd) were
 * always first, and a thread stopped behind them waited for ever (the
 * sandbox hung). So once a wait returns, every other tracee ready then is
 * taken too (WNOHANG), and all are served before the next wait: a tracee
 * is reported once per stop, and none of these is resumed before its turn. */
#define STOPS_DRAIN 256                /* taken at once after a wait (WNOHANG) */
struct yr_stops {
    int n, next, size;
    struct stop { pid_t tid; int status; } *q;
    int nwaiting, waiting_size;
    struct waiting { pid_t tid; uint64_t id; struct ptrace_syscall_info at; } *waiting;
    struct waiting serving;        /* the stop whose call is being served */
    const char *broken;            /* why a caller's process was killed (broken) */
    pid_t broken_tid;
};

void yr_stops_free(struct yr_stops *stops)
{
    if (stops) {
        free(stops->q);
        free(stops->waiting);
    }
    free(stops);
}

static struct yr_stops *stops_of(struct yr_ctx *ctx)
{
    if (!ctx->stops)
        ctx->stops = calloc(1, sizeof(*ctx->stops));
    return ctx->stops;
}

/* ---- callers waiting for a worker's answer ------------------------------------
 *
 * A caller whose open a worker makes (worker.c) stays in its seccomp stop
 * until the worker's answer, which names it by tid and a pidfd. Neither
 * tells the waiting task from the one that takes its place: an execve by
 * another thread of its process kills it and gives the exec'ing thread its
 * tid, and its struct pid, so the pidfd too (exchange_tids). An answer
 * applied then acted on the new image wherever it was stopped, and a status
 * queued for it before was later served on a stop it no longer was in (a
 * review resumed a hooked open of a stranger's link unjudged that way). So
 * the stop each caller waits in is kept here; any status of that tid means
 * it is not waiting there any more (a task in a ptrace stop reports nothing
 * until resumed or killed, and nothing resumes it but its answer) and
 * forgets it, and cancels its call (worker.c drops that call's answer); an
 * answer is applied only to a caller kept for that very call (its id),
 * still in the same stop (its syscall information unchanged), and dropped
 * otherwise. */

static struct waiting *waiting_find(struct yr_stops *s, pid_t tid)
{
    for (int i = 0; s && i < s->nwaiting; i++)
        if (s->waiting[i].tid == tid)
            return &s->waiting[i];
    return NULL;
}

static void waiting_forget(struct yr_stops *s, pid_t tid)
{
    struct waiting *w = waiting_find(s, tid);
    if (w)
        *w = s->waiting[--s->nwaiting];
}

/* tid reported something while it waited: it is not in that stop any
 * more, and its worker is told to give up (worker.c). */
static void waiting_gone(struct yr_ctx *ctx, struct yr_stops *s, pid_t tid)
{
    struct waiting *w = waiting_find(s, tid);
    if (w) {
        yr_worker_cancel(ctx, w->id);
        waiting_forget(s, tid);
    }
}

/* tid, whose call is being served (in the stop served: answer's here),
 * now waits in that stop for a worker: 0 or -errno. */
static int waiting_keep(struct yr_ctx *ctx, pid_t tid)
{
    struct yr_stops *s = stops_of(ctx);
    if (!s)
        return -ENOMEM;
    if (s->serving.tid != tid)
        return -EINVAL;
    waiting_forget(s, tid);
    if (s->nwaiting == s->waiting_size) {
        int size = s->waiting_size ? 2 * s->waiting_size : 16;
        struct waiting *w = realloc(s->waiting, (size_t)size * sizeof(*w));
        if (!w)
            return -ENOMEM;
        s->waiting = w;
        s->waiting_size = size;
    }
    s->waiting[s->nwaiting++] = s->serving;   /* its stop, and the worker's call id */
    return 0;
}

/* Is tid still in the seccomp stop was describes? */
static int same_stop(pid_t tid, const struct ptrace_syscall_info *was)
{
    struct ptrace_syscall_info now;
    return stop_info(tid, &now) == 0 && now.arch == was->arch &&
           now.instruction_pointer == was->instruction_pointer &&
           now.stack_pointer == was->stack_pointer && now.seccomp.nr == was->seccomp.nr &&
           memcmp(now.seccomp.args, was->seccomp.args, sizeof(was->seccomp.args)) == 0;
}

/* Is tid the caller kept for call id, in the very stop it waited in?
 * Forgotten then, or if it left that stop. The tid alone does not say: a
 * caller another thread's execve killed leaves its tid to the new image,
 * which may wait in a call of its own by the time an answer for the old
 * one comes (a review's open of F2 got F1, opened for the killed leader);
 * that caller and its stop stay kept for their own answer. */
static int waiting_here(struct yr_ctx *ctx, pid_t tid, uint64_t id)
{
    struct yr_stops *s = stops_of(ctx);
    struct waiting *w = waiting_find(s, tid);
    if (!w || w->id != id)
        return 0;
    struct ptrace_syscall_info was = w->at;
    waiting_forget(s, tid);
    return same_stop(tid, &was);
}

/* ---- the call being served -----------------------------------------------------
 *
 * The same takeover while a call is served: the caller (a leader) killed by
 * another thread's execve, whose thread then holds its tid. What is read of
 * the caller through its tid after that (its umask, its root, through
 * /proc/TID) is the new image's, and a reply applied to the tid lands on
 * the new image wherever it is stopped. So the stop being served is kept,
 * and checked before an effect (yr_call_still_waits) and before the reply
 * is applied: the new image is never in that stop. */
static int serve(struct yr_ctx *ctx, const struct yr_event *ev,
                 const struct ptrace_syscall_info *at)
{
    struct yr_stops *s = stops_of(ctx);
    if (!s)
        return -ENOMEM;
    s->serving = (struct waiting){ .tid = ev->tid, .id = ev->id, .at = *at };
    return 0;
}

static void note_broken(struct yr_ctx *ctx, pid_t tid, const char *why)
{
    struct yr_stops *s = stops_of(ctx);
    if (s) {
        s->broken = why;
        s->broken_tid = tid;
    }
}

/* Why the process of *tid was killed as broken since last asked, or NULL. */
const char *yr_trace_broken(struct yr_ctx *ctx, pid_t *tid)
{
    struct yr_stops *s = stops_of(ctx);
    const char *why = s ? s->broken : NULL;
    if (why) {
        *tid = s->broken_tid;
        s->broken = NULL;
    }
    return why;
}

int yr_trace_still_stopped(struct yr_ctx *ctx, pid_t tid)
{
    struct yr_stops *s = stops_of(ctx);
    return s && s->serving.tid == tid && same_stop(tid, &s->serving.at);
}

/* The call served left its stop while a worker was started for it (its
 * caller killed by a sibling's execve during the decision, its tid the new
 * image's): never kept as waiting, so no status of that tid cancels it, and
 * the worker's own check (a signal 0 to the tid) finds the new image alive.
 * It is cancelled here, or it stayed a FIFO's reader for as long as the
 * process lived, and such workers piled up to EMFILE. */
static void cancel_served(struct yr_ctx *ctx)
{
    struct yr_stops *s = stops_of(ctx);
    if (s)
        yr_worker_cancel(ctx, s->serving.id);
}

/* ---- the loop's hot path ---------------------------------------------------- */

/* Answer tid's call with the context's kept reply and resume it. 0: resumed
 * (or gone); 1: it died meanwhile, *status is its wait status, not yet
 * handled; <0: -errno, it could not be answered (the caller fails closed). */
static int answer(struct yr_ctx *ctx, pid_t tid, int *status, int here);

int yr_trace_answer(struct yr_ctx *ctx, pid_t tid, int *status)
{
    return answer(ctx, tid, status, yr_trace_still_stopped(ctx, tid));
}

/* here: tid is known to be in the stop the reply is for. */
static int answer(struct yr_ctx *ctx, pid_t tid, int *status, int here)
{
    struct yr_deferred reply;
    int64_t result;
    yr_ctx_take_reply(ctx, &reply);
    if (!here) {
        if (reply.fd >= 0)
            close(reply.fd);
        if (reply.kind == YR_DEFER_PENDING)
            cancel_served(ctx);
        return 0;                              /* killed, or replaced: nothing to answer */
    }
    if (reply.kind == YR_DEFER_PENDING)        /* a worker answers later: it stays stopped */
        return waiting_keep(ctx, tid);
    int rc = apply(ctx, tid, &reply, &result);
    if (rc == 1) {
        *status = (int)result;
        return 1;
    }
    if (rc < 0)
        return rc == -ESRCH ? 0 : rc;          /* killed meanwhile: its exit follows */
    if (trace(PTRACE_CONT, tid, 0, 0) < 0 && errno != ESRCH)
        return -errno;
    return 0;
}

/* Wait for the next stop or exit that needs Python. 0: no task is left;
 * YR_TRACE_STATUS: *status of ev->tid (not a seccomp stop: the debugger's
 * business); YR_TRACE_DECIDE: ev is a hooked call for the chain, its caller
 * stopped until yr_trace_answer; <0: -errno. */
/* A worker's answer to a caller it left stopped, applied (worker.c).
 * 0: none left; 1: *status of ev->tid is Python's; <0: -errno. */
static int answer_workers(struct yr_ctx *ctx, struct yr_event *ev, int *status)
{
    uint64_t id;
    pid_t tid;
    struct yr_deferred reply;
    while (yr_worker_take(ctx, &id, &tid, &reply)) {
        ctx->reply = reply;
        int rc = answer(ctx, tid, status, waiting_here(ctx, tid, id));
        if (rc != 0) {
            ev->tid = tid;
            return rc;
        }
    }
    return 0;
}

/* tid's stop or exit, to serve after those queued before it: 0 or -ENOMEM.
 * A tracee is reported once per stop and once at its exit, so the queue
 * holds at most two entries per tracee. */
static int queue_stop(struct yr_ctx *ctx, pid_t tid, int status)
{
    struct yr_stops *s = stops_of(ctx);
    if (!s)
        return -ENOMEM;
    waiting_gone(ctx, s, tid);
    if (s->n == s->size) {
        int size = s->size ? 2 * s->size : STOPS_DRAIN;
        struct stop *q = realloc(s->q, (size_t)size * sizeof(*q));
        if (!q)
            return -ENOMEM;
        s->q = q;
        s->size = size;
    }
    s->q[s->n].tid = tid;
    s->q[s->n++].status = status;
    return 0;
}

/* Is tid still in the stop its queued status reports? A status waits in
 * the queue while others are served (an injection collects every tracee's
 * stops), and meanwhile a sibling's execve may kill the task and give its
 * tid to the exec'ing thread (de_thread), which stops at its exec event and,
 * once resumed, in seccomp stops of its own: resumed for the old status,
 * such a stop's hooked call ran unjudged. A stop is told by its siginfo
 * (an event's si_code is its stop signal with the event above it). The
 * check cannot go stale before the resume: a stopped task moves only when
 * this one tracer thread resumes it, or dies. */
int yr_trace_stop_current(pid_t tid, int status)
{
    int sig = WSTOPSIG(status), event = status >> 16;
    siginfo_t si;
    if (trace(PTRACE_GETSIGINFO, tid, 0, (unsigned long)&si) < 0)
        return 0;                              /* gone, or not stopped: nothing to resume */
    if (si.si_code == (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8)))
        return 0;                              /* a hooked call: served, never resumed */
    if (event)
        return si.si_code == (sig | (event << 8));
    if (sig == (SIGTRAP | 0x80))
        return si.si_code == (SIGTRAP | 0x80);
    /* a signal's own stop: not an event's or a syscall's, whose si_signo is
     * SIGTRAP too (their si_code is SIGTRAP with the event or 0x80 above it) */
    return si.si_signo == sig && si.si_code != (SIGTRAP | 0x80) &&
           !(si.si_code >= 0x100 && (si.si_code & 0xff) == SIGTRAP);
}

/* The next stop or exit to serve: 1, 0 when no tracee is left, -errno
 * (-EINTR: a worker's wake-up, whose answer is applied first). */
static int next_stop(struct yr_ctx *ctx, pid_t *tid, int *status)
{
    struct yr_stops *s = stops_of(ctx);
    if (!s)
        return -ENOMEM;
    if (s->next == s->n) {
        s->next = s->n = 0;
        int st, taken = 0;
        pid_t got = waitpid(-1, &st, __WALL);
        if (got < 0)
            return errno == ECHILD ? 0 : -errno;
        do {
            if (queue_stop(ctx, got, st) < 0)
                return -ENOMEM;
        } while (++taken < STOPS_DRAIN && (got = waitpid(-1, &st, __WALL | WNOHANG)) > 0);
    }
    *tid = s->q[s->next].tid;
    *status = s->q[s->next++].status;
    return 1;
}

int yr_trace_next(struct yr_ctx *ctx, struct yr_event *ev, int *status)
{
    yr_worker_wakeable(ctx);
    for (;;) {
        int done = answer_workers(ctx, ev, status);
        if (done == 1)
            return YR_TRACE_STATUS;
        if (done < 0)
            return done;
        pid_t tid;
        int found = next_stop(ctx, &tid, status);
        if (found == -EINTR)
            continue;
        if (found <= 0)
            return found;
        if (!WIFSTOPPED(*status)) {
            ev->tid = tid;
            return YR_TRACE_STATUS;              /* an exit */
        }
        if (*status >> 16 != PTRACE_EVENT_SECCOMP) {
            if (!yr_trace_stop_current(tid, *status))
                continue;                        /* stale: its task's stop now is reported apart */
            ev->tid = tid;
            return YR_TRACE_STATUS;
        }
        struct ptrace_syscall_info at;
        int rc = trace_read(ctx, tid, ev, &at);
        if (rc == 0)
            rc = serve(ctx, ev, &at);
        if (rc == -ESRCH)
            continue;                          /* killed meanwhile: its exit follows */
        /* A stale status: while it was queued, a sibling's execve killed the
         * caller in its seccomp stop and gave its tid to the exec'ing thread,
         * now in its exec event stop (or later ones), each reported apart.
         * Serving that tid here would fail the sandbox (the tracer took it
         * for a broken stop and killed the program, 3 runs in 45 of a
         * thread's exec beside its leader's opens under load). */
        if (rc == 1)
            continue;
        if (rc < 0) {
            ev->tid = tid;
            return rc;
        }
        if (yr_abi_refused(ev->arch, ev->nr))
            yr_reply(ctx, ev->id, 0, ENOSYS);  /* as the kernel: no x32 here (notify.c) */
        else if (!yr_settle(ctx, ev))
            return YR_TRACE_DECIDE;
        rc = yr_trace_answer(ctx, tid, status);
        if (rc == 1) {
            ev->tid = tid;
            return YR_TRACE_STATUS;
        }
        if (rc < 0)
            return rc;
    }
}
