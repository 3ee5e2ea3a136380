/* yama-run's command (installed as bin/yama-run by `pip install`, built by
 * setup.py with csrc/front.c): it forks; the child execs the python3 beside
 * the command's own real path, isolated and without `site` (-IS), on the
 * Python part installed beside it (bin/yama-run.py), with the front's end
 * of their link, the name it was started as and its arguments:
 *
 *     VENV/bin/python3 -IS VENV/bin/yama-run.py FD:PID:IGNORED NAME ARG...
 *
 * (IGNORED: the signals its caller ignored, which the program must start
 * with ignored; caller_ignored() says why only we can tell) and this
 * process stays as the front (csrc/front.c): the process the shell
 * waits on, which forwards signals and exits with the program's status. So
 * the interpreter is never forked for a front, nor torn down by one; a sh
 * script and then a front forked by Python did this before, each at a cost
 * of milliseconds per start (docs/startup.md).
 *
 * Its real path is /proc/self/exe, the file the kernel ran, so a link to the
 * command from elsewhere ($P/bin/yama-run, ~/.local/bin/firefox-esr) finds
 * the venv the link points into. NAME is the path the command was started
 * by (AT_EXECFN: what execve was given, as a script's $0 is): a link named
 * after a program runs that program (sandbox/argv0.py), and finds itself
 * by that path. No environment variable chooses the interpreter.
 *
 * Outside a venv (no python3 beside it at all) the python3 on PATH runs the
 * Python part with `site`, which finds the package where pip put it. A
 * python3 beside it that cannot be run, or no python3 on PATH, is a setup
 * error (exit 125, said on stderr): nothing else is run instead. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yama.h"

#define EXIT_SETUP 125                  /* yama-run's own setup errors */
#define PYTHON_PART "yama-run.py"

/* Said on stderr, then exit: written so that the child of vfork may call it
 * too (no stdio buffer, no exit handlers: it shares our memory). */
static void fail(const char *what, const char *path, int err)
{
    char msg[PATH_MAX + 256];
    int n = snprintf(msg, sizeof msg, "yama-run: %s %s: %s\n", what, path, strerror(err));
    if (n > 0 && write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
        n = 0;                  /* a lost stderr only loses the message */
    _exit(EXIT_SETUP);
}

/* DIRECTORY/NAME in out, or exit if it does not fit. */
static void beside(char *out, size_t size, const char *directory, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", directory, name) >= size)
        fail("cannot run its interpreter beside", directory, ENAMETOOLONG);
}

/* python3 -IS PART FD:PID:IGNORED NAME ARG...; outside a venv, the python3
 * on PATH (args + 1). Never returns. */
static void exec_interpreter(const char *python, char **args)
{
    execv(python, args);
    int err = errno;
    struct stat st;
    if (err != ENOENT || lstat(python, &st) == 0)   /* there (a dangling link too), but not runnable */
        fail("cannot run its interpreter", python, err);
    /* Not in a venv: python3 PART FD:PID:IGNORED NAME ARG..., with `site`. */
    args[1] = "python3";
    execvp("python3", args + 1);
    fail("cannot run its interpreter", "python3 (on PATH)", errno);
}

/* fd, or a copy of it above 2 when the caller closed a standard descriptor
 * and fd took its number: the supervisor holds 0, 1 and 2 on /dev/null when
 * they are closed, and overwrites them when it detaches (sandbox/lifetime.py,
 * csrc/lifetime.c), and the program must start with them closed, as it would
 * without yama-run. */
static int above_standard(int fd)
{
    if (fd > 2)
        return fd;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0)
        fail("cannot start its front:", "fcntl", errno);
    close(fd);
    return copy;
}

