/* The supervisor's side of the program's lifetime (sandbox/lifetime.py): the
 * main program's exit waited for, and its status given to the front
 * (csrc/front.c).
 *
 * Why C: while the chain loads (sandbox/launch.py), the loader thread holds
 * the GIL for up to milliseconds at a time (imports, the code dataclasses
 * compile). A reaper in Python had to take the GIL back after its wait
 * before it could tell the front, and the front heard the status 0.3 to 7 ms
 * after the program exited. So when nothing Python holds must be written
 * first (no supervisor loaded yet: no record can exist), the status goes to
 * the front from here, before the wait returns; otherwise the supervisor
 * writes its records out (Audit.flush) and then reports, with one C call. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "yama.h"

/* Set once a supervisor that writes records exists, before it decides any
 * call (lifetime.Link.report_after). Read at the main program's exit: 0
 * then means no record of the run is due, as every call that needs the
 * chain waits for it, and the main program, gone, waits for none, unless
 * the gate refused a call in C, answered before Python records it
 * (yr_gate_unrecorded): its status then waits for that record. */
static atomic_int records_first;

/* Set once the front was told the program stopped: it may be stopped still
 * when the status is sent. */
static atomic_int stop_mirrored;

void yr_front_records_first(void)
{
    atomic_store(&records_first, 1);
}

/* Out of the caller's terminal and pipes (its session was left when the
 * program started: lifetime.Link.started): a process left behind by the
 * program must not keep `out=$(yama-run ...)` waiting. inherited: the
 * caller's descriptors at start-up, each closed only while it is still the
 * caller's object (device and inode). */
static void detach(const struct yr_front_link *link)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        for (int fd = 0; fd <= 2; fd++)
            dup2(null, fd);
        close(null);
    }
    for (int i = 0; i < link->n; i++) {
        struct stat st;
        int fd = link->fds[i];
        if (fd > 2 && fstat(fd, &st) == 0 && st.st_dev == link->devs[i] &&
                st.st_ino == link->inos[i])
            close(fd);
    }
}

/* msg to the front, with a descriptor when fd >= 0 (the program's pidfd),
 * then the front woken if wake. 0, or -errno when the front is gone: nobody
 * to tell. */
static int send_to_front(const struct yr_front_link *link, void *msg, size_t len, int fd,
                         int wake)
{
    struct iovec iov = { msg, len };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg_hdr.msg_control = control.buf;
        msg_hdr.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg_hdr);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    if (sendmsg(link->sock, &msg_hdr, MSG_NOSIGNAL) != (ssize_t)len)
        return -errno;
    return wake && kill(link->front, yr_front_wake_signal()) < 0 ? -errno : 0;
}

/* A message of its kind (MSG_* in sandbox/lifetime.py) to the front. In C
 * so that the launch path needs no socket module before the program runs. */
int yr_front_send(struct yr_front_link *link, char kind, int fd, int wake)
{
    return send_to_front(link, &kind, 1, fd, wake);
}

/* The status to the front ("S": an exit code, or -N for death by signal
 * N), detached first if asked; the front ends with it from here on, so its
 * death no longer concerns us. A front that
 * stopped with the program is continued first, so that the shell sees the
 * job end when the program does (killed while stopped, say); before the
 * status, so that it is still our parent, never a process that took its pid. */
int yr_front_report(struct yr_front_link *link, int status, int detach_first)
{
    link->reported = 1;
    prctl(PR_SET_PDEATHSIG, 0);
    if (detach_first)
        detach(link);
    if (atomic_load(&stop_mirrored) && getppid() == link->front)
        kill(link->front, SIGCONT);
    char msg[1 + sizeof status] = {'S'};
    memcpy(msg + 1, &status, sizeof status);
    return send_to_front(link, msg, sizeof msg, -1, 1);
}

/* What the spawn's status pipe holds once the main program is gone: nothing
 * if its exec succeeded, else a yr_spawn_failure (csrc/spawn.c). Its only
 * writer was the child, whose copy closed at the exec or at its exit, so
 * this never waits. */
