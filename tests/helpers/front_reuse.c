/* front_reuse OUT: the main program names the front (its parent's parent:
 * yama-run's process the shell waits on), leaves one process behind and
 * exits, which ends the front. The one left waits until the front's number
 * is free, makes a child of its own take it (root: ns_last_pid), then
 * signals that child and opens its environ, writing to OUT:
 *   "took=1" (or "took=0": the number never came), "kill=OK|ENAME",
 *   "environ=OK|ENAME", "done=1". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

static pid_t parent_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    pid_t found = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "PPid:", 5) == 0)
            found = atoi(line + 5);
    if (f)
        fclose(f);
    return found;
}

static const char *result(int rc)
{
    return rc < 0 ? strerrorname_np(errno) : "OK";
}

/* A child that sleeps, numbered front if the allocator gives it: its pid. */
static pid_t child_numbered(pid_t front)
{
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    if (fd >= 0) {
        dprintf(fd, "%d", (int)front - 1);
        close(fd);
    }
    pid_t child = fork();
    if (child == 0) {
        alarm(5);                               /* ends itself if our signals are refused */
        pause();
        _exit(0);
    }
    return child;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    pid_t front = parent_of(getppid());
    if (fork() > 0)
        return 0;                               /* the main program ends: so does the front */
    setsid();
    int null = open("/dev/null", O_RDWR);       /* the front's caller may wait for our end of its pipes */
    for (int fd = 0; fd < 3; fd++)
        dup2(null, fd);
    FILE *out = fopen(argv[1], "w");
    if (!out)
        return 1;
    setvbuf(out, NULL, _IONBF, 0);
    for (int i = 0; i < 400 && !(kill(front, 0) < 0 && errno == ESRCH); i++)
        usleep(25000);
    for (int tries = 0; tries < 20000; tries++) {
        pid_t child = child_numbered(front);
        if (child != front) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            continue;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/environ", (int)child);
        int fd = open(path, O_RDONLY);
        fprintf(out, "took=1\nenviron=%s\n", result(fd));
        fprintf(out, "kill=%s\n", result(kill(child, SIGTERM)));
        fprintf(out, "done=1\n");
        waitpid(child, NULL, 0);
        return 0;
    }
    fprintf(out, "took=0\ndone=1\n");
    return 0;
}
