/* yama-run's command (installed as bin/yama-run by `pip install`, built by
 * setup.py): it execs the python3 beside its own real path, isolated and
 * without `site` (-IS), on the Python part installed beside it
 * (bin/yama-run.py), with the name it was started as and its arguments:
 *
 *     VENV/bin/python3 -IS VENV/bin/yama-run.py NAME ARG...
 *
 * A sh script did this before, at a cost of 1-2 ms per start (docs/startup.md).
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_SETUP 125                  /* yama-run's own setup errors */
#define PYTHON_PART "yama-run.py"

static void fail(const char *what, const char *path, int err)
{
    fprintf(stderr, "yama-run: %s %s: %s\n", what, path, strerror(err));
    exit(EXIT_SETUP);
}

/* DIRECTORY/NAME in out, or exit if it does not fit. */
static void beside(char *out, size_t size, const char *directory, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", directory, name) >= size)
        fail("cannot run its interpreter beside", directory, ENAMETOOLONG);
}

int main(int argc, char **argv)
{
    char self[PATH_MAX], python[PATH_MAX], part[PATH_MAX];
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
    /* python3 -IS PART NAME ARG... NULL: 5 slots and argv[1..argc-1] (none
     * when argc is 0, which Linux before 5.18 allows) */
    int rest = argc > 1 ? argc - 1 : 0;
    char **args = calloc((size_t)rest + 5, sizeof *args);
    if (args == NULL)
        fail("cannot run its interpreter", python, errno);
    args[0] = python;
    args[1] = "-IS";
    args[2] = part;
    args[3] = (char *)name;
    for (int i = 0; i < rest; i++)
        args[i + 4] = argv[i + 1];

    execv(python, args);
    int err = errno;
    struct stat st;
    if (err != ENOENT || lstat(python, &st) == 0)   /* there (a dangling link too), but not runnable */
        fail("cannot run its interpreter", python, err);
    /* Not in a venv: python3 PART NAME ARG..., with `site`. */
    args[1] = "python3";
    execvp("python3", args + 1);
    fail("cannot run its interpreter", "python3 (on PATH)", errno);
}
