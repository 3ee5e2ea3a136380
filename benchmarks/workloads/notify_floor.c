/* The kernel floor of a hooked call on this machine, without yama-run: the
 * pvm_readv_self loop, with process_vm_readv routed to a bare C responder
 * that does what yama-run's C fast path does for it (poll, RECV, tgkill and
 * capget on the caller, SEND CONTINUE; SYNC_WAKE_UP and WAIT_KILLABLE_RECV
 * as yama-run sets them) and nothing else. yama-run's pvm_readv_self figure
 * minus this one is what the supervisor itself adds.
 *
 * With "addfd PATH" the floor of a call that returns a descriptor, as an
 * emulated open does: the caller's loop is open(PATH) + close, openat is
 * routed, and the responder opens PATH itself, adds it with
 * SECCOMP_IOCTL_NOTIF_ADDFD, closes its copy and answers with the number, as
 * yama-run must (ADDFD_FLAG_SEND would wake the caller while the responder
 * still holds the file). The kernel's ADDFD is a round trip of its own: the
 * responder waits until the caller has installed the descriptor.
 *
 * The parent forks the caller, takes its listener with pidfd_getfd, answers
 * until the caller exits and exits with its status.
 * usage: notify_floor CALLS [addfd PATH] */
#define _GNU_SOURCE
#include "bench.h"
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#define SYNC_WAKE_UP 1UL
#define WAIT_KILLABLE_RECV (1U << 5)

static char src[64] = "yama-run benchmark: process_vm_readv of our own memory.......";
static char dst[64];

static const char *addfd_path;      /* NULL: the process_vm_readv floor */

static long readv_self(pid_t self)
{
    struct iovec local = { dst, sizeof(dst) };
    struct iovec remote = { src, sizeof(src) };
    return process_vm_readv(self, &local, 1, &remote, 1, 0);
}

/* One call of the loop: 1 when it did what it does natively. */
static int one_call(pid_t self, int *err)
{
    if (addfd_path) {
        int fd = open(addfd_path, O_RDONLY);
        *err = fd < 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        return fd >= 0;
    }
    memset(dst, 0, sizeof(dst));
    long r = readv_self(self);
    *err = r < 0 ? errno : 0;
    return r == (long)sizeof(src) && memcmp(dst, src, sizeof(src)) == 0;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int install_filter(void)
{
    struct sock_filter insns[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, addfd_path ? SYS_openat : SYS_process_vm_readv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof(insns) / sizeof(insns[0]), insns };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die("no_new_privs");
    unsigned flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | WAIT_KILLABLE_RECV;
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (fd < 0) {      /* an older kernel: without WAIT_KILLABLE_RECV */
        flags &= ~WAIT_KILLABLE_RECV;
        fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }
    if (fd < 0)
        die("seccomp");
    return fd;
}

static void caller(long calls, int ready_fd, int go_fd)
{
    int listener = install_filter();
    char c;
    if (write(ready_fd, &listener, sizeof(listener)) != sizeof(listener) ||
        read(go_fd, &c, 1) != 1)      /* no notified call before the parent holds it */
        die("handover");
    pid_t self = getpid();
    int err;
    for (long i = bench_warmup(calls); i > 0; i--)
        one_call(self, &err);
    long ok = 0, fail = 0;
    int last_errno = 0;
    double t0 = bench_now_ns();
    for (long i = 0; i < calls; i++) {
        if (one_call(self, &err))
            ok++;
        else {
            fail++;
            last_errno = err;
        }
    }
    double t1 = bench_now_ns();
    bench_report(addfd_path ? "notify_floor_addfd" : "notify_floor", calls, t1 - t0, ok, fail,
                 last_errno);
    exit(0);
}

/* The caller's open answered with a descriptor of our own opening. */
static void answer_with_fd(int listener, __u64 id)
{
    int fd = open(addfd_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(addfd_path);
    struct seccomp_notif_addfd add = { .id = id, .srcfd = fd };
    int got = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    if (got < 0 && errno != ENOENT)
        die("addfd");
    close(fd);
    struct seccomp_notif_resp resp = { .id = id, .val = got };
    if (got >= 0 && ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
        die("send");
}

int main(int argc, char **argv)
{
    long calls = bench_arg(argc, argv, 1, "CALLS");
    if (argc > 2) {
        if (argc != 4 || strcmp(argv[2], "addfd") != 0) {
            fprintf(stderr, "usage: notify_floor CALLS [addfd PATH]\n");
            return 2;
        }
        addfd_path = argv[3];
    }
    int ready[2], go[2];
    if (pipe(ready) < 0 || pipe(go) < 0)
        die("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        caller(calls, ready[1], go[0]);
    int child_fd;
    if (read(ready[0], &child_fd, sizeof(child_fd)) != sizeof(child_fd))
        die("handover");
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int listener = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
    if (listener < 0)
        die("pidfd_getfd");
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SYNC_WAKE_UP) < 0)
        perror("notify_floor: SYNC_WAKE_UP (continuing without)");
    if (write(go[1], "x", 1) != 1)
        die("handover");

    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
        die("notif sizes");
    struct seccomp_notif *req = calloc(1, sizes.seccomp_notif + 64);
    struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp + 64);
    for (;;) {
        struct pollfd p = { .fd = listener, .events = POLLIN };
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (!(p.revents & POLLIN))
            break;                      /* POLLHUP: the caller is gone */
        memset(req, 0, sizes.seccomp_notif);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;
            die("recv");
        }
        /* what yr_next asks about every caller */
        syscall(SYS_tgkill, req->pid, req->pid, 0);
        struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, (int)req->pid };
        struct __user_cap_data_struct caps[2];
        syscall(SYS_capget, &hdr, caps);
        if (addfd_path) {
            answer_with_fd(listener, req->id);
            continue;
        }
        memset(resp, 0, sizes.seccomp_notif_resp);
        resp->id = req->id;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT)
            die("send");
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