static int read_exec_outcome(int status_fd, void *failure, size_t size)
{
    if (status_fd < 0)
        return 0;
    ssize_t n;
    do {
        n = read(status_fd, failure, size);
    } while (n < 0 && errno == EINTR);
    close(status_fd);
    return n < 0 ? 0 : (int)n;
}

/* The main program stopped (job control): the front stops with it ("T",
 * csrc/front.c). Never waits: a stopped front reads nothing, and a program
 * that stops and is continued in a loop would fill the socket; a message
 * dropped then has others before it, unread, that make the front look. */
static void tell_stopped(const struct yr_front_link *link, int sig)
{
    char msg[1 + sizeof sig] = {'T'};
    memcpy(msg + 1, &sig, sizeof sig);
    atomic_store(&stop_mirrored, 1);
    if (send(link->sock, msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof msg)
        kill(link->front, yr_front_wake_signal());
}

/* A stop or a continuing of a child, as waitpid(WUNTRACED | WCONTINUED)
 * reports it. A child stopped by PTRACE_TRACEME is let go (we trace no
 * one); one we do not trace (PTRACE_DETACH: ESRCH) stopped for job control,
 * and if it is the main program the front mirrors it: it stops too, and is
 * continued when the program is (kill(0, SIGCONT) from a process of the
 * sandbox, say), so that its shell sees the job as the program is. The
 * front is our parent while the link is open (our parent-death signal
 * ends us otherwise). */
static void stopped_or_continued(pid_t pid, int raw, int main_pid,
                                 const struct yr_front_link *link)
{
    if (WIFSTOPPED(raw)) {
        if (yr_ptrace_release(pid, WSTOPSIG(raw)) == -ESRCH && pid == main_pid && link)
            tell_stopped(link, WSTOPSIG(raw));
    } else if (pid == main_pid && link) {
        kill(link->front, SIGCONT);
    }
}

/* A wait status as the front is sent it (and as Python's
 * waitstatus_to_exitcode gives it): the code, or -N for signal N. 128+N
 * would be an exit the front could not tell from the program's exit(128+N),
 * and the front must die by N (csrc/front.c) for its parent to see it. */
static int program_status(int raw)
{
    return WIFSIGNALED(raw) ? -WTERMSIG(raw) : WEXITSTATUS(raw);
}

/* Reap until the main program exits: its status (program_status: what
 * the front is sent) in *status, and the number of bytes of its exec's
 * failure read from status_fd into failure (0: it ran); -ECHILD when there is no child left to wait for. A child
 * stopped by PTRACE_TRACEME is let go, the main program's job-control stops
 * are mirrored by the front (stopped_or_continued); the front's death
 * (front_gone, the parent-death signal) kills the program. Both signals are
 * blocked in every thread of the supervisor. link (NULL: none): the status
 * is reported from here, detached first, when it ran and nothing must be
 * written before (records_first); link->reported says so. */
int yr_reap_main(int main_pid, int front_gone, int status_fd, int *status,
                 void *failure, size_t size, struct yr_front_link *link)
{
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGCHLD);
    sigaddset(&wanted, front_gone);
    for (;;) {
        int raw;
        pid_t pid = waitpid(-1, &raw, WNOHANG | WUNTRACED | WCONTINUED);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            return -errno;
        if (pid > 0 && (WIFSTOPPED(raw) || WIFCONTINUED(raw))) {
            stopped_or_continued(pid, raw, main_pid, link);
        } else if (pid == main_pid) {
            *status = program_status(raw);
            int n = read_exec_outcome(status_fd, failure, size);
            if (link && n == 0 && !link->wait_all && !atomic_load(&records_first) &&
                    !yr_gate_unrecorded())
                yr_front_report(link, *status, 1);
            return n;
        } else if (pid == 0) {
            siginfo_t info;
            if (sigwaitinfo(&wanted, &info) == front_gone)
                kill(main_pid, SIGKILL);    /* yama-run was killed: so is the program */
        }
    }
}