/* The signals our caller ignored, bit N-1 for signal N, in hex: exec keeps
 * them ignored, and the program must start as it would have natively. Only
 * here can they be read: the interpreter ignores SIGPIPE and SIGXFSZ for
 * itself as it starts, before any Python runs, so the supervisor cannot
 * tell a caller's SIG_IGN (a systemd service's SIGPIPE) from its own.
 * Read before anything of ours changes a disposition (the front only
 * blocks signals). glibc will not read its own two (32, 33): taken as not
 * ignored, as a glibc program cannot ignore them. */
static void caller_ignored(char *out, size_t size)
{
    unsigned long long ignored = 0;
    struct sigaction old;
    for (int sig = 1; sig <= 64; sig++)
        if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            ignored |= 1ULL << (sig - 1);
    snprintf(out, size, "%llx", ignored);
}

/* This process becomes the front (csrc/front.c) and exits with the
 * program's status; its child execs the interpreter, given in link
 * (args' FD:PID:IGNORED) its end of their link, kept open across the exec,
 * the front's pid and the signals our caller ignored. vfork: the child only execs, so nothing of ours is copied
 * for it, and the front waits from the moment the interpreter runs. */
static void exec_under_front(const char *python, char **args, char *link, size_t size)
{
    sigset_t caller;
    char ignored[17];
    int pair[2];
    caller_ignored(ignored, sizeof ignored);
    pthread_sigmask(SIG_SETMASK, NULL, &caller);
    if (yr_front_block() != 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        fail("cannot start its front:", "socketpair", errno);
    for (int i = 0; i < 2; i++)
        pair[i] = above_standard(pair[i]);
    pid_t front = getpid();
    snprintf(link, size, "%d:%d:%s", pair[1], (int)front, ignored);
    pid_t child = vfork();
    if (child == 0) {
        /* Killed with the front until the supervisor arms its own
         * parent-death signal (sandbox/lifetime.py); a front already gone
         * leaves nothing to run. Each call here changes this task alone. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != front)
            _exit(EXIT_SETUP);
        pthread_sigmask(SIG_SETMASK, &caller, NULL);    /* the interpreter starts as we did */
        if (fcntl(pair[1], F_SETFD, 0) < 0)
            fail("cannot start its front:", "fcntl", errno);
        exec_interpreter(python, args);
    }
    if (child < 0)
        fail("cannot start its front:", "vfork", errno);
    close(pair[1]);
    exit(yr_front(pair[0], child));
}

int main(int argc, char **argv)
{
    char self[PATH_MAX], python[PATH_MAX], part[PATH_MAX], link[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self);
    if (n < 0)
        fail("cannot find its own file:", "/proc/self/exe", errno);
    if (n == sizeof self)
        fail("cannot find its own file:", "/proc/self/exe", ENAMETOOLONG);
    self[n] = '\0';
    char *slash = strrchr(self, '/');           /* the link's target is absolute */
    if (slash == NULL)
        fail("cannot find its own file:", self, ENOENT);
    *slash = '\0';                              /* self: its directory */
    beside(python, sizeof python, self, "python3");
    beside(part, sizeof part, self, PYTHON_PART);
    if (access(part, R_OK) != 0)
        fail("cannot read its Python part", part, errno);

    const char *name = (const char *)getauxval(AT_EXECFN);
    if (name == NULL)
        name = argc > 0 ? argv[0] : "yama-run";
    /* python3 -IS PART FD:PID:IGNORED NAME ARG... NULL: 6 slots and argv[1..argc-1]
     * (none when argc is 0, which Linux before 5.18 allows) */
    int rest = argc > 1 ? argc - 1 : 0;
    char **args = calloc((size_t)rest + 6, sizeof *args);
    if (args == NULL)
        fail("cannot run its interpreter", python, errno);
    args[0] = python;
    args[1] = "-IS";
    args[2] = part;
    args[3] = link;                 /* FD:PID:IGNORED, filled in by exec_under_front */
    args[4] = (char *)name;
    for (int i = 0; i < rest; i++)
        args[i + 5] = argv[i + 1];

    exec_under_front(python, args, link, sizeof link);
}
